"""Real network services for the tests: anvil and a js-ipfs node, on 127.0.0.1 only.

Both come from the repo's pinned tools (`tools/package.json`, installed by `npm ci`). Each
listens on a port the OS picks, the IPFS node runs offline with no bootstrap peers (it never
reaches beyond this machine), and both are stopped when the fixture ends. Start-up waits are
bounded; a missing binary skips only outside CI (in CI it fails).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "tools" / "node_modules" / ".bin"
POLYFILL = ROOT / "tools" / "ipfs-polyfill.cjs"
START_TIMEOUT = 60.0

#: anvil's first development account (public, well-known test key; never holds real value).
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def require(binary: Path) -> None:
    """Skip when a tool is missing, except in CI, where a missing tool is a failure."""
    if binary.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{binary} is missing: run `npm ci` in tools/")
    pytest.skip(f"{binary.name} not installed (run `npm ci` in tools/)")


def _stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def anvil(workdir: Path, *, block_time: float | None = None) -> Iterator[str]:
    """Run anvil on 127.0.0.1 with a free port; yield its JSON-RPC URL."""
    binary = BIN / "anvil"
    require(binary)
    args = [str(binary), "--host", "127.0.0.1", "--port", "0"]
    if block_time:
        args += ["--block-time", str(block_time)]
    log_path = workdir / "anvil.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                match = re.search(r"Listening on (127\.0\.0\.1:\d+)", log_path.read_text())
                if match:
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"anvil did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.05)
            yield f"http://{match.group(1)}"
        finally:
            _stop(proc)


@contextmanager
def ipfs_node(repo: Path) -> Iterator[str]:
    """Run an offline js-ipfs daemon (Kubo RPC API) in ``repo``; yield its API URL."""
    binary = BIN / "jsipfs"
    require(binary)
    env = dict(os.environ)
    env["IPFS_PATH"] = str(repo)
    env["NODE_OPTIONS"] = f"--require {POLYFILL}"
    # The test profile: loopback addresses on random ports, no bootstrap peers, no MDNS.
    subprocess.run(
        [str(binary), "init", "--profile", "test"], env=env, check=True, capture_output=True
    )
    for key, value in (
        ("Addresses.RPC", '"/ip4/127.0.0.1/tcp/0"'),
        ("Addresses.Gateway", '""'),
        ("Addresses.Swarm", '["/ip4/127.0.0.1/tcp/0"]'),
        ("Bootstrap", "[]"),
    ):
        subprocess.run(
            [str(binary), "config", "--json", key, value], env=env, check=True, capture_output=True
        )
    log = (repo / "daemon.log").open("w")
    proc = subprocess.Popen(
        [str(binary), "daemon", "--offline"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        api = repo / "api"
        deadline = time.monotonic() + START_TIMEOUT
        while not api.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"js-ipfs did not start: {(repo / 'daemon.log').read_text()}")
            time.sleep(0.2)
        match = re.match(r"/ip4/(127\.0\.0\.1)/tcp/(\d+)", api.read_text().strip())
        assert match, api.read_text()
        yield f"http://{match.group(1)}:{match.group(2)}"
    finally:
        _stop(proc)
        log.close()


def rpc(url: str, method: str, params: list[object]) -> object:
    """One raw JSON-RPC call (for test set-up such as funding on anvil)."""
    import httpx

    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    reply.raise_for_status()
    body = json.loads(reply.text)
    if "error" in body:
        raise RuntimeError(body["error"])
    return body["result"]
