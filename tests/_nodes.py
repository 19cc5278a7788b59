"""Stopping every proml node the tests started (none may outlive pytest)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path


def node_pids(base: Path) -> list[int]:
    """The pids of the live proml nodes whose projects lie under ``base``."""
    pids = []
    for pid_file in base.rglob(".proml/node.pid"):
        try:
            pid = int(json.loads(pid_file.read_text())["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if b"proml_cli.node" in cmdline:
            pids.append(pid)
    return pids


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_nodes(base: Path, timeout: float = 10.0) -> list[int]:
    """SIGTERM each node under ``base`` (found by its pid file), SIGKILL any still up after
    ``timeout``; returns the pids that were stopped."""
    pids = node_pids(base)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return pids
