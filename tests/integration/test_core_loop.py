"""The core loop on a small project: refusals before the command, failures that record nothing,
signals that reach the child, idempotent re-runs, and what show/status/verify report after.

One project (dataset prepared and validated, model trained and evaluated) is built per module;
a test that changes anything works on a copy of it (see ``_project.fork``).
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _project import (
    block_path,
    build_project,
    fork,
    journal_files,
    log_entries,
    ok,
    one_error_line,
    proml,
    spawn,
)

pytestmark = pytest.mark.integration

#: Upper bound for a real ``proml`` process to start its child or to finish (seconds).
PROCESS_TIMEOUT = 60


@dataclass(frozen=True)
class Base:
    """The module's project and its history right after it was built."""

    root: Path
    log: list[dict[str, Any]]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = build_project(tmp_path_factory.mktemp("core-loop") / "project")
    return Base(root, log_entries(root))


@pytest.fixture
def project(base: Base, tmp_path: Path) -> Path:
    """A private copy of the module's project (its own chain and store)."""
    return fork(base.root, tmp_path / "project")


def assert_nothing_recorded(project: Path, base: Base, journal: dict[str, list[str]]) -> None:
    assert journal_files(project) == journal
    assert log_entries(project) == base.log


# ------------------------------------------------------------------------- refusals


def test_input_changed_after_validation_is_refused_before_the_command_starts(
    project: Path, base: Base
) -> None:
    (project / "train.started").unlink()  # left by the training in the module's project
    with (project / "data" / "data.csv").open("a") as handle:
        handle.write("4,1\n")
    journal = journal_files(project)

    result = proml(project, "run", "--", "python", "train.py")

    assert result.code == 1, str(result)
    assert not (project / "train.started").exists(), "the command started"
    assert result.stdout == ""
    line = one_error_line(result.stderr)  # one line, and a hint naming the next command
    assert "'dataset'" in line
    assert "data/data.csv" in line
    assert "is not a recorded version" in line
    assert "hint: record it first: `proml run -- python prepare.py`" in result.stderr
    assert_nothing_recorded(project, base, journal)


def test_transition_by_an_account_without_the_role_is_refused_by_the_contract(
    project: Path, base: Base
) -> None:
    ok(proml(project, "account", "new", "intern"))
    ok(proml(project, "roles", "grant", "trainer", "intern"))

    result = proml(project, "transition", "dataset", "deprecate", "--as", "intern")

    assert result.code == 1, str(result)
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    assert line.startswith("proml: error: the ledger refused: "), line
    assert "'deprecate'" in line
    assert "curator" in line  # the role that would have allowed it
    shown = ok(proml(project, "show", "dataset", "--json")).json()
    assert shown["state"] == "validated"
    assert [s["action"] for s in shown["steps"]] == ["register", "validate"]
    assert log_entries(project) == base.log
    files = journal_files(project)
    assert files["pending"] == []
    assert len(files["refused"]) == 1  # kept for audit


# ------------------------------------------------------------------------- failing commands


def test_failing_command_keeps_its_exit_code_and_records_nothing(project: Path, base: Base) -> None:
    journal = journal_files(project)

    result = proml(project, "run", "--", "python", "fail.py")

    assert result.code == 3, str(result)
    assert "nothing was recorded" in result.stderr
    assert "Traceback" not in result.stderr
    assert_nothing_recorded(project, base, journal)


def test_command_not_found_exits_127(project: Path, base: Base) -> None:
    journal = journal_files(project)

    result = proml(project, "run", "--", "no-such-command-for-proml-tests")

    assert result.code == 127, str(result)
    assert "command not found" in result.stderr
    assert "nothing was recorded" in result.stderr
    assert_nothing_recorded(project, base, journal)


def test_declared_output_not_produced_is_an_error_and_records_nothing(
    project: Path, base: Base
) -> None:
    journal = journal_files(project)

    result = proml(project, "run", "--", "python", "forget.py")

    assert result.code == 1, str(result)
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    assert "did not produce 'report' (out/report.txt)" in line
    assert "nothing was recorded" in line
    assert_nothing_recorded(project, base, journal)


