"""Running the wrapped command: inherited stdio, signals forwarded, its exit status as a shell's.

Kept apart from :mod:`proml_cli.capture` (which checks and records around it) and importing
only the standard library: the node's client runs the command in the user's own process and
imports this module alone, so the command starts without loading the rest of proml.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from proml_cli.errors import ExitCode


def execute(argv: Sequence[str], cwd: Path | None = None) -> int:
    """Run ``argv`` with inherited stdio, forwarding SIGINT/SIGTERM; return its exit status.

    A signal death becomes 128+N, an unrunnable command 126 and a missing one 127 (shell
    conventions, so wrappers in CI scripts behave like the bare command).
    """
    # The handlers go in BEFORE the child starts. Installed after Popen returned (as before),
    # a signal sent as soon as the child was up (the child can print before the parent runs
    # again on a loaded machine) killed proml with the default action, or raised
    # KeyboardInterrupt, while the orphaned child kept running and held proml's stdout and
    # stderr open: the caller then waited for a command that was no longer proml's.
    started: list[subprocess.Popen[bytes]] = []
    early: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        # The child shares our terminal's process group, so a Ctrl-C reaches it directly; this
        # forwards signals sent to proml alone (kill, a CI runner's timeout) as well.
        if not started:
            early.append(signum)  # delivered as soon as the child exists
        elif started[0].poll() is None:
            started[0].send_signal(signum)

    previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}
    for forwarded in (signal.SIGINT, signal.SIGTERM):
        previous[forwarded] = signal.signal(forwarded, forward)
    try:
        try:
            # The wrapped command is the user's own, run without a shell, exactly as typed.
            child = subprocess.Popen(list(argv), cwd=cwd)  # noqa: S603
        except FileNotFoundError:
            sys.stderr.write(f"proml: command not found: {argv[0]}\n")
            return int(ExitCode.NOT_FOUND)
        except PermissionError:
            sys.stderr.write(f"proml: cannot execute: {argv[0]}\n")
            return int(ExitCode.CANNOT_EXECUTE)
        started.append(child)
        for signum in early:
            child.send_signal(signum)
        code = _wait_interruptibly(child)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code


#: The longest a signal for the child can wait before proml forwards it (seconds).
SIGNAL_LATENCY = 0.05


def _wait_interruptibly(child: subprocess.Popen[bytes]) -> int:
    """Wait for ``child`` in short slices, so that a signal handler always gets to run.

    Python runs a signal handler between bytecodes, in the main thread. A signal that arrives
    just before a blocking call (between the interpreter's last check and the system call), or
    that the kernel hands to another thread, does not interrupt the call: a plain
    ``child.wait()`` then sleeps in ``waitpid`` until the child exits, with SIGTERM still
    unforwarded (python/cpython#98140; bpo-30643 calls it a well-known race). Under load this
    hung `proml run` after a SIGTERM until the command ended on its own. Waiting in slices of at
    most :data:`SIGNAL_LATENCY` bounds the delay instead.

    Each slice polls a pidfd (Linux 5.3+), which becomes readable the moment the child exits:
    the command's end is seen at once. Popen's own timed wait sleeps between ``waitpid`` polls
    (growing to 16 ms within a slice), which added about 8 ms to every step on average; it
    remains the fallback where pidfds are missing.
    """
    pidfd = _pidfd(child)
    if pidfd is None:
        return _wait_polling(child)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while child.poll() is None:
            poller.poll(SIGNAL_LATENCY * 1000)
    finally:
        os.close(pidfd)
    return int(child.returncode)


def _pidfd(child: subprocess.Popen[bytes]) -> int | None:
    """A pidfd of the running ``child`` (None where the system has none)."""
    try:
        return os.pidfd_open(child.pid)
    except (AttributeError, OSError):  # not Linux, an old kernel, or a seccomp filter
        return None


def _wait_polling(child: subprocess.Popen[bytes]) -> int:
    """:func:`_wait_interruptibly` without a pidfd: Popen's timed wait, slice by slice."""
    while True:
        try:
            return child.wait(timeout=SIGNAL_LATENCY)
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # pragma: no cover - our handler replaces the default one
            continue
