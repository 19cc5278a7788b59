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
    chain = problems[".proml/chain/chain.sqlite"]
    assert "holds 1 log(s) the chain does not" in chain or "lacks 1 log(s)" in chain

    code, document = _fsck(root, "--repair")

    assert code == 1  # the block, the pack and the chain need a backup
    repaired = {f["path"] for f in document["findings"] if f["repaired"]}  # type: ignore[union-attr]
    assert repaired == {
        ".proml/journal/pending/bafkreitorn.json",
        ".proml/journal/pending/bafkreitmp.tmp",
        ".proml/content/tmp/abc.123",
        ".proml/keys/default.json",
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
