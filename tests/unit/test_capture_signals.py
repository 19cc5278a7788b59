"""Signal forwarding in ``capture.execute``: no window in which a signal misses the child.

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
import time
from collections.abc import Iterator
from typing import Any

import pytest

from proml_cli.capture import execute

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


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
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
