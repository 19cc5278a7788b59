"""`make example` can be run again with the same WORKDIR, and never clears a directory it did
not make. The example needs scikit-learn (the ``examples`` extra): skipped without it, except
on CI.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _project import ok, process_env, proml, proml_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)

if importlib.util.find_spec("sklearn") is None and not os.environ.get("CI"):
    pytest.skip(
        "scikit-learn is not installed (pip install -e '.[examples]')", allow_module_level=True
    )
if shutil.which("make") is None and not os.environ.get("CI"):
    pytest.skip("make is not installed", allow_module_level=True)


def make_example(work: Path) -> subprocess.CompletedProcess[str]:
    """``make example WORKDIR=work`` with this environment (never reinstalled by the test)."""
    # -o: the environment counts as installed, so make never reinstalls it under the test.
    argv = ["make", "-C", str(REPO), f"VENV={VENV}", "-o", f"{VENV}/.installed", "example"]
    return subprocess.run(
        [*argv, f"WORKDIR={work}"],
        env=process_env({"PROML": str(proml_command(work.parent))}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_make_example_twice_with_the_same_workdir(tmp_path: Path) -> None:
    work = tmp_path / "demo"

    first = make_example(work)
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr}"
    second = make_example(work)
    assert second.returncode == 0, f"{second.stdout}\n{second.stderr}"

    assert "starts afresh" in (work / ".proml-example").read_text()
    assert "removing the earlier example run's files" in second.stderr
    report = ok(proml(work, "verify", "models/model.pkl", "--deep", "--json")).json()
    assert report["verified"] is True, report["reasons"]
    # One run's history, not two: the second run started from a new ledger.
    entries = ok(proml(work, "log", "--json")).json()["entries"]
    assert [e["action"] for e in entries].count("approve") == 1


def test_a_directory_the_example_did_not_make_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "mine"
    work.mkdir()
    (work / "notes.txt").write_text("keep me\n")

    done = make_example(work)

    assert done.returncode != 0
    assert "not made by this example" in done.stderr
    assert (work / "notes.txt").read_text() == "keep me\n"
    assert not (work / ".proml").exists()
