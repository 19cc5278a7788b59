"""`proml fsck`: a clean project is clean; damage is found, named, and repaired where safe."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import rlp
from _project import fork, ok, proml

from proml_cli.content._local import _Pack
from proml_cli.fsck import check

pytestmark = pytest.mark.integration

OLD = 3600.0  # seconds: older than fsck's grace period


def _age(path: Path) -> None:
    past = path.stat().st_mtime - OLD
    os.utime(path, (past, past))


def _fsck(root: Path, *args: str) -> tuple[int, dict[str, object]]:
    result = proml(root, "fsck", "--json", *args)
    assert result.code in (0, 1), str(result)
    assert "Traceback" not in result.stderr, str(result)
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return result.code, document


def _problems(document: dict[str, object]) -> dict[str, str]:
    findings = document["findings"]
    assert isinstance(findings, list)
    return {f["path"]: f["problem"] for f in findings}


def _chain_problems(document: dict[str, object]) -> list[str]:
    findings = document["findings"]
    assert isinstance(findings, list)
    return [f["problem"] for f in findings if f["area"] == "chain"]


def test_a_healthy_project_is_clean(damageable: Path, tmp_path: Path) -> None:
    root = fork(damageable, tmp_path / "project")

    code, document = _fsck(root)

    assert code == 0, document
    assert document["clean"] is True
    assert document["findings"] == []
    checked = document["checked"]
    assert isinstance(checked, dict)
    assert checked["chain"] == 1
    assert checked["packs"] == 1
    assert checked["journal"] >= 3


def test_damage_everywhere_is_found_and_the_safe_part_repaired(
    damageable: Path, tmp_path: Path
) -> None:
    root = fork(damageable, tmp_path / "project")
    state = root / ".proml"
    # journal: a torn entry in pending/
    bad_entry = state / "journal" / "pending" / "bafkreitorn.json"
    bad_entry.parent.mkdir(parents=True, exist_ok=True)
    bad_entry.write_text('{"record_cid": "bafkreitorn", "record": {')
    # temp files of interrupted writes
    journal_tmp = state / "journal" / "pending" / "bafkreitmp.tmp"
    journal_tmp.write_text("{")
    store_tmp = state / "content" / "tmp" / "abc.123"
    store_tmp.parent.mkdir(parents=True, exist_ok=True)
    store_tmp.write_bytes(b"partial")
    for tmp in (journal_tmp, store_tmp):
        _age(tmp)
    # keystore readable by others
    keystore = state / "keys" / "default.json"
    keystore.chmod(0o644)
    # a block replaced
    block = next(p for p in (state / "content" / "blocks").rglob("*") if p.is_file())
    block.chmod(0o644)
    block.write_bytes(b"replaced\n")
    # a pack's bytes overwritten, and a torn tail on its index
    pack = next((state / "content" / "packs").glob("*.pack"))
    with pack.open("r+b") as handle:
        handle.seek(10)
        handle.write(b"\0" * 16)
    with pack.with_suffix(".idx").open("ab") as handle:
        handle.write(b"torn")
    # the log index: one event that never happened, one that is gone
    conn = sqlite3.connect(state / "chain" / "chain.sqlite")
    row = conn.execute("SELECT * FROM logs ORDER BY block LIMIT 1").fetchone()
    conn.execute("DELETE FROM logs WHERE block = ? AND log_index = ?", (row[0], row[1]))
    conn.execute(
        "INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (row[0], 99, *row[2:5], b"x", b"y", 0)
    )
    conn.commit()
    conn.close()

    code, document = _fsck(root)

    assert code == 1
    problems = _problems(document)
    assert (
        "ends before its JSON document does" in problems[f".proml/{bad_entry.relative_to(state)}"]
    )
    assert "temporary file" in problems[".proml/journal/pending/bafkreitmp.tmp"]
    assert "temporary file" in problems[".proml/content/tmp/abc.123"]
    assert problems[".proml/keys/default.json"] == "readable by others (mode 0644)"
    assert "does not hash to its name" in problems[f".proml/{block.relative_to(state)}"]
    assert "1 of its 4 block(s) are damaged" in problems[f".proml/{pack.relative_to(state)}"]
    assert "torn entry" in problems[f".proml/{pack.with_suffix('.idx').relative_to(state)}"]
    assert _chain_problems(document) == [
        f"the event index (table logs) lacks 1 log(s) of the chain (blocks {row[0]})",
        f"the event index (table logs) holds 1 log(s) the chain does not (blocks {row[0]}): "
        "history would show events that never happened",
    ]

    code, document = _fsck(root, "--repair")

    assert code == 1  # the block and the pack need a backup
    repaired = {f["path"] for f in document["findings"] if f["repaired"]}  # type: ignore[union-attr]
    assert repaired == {
        ".proml/journal/pending/bafkreitorn.json",
        ".proml/journal/pending/bafkreitmp.tmp",
        ".proml/content/tmp/abc.123",
        ".proml/keys/default.json",
        ".proml/chain/chain.sqlite",
    }
    assert not bad_entry.exists()
    assert (state / "journal" / "quarantine" / "bafkreitorn.json").is_file()
    assert not journal_tmp.exists()
    assert not store_tmp.exists()
    assert keystore.stat().st_mode & 0o777 == 0o600


def test_a_recent_temp_file_is_left_alone(damageable: Path, tmp_path: Path) -> None:
    root = fork(damageable, tmp_path / "project")
    tmp = root / ".proml" / "content" / "tmp" / "being-written"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"a proml process may be writing this right now")

    code, document = _fsck(root, "--repair")

    assert code == 0, document
    assert tmp.exists()


#: Stores a large file and is killed (SIGKILL, by itself) halfway through hashing the copy.
KILLED_IMPORT = """
    import os
    import signal
    import sys
    from pathlib import Path

    from proml_cli.content import _local

    index = _local._Pack.add_entries
    def index_then_die(self, entries):
        index(self, entries)  # the first buffer's leaves are written and indexed: killed
        os.kill(os.getpid(), signal.SIGKILL)
    _local._Pack.add_entries = index_then_die
    _local.EmbeddedStore(Path(sys.argv[1])).put_path(Path(sys.argv[2]))
