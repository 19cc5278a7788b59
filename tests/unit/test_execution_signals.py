"""Signal forwarding in ``execution.execute``: no window in which a signal misses the child.

The forwarding handlers used to be installed only after ``Popen`` returned. On a loaded machine
the child can start, and be seen to start, before the parent runs its next line: a SIGTERM sent
then killed proml by the default action (a SIGINT raised KeyboardInterrupt), and the orphaned
command kept running with proml's stdout and stderr open. Here the signal is made to arrive at
exactly that moment: inside ``Popen``, once the child exists.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proml_cli import execution
from proml_cli.execution import execute

#: The child sleeps this long unless the signal reaches it (seconds).
CHILD_SLEEP = 30


@pytest.fixture
def own_handlers() -> Iterator[list[int]]:
    """Handlers of this process for SIGINT/SIGTERM that only record; restored afterwards."""
    seen: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda n, _f: seen.append(n))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    yield seen
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.fixture(params=["pidfd", "polling"])
def wait(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with both waits: on a pidfd, and Popen's polling (no pidfd here)."""
    if request.param == "polling":
        monkeypatch.setattr(execution, "_pidfd", lambda _child: None)
    else:
        try:
            os.close(os.pidfd_open(os.getpid()))
        except (AttributeError, OSError):
            pytest.skip("this system has no pidfd_open")
    return str(request.param)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
@pytest.mark.usefixtures("wait")
def test_a_signal_arriving_as_the_child_starts_reaches_the_child(
    monkeypatch: pytest.MonkeyPatch, own_handlers: list[int], signum: int, code: int
) -> None:
    real_popen = subprocess.Popen

    class SignalledAtStart(real_popen):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            os.kill(os.getpid(), signum)  # the child exists; execute() has not seen it yet

    monkeypatch.setattr(subprocess, "Popen", SignalledAtStart)
    started = time.monotonic()

    status = execute([sys.executable, "-c", f"import time; time.sleep({CHILD_SLEEP})"])

    assert status == code
    assert time.monotonic() - started < CHILD_SLEEP / 2
    assert own_handlers == []  # proml's own handler took it, not whatever was there before
    assert signal.getsignal(signum) is not None  # and this process's handler is back


def _main_thread_blocked(tid: int) -> bool:
    """Whether thread ``tid`` sits in a system call (waitpid, a sleep) rather than running."""
    try:
        fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        syscall = Path(f"/proc/self/task/{tid}/syscall").read_text().split()
    except OSError:
        return False
    return fields[0] == "S" and syscall[0] not in ("running", "-1")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.usefixtures("wait")
def test_a_signal_the_blocked_wait_never_saw_is_still_forwarded(own_handlers: list[int]) -> None:
    """A signal taken by another thread (as one arriving just before ``waitpid`` is) still counts.

    The kernel hands the signal to the helper thread (the main thread blocks it), so the main
    thread's system call is never interrupted: only a wait that wakes up by itself runs the
    handler. The child unblocks the signal it inherited blocked.
    """
    main_tid = threading.get_native_id()
    sent = threading.Event()

    def send_once_main_is_waiting() -> None:
        deadline = time.monotonic() + CHILD_SLEEP
        while not _main_thread_blocked(main_tid) and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGTERM)
        sent.set()

    child = (
        "import signal, time; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM}); "
        f"time.sleep({CHILD_SLEEP})"
    )
    helper = threading.Thread(target=send_once_main_is_waiting, daemon=True)
    helper.start()  # before blocking: the helper keeps SIGTERM unblocked
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        started = time.monotonic()
        status = execute([sys.executable, "-c", child])
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    helper.join()

    assert sent.is_set()
    assert status == 143
    assert time.monotonic() - started < CHILD_SLEEP / 2
    assert own_handlers == []


@pytest.mark.parametrize(("script", "code"), [("pass", 0), ("raise SystemExit(3)", 3)])
@pytest.mark.usefixtures("wait")
def test_the_exit_status_is_the_commands(script: str, code: int) -> None:
    assert execute([sys.executable, "-c", script]) == code


def test_the_pidfd_wait_closes_its_descriptor() -> None:
    before = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").is_dir() else None
    for _ in range(3):
        execute([sys.executable, "-c", "pass"])
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before
