"""One bad journal entry is set aside and reported; the other pending entries still sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _project import fork, journal_files, log_entries, one_error_line, proml

from proml_cli.journal import Entry, Journal
from proml_cli.ledger import Move, VersionRef
from proml_cli.record import RECORD_TYPE_DECISION, canonical_bytes, utc_now

pytestmark = pytest.mark.integration


def _pending_decision(root: Path) -> str:
    """Journal (without anchoring) a real decision: deprecate the validated dataset."""
    from proml_cli.content import bytes_cid, hash_path

    digest = hash_path(root / "data" / "data.csv").sha256
    record = {
        "type": RECORD_TYPE_DECISION,
        "project": "core-loop",
        "transition": "deprecate",
        "subject": {"path": "data/data.csv", "sha256": f"sha256:{digest}"},
        "note": "journaled while the chain was away",
        "decided": utc_now(),
        "policy_digest": "sha256:" + "0" * 64,
        "actor": "0x" + "0" * 40,
    }
    cid = bytes_cid(canonical_bytes(record))
    move = Move(VersionRef("dataset", digest), "deprecate")
    Journal(root / ".proml" / "journal").write(Entry(cid, record, (), (move,), utc_now()))
    return cid


def test_a_bad_entry_is_quarantined_and_the_others_are_anchored(
    damageable: Path, tmp_path: Path
) -> None:
    root = fork(damageable, tmp_path / "project")
    good = _pending_decision(root)
    pending = root / ".proml" / "journal" / "pending"
    (pending / "bafkreiaaaabad.json").write_text('{"record_cid": "bafkreiaaaabad", "rec')

    result = proml(root, "sync", "--json")

    assert result.code == 2, str(result)
    line = one_error_line(result.stderr)
    assert "journal entry .proml/journal/pending/bafkreiaaaabad.json" in line
    assert "truncated" in line
    assert "moved to .proml/journal/quarantine/bafkreiaaaabad.json" in line
    statuses = {e["record_cid"]: e["status"] for e in json.loads(result.stdout)["entries"]}
    assert statuses == {"bafkreiaaaabad": "quarantined", good: "anchored"}
    files = journal_files(root)
    assert files["pending"] == []
    assert f"{good}.json" in files["done"]
    quarantine = root / ".proml" / "journal" / "quarantine"
    assert (quarantine / "bafkreiaaaabad.json").read_text().startswith('{"record_cid"')
    assert "truncated" in (quarantine / "bafkreiaaaabad.json.why").read_text()
    assert log_entries(root, "dataset")[0]["action"] == "deprecate"

    # Set aside once: the next sync has nothing left to complain about.
    again = proml(root, "sync")
    assert again.code == 0, str(again)


def test_a_summary_that_cannot_be_written_after_the_run_keeps_the_exit_code(
    damageable: Path, tmp_path: Path
) -> None:
    root = fork(damageable, tmp_path / "project")
    (root / "summaries").mkdir()

    result = proml(root, "run", "--summary-json", "summaries/s.json", "--", "python", "vanish.py")

    assert result.code == 0, str(result)  # the command's own status: it ran and was recorded
    assert "cannot write the summary to summaries/s.json" in result.stderr
    assert "recorded step 'vanish'" in result.stderr
    assert log_entries(root, "report")[0]["action"] == "register"


def test_a_bad_entry_is_reported_even_when_the_chain_is_away(
    damageable: Path, tmp_path: Path
) -> None:
    from filelock import FileLock

    root = fork(damageable, tmp_path / "project")
    good = _pending_decision(root)
    (root / ".proml" / "journal" / "pending" / "bafkreibad.json").write_text("[]")
    lock = FileLock(str(root / ".proml" / "chain" / "chain.lock"))
    lock.acquire()
    try:
        result = proml(root, "sync", env={"PROML_LOCK_TIMEOUT": "0"})
    finally:
        lock.release()

    assert result.code == 3, str(result)
    line = one_error_line(result.stderr)
    assert "is locked by another process" in line
    assert "journal entry .proml/journal/pending/bafkreibad.json has the wrong shape" in line
    assert journal_files(root)["pending"] == [f"{good}.json"]  # kept for the next sync
