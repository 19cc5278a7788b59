"""Two-phase recording: a record the chain could not take stays in the journal, and `proml sync`
anchors each journaled record exactly once.

The chain is made unavailable the way it happens in practice: another process holds the
embedded chain's lock. The wrapped command (``hold.py``) starts a detached helper that takes the
lock for a few seconds and exits once the lock is held; proml, run with
``PROML_LOCK_TIMEOUT=1``, then times out when it tries to submit. For a chain that is already
unavailable before the command, the test itself holds the lock.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _project import (
    Result,
    build_project,
    fork,
    journal_files,
    log_entries,
    ok,
    one_error_line,
    proml,
    steps_matching,
)
from filelock import FileLock

from proml_cli.content import bytes_cid
from proml_cli.record import canonical_bytes

pytestmark = pytest.mark.integration

#: The helper holds the lock for 8 s; waiting longer than this means it is stuck.
HOLDER_TIMEOUT = 60


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("journal") / "project", train=False)


@pytest.fixture
def project(base: Path, tmp_path: Path) -> Path:
    return fork(base, tmp_path / "project")


def wait_for_lock_holder(project: Path) -> None:
    """Return once no other process holds the project's chain lock (bounded)."""
    lock = FileLock(str(project / ".proml" / "chain" / "chain.lock"))
    lock.acquire(timeout=HOLDER_TIMEOUT)
    lock.release()


def test_unreachable_chain_leaves_the_record_in_the_journal_until_sync(project: Path) -> None:
    before = log_entries(project)
    try:
        result = proml(project, "run", "--", "python", "hold.py", env={"PROML_LOCK_TIMEOUT": "1"})
    finally:
        wait_for_lock_holder(project)

    assert result.code == 0, str(result)  # the command's own status
    assert result.stdout == ""
    assert "locked by another process" in result.stderr
    assert "proml sync" in result.stderr
    assert "Traceback" not in result.stderr
    pending = journal_files(project)["pending"]
    assert len(pending) == 1, pending
    record_cid = pending[0].removesuffix(".json")
    assert log_entries(project) == before  # nothing reached the chain

    synced = ok(proml(project, "sync", "--json")).json()

    assert [(e["record_cid"], e["status"]) for e in synced["entries"]] == [(record_cid, "anchored")]
    after = log_entries(project)
    anchored = steps_matching(after, record_cid)
    assert [(e["artefact"], e["action"], e["to"]) for e in anchored] == [
        ("report", "register", "raw")
    ]
    assert anchored[0]["tx_hash"] == synced["entries"][0]["tx_hash"]
    files = journal_files(project)
    assert files["pending"] == []
    assert f"{record_cid}.json" in files["done"]

    again = ok(proml(project, "sync"))
    assert "nothing pending" in again.stderr
    assert ok(proml(project, "sync", "--json")).json()["entries"] == []
    assert log_entries(project) == after


def test_sync_finishes_an_entry_already_anchored_without_a_second_transaction(
    project: Path,
) -> None:
    # The dataset's validation: a record that was anchored, then (as after a crash between the
    # transaction and the journal update) found pending again.
    entries = log_entries(project)
    validation = next(e for e in entries if e["action"] == "validate")
    record_cid = validation["record_cid"]
    journal = project / ".proml" / "journal"
    (journal / "pending").mkdir(exist_ok=True)
    shutil.copy(journal / "done" / f"{record_cid}.json", journal / "pending")

    synced = ok(proml(project, "sync", "--json")).json()

    assert [(e["record_cid"], e["status"], e["tx_hash"]) for e in synced["entries"]] == [
        (record_cid, "anchored", validation["tx_hash"])  # the original transaction
    ]
    assert len(steps_matching(log_entries(project), record_cid)) == 1
    assert log_entries(project) == entries
    files = journal_files(project)
    assert files["pending"] == []
    assert f"{record_cid}.json" in files["done"]


def test_sync_skips_a_registration_made_since_the_entry_was_journaled(project: Path) -> None:
    # Two identical runs while the chain was away: both journal the same product version. The
    # first to be anchored registers it; the second must not be refused as a duplicate.
    entries = log_entries(project)
    prepared = next(e for e in entries if e["artefact"] == "dataset" and e["action"] == "register")
    journal = project / ".proml" / "journal"
    entry = json.loads((journal / "done" / f"{prepared['record_cid']}.json").read_text())
    entry.pop("tx_hash", None)
    entry["record"]["ended"] = "2000-01-01T00:00:00Z"  # another run of the same step
    entry["record_cid"] = bytes_cid(canonical_bytes(entry["record"]))
    (journal / "pending").mkdir(exist_ok=True)
    (journal / "pending" / f"{entry['record_cid']}.json").write_text(json.dumps(entry))

    synced = ok(proml(project, "sync", "--json")).json()

    assert [(e["record_cid"], e["status"]) for e in synced["entries"]] == [
        (entry["record_cid"], "done")
    ]
    assert log_entries(project) == entries
    files = journal_files(project)
    assert files["pending"] == []
    assert files["refused"] == []


@pytest.fixture(scope="module")
def run_while_locked(base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """``proml run`` of a step with an input while another process holds the chain."""
    project = fork(base, tmp_path_factory.mktemp("locked") / "project")
    holder = FileLock(str(project / ".proml" / "chain" / "chain.lock"))
    holder.acquire(timeout=HOLDER_TIMEOUT)
    try:
        result = proml(project, "run", "--", "python", "train.py", env={"PROML_LOCK_TIMEOUT": "1"})
    finally:
        holder.release()
    return project, result


def test_unreachable_chain_before_the_run_does_not_start_the_command(
    run_while_locked: tuple[Path, Result],
) -> None:
    project, result = run_while_locked

    assert result.code != 0, str(result)
    assert not (project / "train.started").exists(), "the command started"
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    assert "locked by another process" in line
    assert journal_files(project)["pending"] == []


def test_unreachable_chain_before_the_run_exits_3(run_while_locked: tuple[Path, Result]) -> None:
    _, result = run_while_locked
    assert result.code == 3, str(result)