"""


def test_packs_of_a_killed_import_are_reclaimed(damageable: Path, tmp_path: Path) -> None:
    root = fork(damageable, tmp_path / "project")
    packs = root / ".proml" / "content" / "packs"
    before = set(packs.iterdir())
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024))
    script = tmp_path / "killed_import.py"
    script.write_text(textwrap.dedent(KILLED_IMPORT))
    done = subprocess.run(
        [sys.executable, str(script), str(root / ".proml" / "content"), str(big)],
        check=False,
        timeout=120,
    )
    assert done.returncode == -9
    left = set(packs.iterdir()) - before
    assert left, "the killed import left nothing to reclaim"
    leftover = sum(p.stat().st_size for p in left)
    assert leftover >= 262144  # at least the leaves written before the kill

    code, document = _fsck(root)
    assert code == 0, document  # changed just now: maybe still in use, so left alone
    assert all(p.exists() for p in left)

    for path in left:
        _age(path)
    code, document = _fsck(root)
    assert code == 1
    orphan = [f for f in document["findings"] if "orphan pack" in f["problem"]]  # type: ignore[union-attr]
    assert len(orphan) == 1, document

    code, document = _fsck(root, "--repair")

    assert code == 0, document
    assert set(packs.iterdir()) == before
    # what is recorded is still whole
    (root / "data" / "blob.bin").unlink()
    ok(proml(root, "pull", "blob"))
    assert (root / "data" / "blob.bin").stat().st_size == 1024 * 1024


def test_a_pack_an_import_holds_open_is_never_reclaimed(damageable: Path, tmp_path: Path) -> None:
    root = fork(damageable, tmp_path / "project")
    pack = _Pack(str(root / ".proml" / "content" / "packs"))
    try:
        pack.append(b"\1" * 32, [b"x" * 70000], 70000)
        _age(Path(pack.path))

        report = check(root, None, repair=True, grace=0)
        assert Path(pack.path).exists()
    finally:
        pack.close()
    # Without the policy the ledger is not read, so nothing is called an orphan either.
    assert any("orphan packs not looked for" in note for note in report.notes)


def _log_rows(root: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(root / ".proml" / "chain" / "chain.sqlite") as conn:
        return conn.execute("SELECT * FROM logs ORDER BY block, log_index").fetchall()


def test_repair_rebuilds_a_damaged_event_index_from_the_chain(
    damageable: Path, tmp_path: Path
) -> None:
    root = fork(damageable, tmp_path / "project")
    rows = _log_rows(root)
    log_before = ok(proml(root, "log", "--json")).stdout
    verify_before = ok(proml(root, "verify", "data/data.csv", "--json")).stdout
    first, second = rows[0], rows[-1]
    conn = sqlite3.connect(root / ".proml" / "chain" / "chain.sqlite")
    conn.execute("DELETE FROM logs WHERE block = ? AND log_index = ?", first[:2])
    conn.execute(
        "UPDATE logs SET data = ? WHERE block = ? AND log_index = ?",
        (bytes(second[6])[:-1] + b"\x01", *second[:2]),
    )
    conn.execute("INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (10_000, 0, *second[2:]))
    conn.commit()
    conn.close()

    code, document = _fsck(root)

    assert code == 1
    assert _chain_problems(document) == [
        f"the event index (table logs) lacks 1 log(s) of the chain (blocks {first[0]})",
        "the event index (table logs) holds 1 log(s) the chain does not (blocks 10000): history "
        "would show events that never happened",
        "the event index (table logs) has 1 log(s) that differ from the chain's receipts "
        f"(blocks {second[0]})",
    ]
    assert all(
        f["repair"] == "rebuild it from the chain's blocks"
        for f in document["findings"]  # type: ignore[union-attr]
    )

    code, document = _fsck(root, "--repair")

    assert code == 0, document
    assert len(document["findings"]) == 3  # type: ignore[arg-type]
    assert all(f["repaired"] for f in document["findings"])  # type: ignore[union-attr]
    assert _log_rows(root) == rows
    assert _fsck(root) == (0, {**document, "findings": []})
    assert ok(proml(root, "log", "--json")).stdout == log_before
    assert ok(proml(root, "verify", "data/data.csv", "--json")).stdout == verify_before


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            ["DELETE FROM hist_steps WHERE action = 'validate'"],
            "the history index is stale: its tables (hist_*) were edited",
        ),
        (
            # Uncounted (its trigger dropped): found by comparing every row.
            ["DROP TRIGGER hist_steps_u", "UPDATE hist_steps SET roles = '0'"],
            "the history index differs from the events it was built from (table hist_steps): "
            "rows were edited, removed or added outside proml",
        ),
    ],
    ids=["counted", "uncounted"],
)
def test_repair_rebuilds_an_edited_history_index(
    damageable: Path, tmp_path: Path, edit: list[str], problem: str
) -> None:
    root = fork(damageable, tmp_path / "project")
    log_before = ok(proml(root, "log", "--json")).stdout
    conn = sqlite3.connect(root / ".proml" / "chain" / "chain.sqlite")
    for statement in edit:
        conn.execute(statement)
    conn.commit()
    conn.close()

    code, document = _fsck(root)

    assert code == 1
    assert _chain_problems(document) == [problem]

    repaired = proml(root, "fsck", "--repair")

    assert repaired.code == 0, str(repaired)
    assert repaired.stdout == f"chain .proml/chain/chain.sqlite: {problem} (repaired)\n"
    assert "fsck: clean: 1 problem(s) repaired" in repaired.stderr
    assert _fsck(root)[0] == 0
    result = ok(proml(root, "log", "--json"))
    assert result.stdout == log_before
    assert "history index rebuilt" not in result.stderr  # fsck rebuilt it already


def test_damaged_block_data_is_reported_never_repaired(damageable: Path, tmp_path: Path) -> None:
    from eth.db.schema import SchemaV1

    root = fork(damageable, tmp_path / "project")
    conn = sqlite3.connect(root / ".proml" / "chain" / "chain.sqlite")
    lookup = SchemaV1.make_block_number_to_hash_lookup_key(1)
    (number_row,) = conn.execute("SELECT value FROM kv WHERE key = ?", (lookup,)).fetchone()
    block_hash = rlp.decode(bytes(number_row))
    (header,) = conn.execute("SELECT value FROM kv WHERE key = ?", (block_hash,)).fetchone()
    # One byte of block 1's header changed: the log index is intact, the block is not.
    damaged = bytes(header)[:-1] + bytes([header[-1] ^ 1])
    conn.execute("UPDATE kv SET value = ? WHERE key = ?", (damaged, block_hash))
    conn.commit()
    conn.close()

    for args in ((), ("--repair",)):
        code, document = _fsck(root, *args)

        assert code == 1, document
        (problem,) = _chain_problems(document)
        assert problem.startswith("is damaged: block 1: its header"), problem
        assert not any(f["repaired"] for f in document["findings"])  # type: ignore[union-attr]
    result = proml(root, "fsck", "--repair")
    assert result.code == 1
    assert "repaired" not in result.stdout + result.stderr


@pytest.mark.parametrize("move_head_only", [False, True], ids=["appended", "head-moved"])
def test_a_block_whose_state_no_transaction_made_is_found_by_replaying_the_chain(
    damageable: Path, tmp_path: Path, move_head_only: bool
) -> None:
    from _state_forgery import append_block_with_state

    root = fork(damageable, tmp_path / "project")
    ledger = json.loads((root / ".proml" / "project.json").read_text())["ledger"]
    with sqlite3.connect(root / ".proml" / "chain" / "chain.sqlite") as conn:
        (head,) = conn.execute("SELECT max(block) FROM logs").fetchone()
    # Every trie node of the forged state hashes right, and the block's header is its own.
    append_block_with_state(
        root, "dataset", "data/data.csv", 0, ledger, move_head_only=move_head_only
    )
    expected = (
        f"the chain's head (block {head}) is not the block replayed at that height"
        if move_head_only
        else f"block {head + 1} does not follow from executing the chain again from genesis ("
    )
    # `verify` meanwhile rebuilds the history index: only the forged state is left to find.
    assert proml(root, "verify", "data/data.csv").code == 1

    for args in ((), ("--repair",)):
        code, document = _fsck(root, *args)

        assert code == 1, document
        (problem,) = _chain_problems(document)
        assert problem.startswith(expected), problem
        assert problem.endswith("restore a backup"), problem
        assert not any(f["repaired"] for f in document["findings"])  # type: ignore[union-attr]


def test_without_project_json_the_event_index_is_still_rebuilt(
    damageable: Path, tmp_path: Path
) -> None:
    root = fork(damageable, tmp_path / "project")
    rows = _log_rows(root)
    (root / ".proml" / "project.json").write_text("{}")
    with sqlite3.connect(root / ".proml" / "chain" / "chain.sqlite") as conn:
        conn.execute("DELETE FROM logs WHERE block = ? AND log_index = ?", rows[0][:2])

    code, document = _fsck(root, "--repair")

    assert code == 1  # project.json needs a backup
    chain = [f for f in document["findings"] if f["area"] == "chain"]  # type: ignore[union-attr]
    assert [f["repaired"] for f in chain] == [True]
    assert (
        "the history index was not checked: project.json does not name the ledger"
        in (
            document["notes"]  # type: ignore[operator]
        )
    )
    assert _log_rows(root) == rows