def test_an_output_left_from_before_the_run_is_not_a_product(project: Path, base: Base) -> None:
    journal = journal_files(project)
    stale = project / "out" / "report.txt"
    stale.parent.mkdir(exist_ok=True)
    stale.write_text("written by an earlier run, not by this one\n")

    result = proml(project, "run", "--", "python", "forget.py")

    assert result.code == 1, str(result)
    line = one_error_line(result.stderr)
    assert "did not produce 'report' (out/report.txt, unchanged since before it ran)" in line
    assert_nothing_recorded(project, base, journal)
    stale.unlink()


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first line the process prints on stdout, waiting at most ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stream = proc.stdout
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_signal_sent_to_proml_reaches_the_child(
    project: Path, base: Base, signum: signal.Signals, code: int
) -> None:
    journal = journal_files(project)
    proc = spawn(project, "run", "--", "python", "wait.py")
    try:
        first = _first_line(proc, PROCESS_TIMEOUT)
        assert first == "ready\n", (first, proc.poll())
        proc.send_signal(signum)  # to proml only, not to its process group
        _, stderr = proc.communicate(timeout=PROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == code, stderr
    assert (project / f"got-{signum.name}").read_text() == "caught\n"
    assert "nothing was recorded" in stderr
    assert "Traceback" not in stderr
    assert_nothing_recorded(project, base, journal)


# ------------------------------------------------------------------------- idempotence


def test_rerun_with_identical_output_says_unchanged(project: Path, base: Base) -> None:
    summary = project / "summary.json"

    result = ok(proml(project, "run", "--summary-json", str(summary), "--", "python", "train.py"))

    assert result.stdout == ""
    assert "'model' is unchanged" in result.stderr
    assert "already registered" not in result.stderr  # no DuplicateVersion from the contract
    outcome = json.loads(summary.read_text())
    assert outcome["exit_code"] == 0
    assert outcome["recorded"] is False  # nothing to anchor: the version exists
    assert outcome["journaled"] is False
    assert [p["artefact"] for p in outcome["products"]] == ["model"]
    assert block_path(project, outcome["record_cid"]).is_file()  # the record itself is stored
    assert log_entries(project) == base.log
    assert journal_files(project)["pending"] == []


# ------------------------------------------------------------------------- reading it back


def test_show_gives_lineage_every_step_and_the_record(base: Base) -> None:
    model = ok(proml(base.root, "show", "model", "--json")).json()
    dataset = ok(proml(base.root, "show", "dataset", "--json")).json()

    assert (model["artefact"], model["kind"], model["state"]) == ("model", "weights", "evaluated")
    assert model["inputs"] == [
        {
            "artefact": "dataset",
            "sha256": dataset["sha256"],
            "cid": dataset["cid"],
            "state": "validated",
        }
    ]
    assert [(s["action"], s["from"], s["to"]) for s in model["steps"]] == [
        ("register", None, "trained"),
        ("evaluate", "trained", "evaluated"),
    ]
    assert [(s["action"], s["from"], s["to"]) for s in dataset["steps"]] == [
        ("register", None, "raw"),
        ("validate", "raw", "validated"),
    ]
    assert dataset["used_by"] == [
        {"artefact": "model", "sha256": model["sha256"], "cid": model["cid"]}
    ]

    record_cid = model["steps"][0]["record_cid"]
    shown = ok(proml(base.root, "show", record_cid, "--json")).json()
    assert shown["record_cid"] == record_cid
    record = shown["record"]
    assert record == model["record"]
    assert record["step"] == "train"
    assert [(p["artefact"], p["sha256"]) for p in record["products"]] == [
        ("model", model["sha256"])
    ]
    assert [(m["artefact"], m["sha256"]) for m in record["materials"]] == [
        ("dataset", dataset["sha256"])
    ]


def test_status_reports_unchanged_modified_and_missing(base: Base, project: Path) -> None:
    rows = {r["artefact"]: r for r in ok(proml(base.root, "status", "--json")).json()["artefacts"]}
    assert {name: row["status"] for name, row in rows.items()} == {
        "dataset": "unchanged",
        "model": "unchanged",
        "report": "missing",
    }
    assert (rows["report"]["versions"], rows["report"]["recorded_cid"]) == (0, None)
    assert (rows["model"]["versions"], rows["model"]["recorded_state"]) == (1, "evaluated")

    with (project / "data" / "data.csv").open("a") as handle:
        handle.write("4,1\n")
    (project / "out" / "model.bin").unlink()
    changed = {r["artefact"]: r for r in ok(proml(project, "status", "--json")).json()["artefacts"]}
    assert changed["dataset"]["status"] == "modified"
    assert changed["dataset"]["sha256"] != rows["dataset"]["sha256"]
    assert changed["dataset"]["recorded_cid"] == rows["dataset"]["recorded_cid"]
    assert changed["model"]["status"] == "missing"
    assert changed["model"]["recorded_cid"] == rows["model"]["recorded_cid"]
    assert changed["report"]["status"] == "missing"


def test_verify_deep_fails_once_an_input_is_deprecated(base: Base, project: Path) -> None:
    args = ("verify", "out/model.bin", "--state", "evaluated", "--json")
    before = ok(proml(base.root, *args, "--deep")).json()
    assert before["verified"] is True
    assert [(i["artefact"], i["state"]) for i in before["lineage"]] == [("dataset", "validated")]

    ok(proml(project, "transition", "dataset", "deprecate"))
    deep = proml(project, *args, "--deep")
    shallow = proml(project, *args)

    assert deep.code == 1, str(deep)
    report = deep.json()
    assert report["verified"] is False
    assert report["state"] == "evaluated"  # the model itself is fine
    assert len(report["reasons"]) == 1, report["reasons"]
    assert "input dataset@" in report["reasons"][0]
    assert "'deprecated'" in report["reasons"][0]
    assert report["lineage"][0]["state"] == "deprecated"
    # Only --deep looks upstream.
    assert shallow.code == 0, str(shallow)
    assert shallow.json()["verified"] is True


def test_verify_detects_a_record_rewritten_in_the_store(base: Base, project: Path) -> None:
    model = ok(proml(base.root, "show", "model", "--json")).json()
    record_cid = model["steps"][0]["record_cid"]
    block = block_path(project, record_cid)
    original = block.read_bytes()
    # Still valid JSON, same size: only the content hash can tell.
    tampered = original.replace(b'"step":"train"', b'"step":"trait"', 1)
    assert tampered != original
    block.chmod(0o644)
    block.write_bytes(tampered)

    result = proml(project, "verify", "out/model.bin", "--state", "evaluated", "--json")

    assert result.code == 1, str(result)
    report = result.json()
    assert report["verified"] is False
    assert report["reasons"], report
    assert all(record_cid in reason for reason in report["reasons"]), report["reasons"]
    assert all(reason.startswith("5") for reason in report["reasons"]), report["reasons"]
