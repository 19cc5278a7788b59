"""Damaged and hostile local state: every case is one line naming the file, and an exit code.

Each case damages a fresh copy of an initialised project (see ``conftest.py``), runs one
command, and expects its exit code (2 for bad local state, 1 for a negative answer) and a
fragment of its one ``proml: error:`` line. None may end in a traceback, and none may replace
what it found (a new genesis chain, a rewritten keystore ...).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from _project import fork, one_error_line, process_env, proml, proml_argv

pytestmark = pytest.mark.integration

BAD_NAME = "bafkreibadentry"


def _state(root: Path) -> Path:
    return root / ".proml"


def _done_entry(root: Path) -> Path:
    return sorted((_state(root) / "journal" / "done").glob("*.json"))[0]


def _pending(data: bytes | str, name: str = BAD_NAME) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        directory = _state(root) / "journal" / "pending"
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{name}.json"
        if isinstance(data, str):
            target.write_text(data)
        else:
            target.write_bytes(data)

    return damage


def _pending_edited(edit: Callable[[dict[str, object]], object]) -> Callable[[Path], None]:
    """A real entry (taken from done/) edited by ``edit`` and put back as pending."""

    def damage(root: Path) -> None:
        source = _done_entry(root)
        data = json.loads(source.read_text())
        replaced = edit(data)
        document = data if replaced is None else replaced
        target = _state(root) / "journal" / "pending" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document))

    return damage


def _truncated_entry(root: Path) -> None:
    source = _done_entry(root)
    raw = source.read_bytes()
    target = _state(root) / "journal" / "pending" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(raw[: len(raw) // 2])


def _drop(key: str) -> Callable[[dict[str, object]], object]:
    def edit(data: dict[str, object]) -> None:
        del data[key]

    return edit


def _set(key: str, value: object) -> Callable[[dict[str, object]], object]:
    def edit(data: dict[str, object]) -> None:
        data[key] = value

    return edit


def _bad_digest(data: dict[str, object]) -> None:
    moves = data["moves"] or data["registrations"]
    assert isinstance(moves, list)
    moves[0]["digest"] = "not-a-digest"


def _altered_record(data: dict[str, object]) -> None:
    record = data["record"]
    assert isinstance(record, dict)
    record["project"] = "someone-else"


def _chain(root: Path) -> Path:
    return _state(root) / "chain" / "chain.sqlite"


def _write(relative: str, data: bytes | str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        target = root / relative
        if target.is_dir():
            target.rmdir()
        elif target.exists():
            target.unlink()
        if isinstance(data, str):
            target.write_text(data)
        else:
            target.write_bytes(data)

    return damage


def _make_dir(relative: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        target = root / relative
        if target.is_dir():
            import shutil

            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        target.mkdir()
        (target / "x").write_text("x")

    return damage


def _truncate(relative: str, keep: float = 0.5) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        target = root / relative
        size = target.stat().st_size
        with target.open("r+b") as handle:
            handle.truncate(int(size * keep))

    return damage


def _checkpoint(root: Path) -> None:
    """Fold the chain's WAL into the database file, so a damage to the file is the whole story."""
    conn = sqlite3.connect(_chain(root))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{_chain(root)}{suffix}").unlink(missing_ok=True)


def _sql(statement: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        conn = sqlite3.connect(_chain(root))
        conn.execute(statement)
        conn.commit()
        conn.close()
        _checkpoint(root)

    return damage


def _chain_file(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    def both(root: Path) -> None:
        _checkpoint(root)
        damage(root)

    return both


def _remove(relative: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        target = root / relative
        target.unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)

    return damage


def _chain_dir_a_file(root: Path) -> None:
    import shutil

    shutil.rmtree(_state(root) / "chain")
    (_state(root) / "chain").write_text("not a directory\n")


def _keystore(data: bytes | str) -> Callable[[Path], None]:
    return _write(".proml/keys/default.json", data)


def _keystore_edited(edit: Callable[[dict[str, object]], object]) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        path = _state(root) / "keys" / "default.json"
        data = json.loads(path.read_text())
        replaced = edit(data)
        path.write_text(json.dumps(data if replaced is None else replaced))

    return damage


def _empty_kdfparams(data: dict[str, object]) -> None:
    crypto = data["crypto"]
    assert isinstance(crypto, dict)
    crypto["kdfparams"] = {}


def _project_edited(edit: Callable[[dict[str, object]], object]) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        path = _state(root) / "project.json"
        data = json.loads(path.read_text())
        replaced = edit(data)
        path.write_text(json.dumps(data if replaced is None else replaced))

    return damage


def _blob_pack(root: Path) -> tuple[Path, Path]:
    packs = sorted((_state(root) / "content" / "packs").glob("*.pack"))
    assert len(packs) == 1, packs
    return packs[0], packs[0].with_suffix(".idx")


def _pack_overwritten(root: Path) -> None:
    pack, _ = _blob_pack(root)
    with pack.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\xff" * 64)


def _pack_truncated(root: Path) -> None:
    pack, _ = _blob_pack(root)
    with pack.open("r+b") as handle:
        handle.truncate(pack.stat().st_size // 2)


def _pack_deleted(root: Path) -> None:
    _blob_pack(root)[0].unlink()


def _index_huge_length(root: Path) -> None:
    _, index = _blob_pack(root)
    raw = bytearray(index.read_bytes())
    raw[40:44] = (2**31).to_bytes(4, "big")  # the first entry's length
    index.write_bytes(bytes(raw))


def _index_garbage(root: Path) -> None:
    _, index = _blob_pack(root)
    index.write_bytes(os.urandom(44 * 3))


def _block_of(root: Path, name: str) -> Path:
    """The block file of an artefact's root block (a small file in blocks/)."""
    result = proml(root, "show", name, "--json")
    assert result.code == 0, str(result)
    from proml_cli.content._unixfs import Cid

    digest = Cid.parse(json.loads(result.stdout)["cid"]).digest.hex()
    return _state(root) / "content" / "blocks" / digest[:2] / digest


def _block_replaced(name: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        block = _block_of(root, name)
        block.chmod(0o644)
        block.write_bytes(b"other bytes entirely\n")

    return damage


def _blocks_dir_a_file(root: Path) -> None:
    import shutil

    blocks = _state(root) / "content" / "blocks"
    shutil.rmtree(blocks)
    blocks.write_text("not a directory\n")


def _pulled(root: Path) -> None:
    (root / "data" / "data.csv").unlink()
    (root / "data" / "blob.bin").unlink()


def _then(*damages: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        for one in damages:
            one(root)

    return damage


@dataclass(frozen=True)
class Case:
    """One damaged state: how to make it, what to run, what must come out."""

    id: str
    damage: Callable[[Path], None]
    argv: tuple[str, ...]
    code: int
    fragment: str
    after: Callable[[Path], None] | None = None


def _no_new_chain(root: Path) -> None:
    """The damaged chain was reported, not replaced by a new genesis chain."""
    assert not _chain(root).exists()


def _not_started(root: Path) -> None:
    """The command did not run (prepare.py would have rewritten data/data.csv)."""
    assert (root / "data" / "data.csv").stat().st_mtime_ns == (root / "mtime").stat().st_mtime_ns


def _mark(root: Path) -> None:
    mtime = (root / "data" / "data.csv").stat().st_mtime_ns
    (root / "mtime").write_text("")
    os.utime(root / "mtime", ns=(mtime, mtime))


PENDING = f".proml/journal/pending/{BAD_NAME}.json"
CHAIN = ".proml/chain/chain.sqlite"
PROJECT = ".proml/project.json"
KEYSTORE = ".proml/keys/default.json"
RUN = ("run", "--", "python", "prepare.py")
PULL_DATASET = ("pull", "dataset")
PULL_BLOB = ("pull", "blob")

CASES = [
    # ------------------------------------------------------------- journal entries
    Case("journal-garbage", _pending(b"garbage {{ not json"), ("sync",), 2, "is not valid JSON"),
    Case("journal-empty", _pending(b""), ("sync",), 2, f"{PENDING} is empty"),
    Case("journal-not-utf8", _pending(b'{"a": "\xff\xfe"}'), ("sync",), 2, "not UTF-8"),
    Case("journal-truncated", _truncated_entry, ("sync",), 2, "truncated"),
    Case("journal-list", _pending("[1, 2]"), ("sync",), 2, "the entry is a list, not an object"),
    Case("journal-string", _pending('"entry"'), ("sync",), 2, "the entry is a string"),
    Case(
        "journal-no-registrations",
        _pending_edited(_drop("registrations")),
        ("sync",),
        2,
        "registrations is missing, not a list",
    ),
    Case(
        "journal-moves-object",
        _pending_edited(_set("moves", {"a": 1})),
        ("sync",),
        2,
        "moves is an object, not a list",
    ),
    Case("journal-bad-digest", _pending_edited(_bad_digest), ("sync",), 2, "is not a sha256"),
    Case("journal-record-list", _pending_edited(_set("record", [])), ("sync",), 2, "record is"),
    Case(
        "journal-record-altered",
        _pending_edited(_altered_record),
        ("sync",),
        2,
        "(altered)",
    ),
    Case("journal-entry-a-directory", _make_dir(PENDING), ("sync",), 2, "is a directory"),
    Case(
        "journal-pending-a-file",
        _write(".proml/journal/pending", "x"),
        ("sync",),
        2,
        "journal/pending is not a directory",
    ),
    # ------------------------------------------------------------- chain database
    Case("chain-garbage", _write(CHAIN, b"garbage " * 512), ("log",), 2, "not a SQLite database"),
    Case("chain-empty", _write(CHAIN, b""), ("log",), 2, f"{CHAIN} is empty"),
    Case("chain-missing", _remove(CHAIN), ("log",), 2, f"{CHAIN} is missing", _no_new_chain),
    Case(
        "chain-missing-run",
        _then(_remove(CHAIN), _mark),
        RUN,
        2,
        f"{CHAIN} is missing",
        _then(_no_new_chain, _not_started),
    ),
    Case(
        "chain-missing-transition",
        _remove(CHAIN),
        ("transition", "dataset", "deprecate"),
        2,
        f"{CHAIN} is missing",
        _no_new_chain,
    ),
    Case("chain-missing-init", _remove(CHAIN), ("init",), 2, f"{CHAIN} is missing", _no_new_chain),
    Case(
        "chain-truncated",
        _chain_file(_truncate(CHAIN, 0.3)),
        ("status",),
        2,
        f"{CHAIN} is damaged",
    ),
    Case(
        "chain-header-only",
        _chain_file(_truncate(CHAIN, 0.0001)),
        ("log",),
        2,
        f"{CHAIN} is damaged",
    ),
    Case("chain-kv-emptied", _sql("DELETE FROM kv"), ("log",), 2, "key-value table is empty"),
    Case("chain-kv-halved", _sql("DELETE FROM kv WHERE key >= X'80'"), ("log",), 2, "damaged"),
    Case("chain-kv-dropped", _sql("DROP TABLE kv"), ("log",), 2, "table kv is missing"),
    Case(
        "chain-genesis-forgotten",
        _sql("DELETE FROM meta"),
        ("log",),
        2,
        "genesis entry is missing",
    ),
    Case("chain-a-directory", _make_dir(CHAIN), ("log",), 2, f"{CHAIN} is not a file"),
    Case(
        "chain-lock-a-directory",
        _make_dir(".proml/chain/chain.lock"),
        ("log",),
        2,
        "chain lock .proml/chain/chain.lock is not a regular file",
    ),
    Case(
        "chain-dir-a-file",
        _chain_dir_a_file,
        ("log",),
        2,
        "cannot use .proml/chain",
    ),
    # ------------------------------------------------------------- project.json
    Case("project-garbage", _write(PROJECT, "}{ not json"), ("log",), 2, "is not valid JSON"),
    Case("project-partial", _truncate(PROJECT), ("status",), 2, f"{PROJECT} is not valid JSON"),
    Case("project-empty", _write(PROJECT, ""), ("log",), 2, f"{PROJECT} is not valid JSON"),
    Case("project-list", _write(PROJECT, "[]"), ("log",), 2, "holds a JSON list"),
    Case("project-not-utf8", _write(PROJECT, b'{"backend": "\xff"}'), ("log",), 2, "not UTF-8"),
    Case("project-a-directory", _make_dir(PROJECT), RUN, 2, f"{PROJECT} is a directory"),
    Case(
        "project-no-ledger",
        _project_edited(_drop("ledger")),
        ("log",),
        2,
        "'ledger' is missing",
    ),
    Case(
        "project-chain-id-text",
        _project_edited(_set("chain_id", "one")),
        ("log",),
        2,
        "'chain_id' is not an integer",
    ),
    Case(
        "project-ledger-not-address",
        _project_edited(_set("ledger", "0xnot-an-address")),
        ("log",),
        2,
        "'ledger' is not an address",
    ),
    # ------------------------------------------------------------- keystores
    Case("keystore-garbage", _keystore("garbage"), RUN, 2, f"{KEYSTORE} is not valid JSON"),
    Case("keystore-truncated", _truncate(KEYSTORE), RUN, 2, "is not valid JSON"),
    Case("keystore-empty", _keystore(""), RUN, 2, "is not valid JSON"),
    Case("keystore-list", _keystore("[]"), RUN, 2, "holds a JSON list"),
    Case(
        "keystore-no-crypto",
        _keystore_edited(_drop("crypto")),
        ("transition", "dataset", "deprecate"),
        2,
        "'crypto' is missing",
    ),
    Case(
        "keystore-bad-address",
        _keystore_edited(_set("address", "nope")),
        RUN,
        2,
        "'address' is missing or not an address",
    ),
    Case(
        "keystore-empty-kdfparams",
        _keystore_edited(_empty_kdfparams),
        RUN,
        2,
        "is not a V3 keystore",
    ),
    Case("keystore-a-directory", _make_dir(KEYSTORE), RUN, 2, "is a directory"),
    Case("keystore-list-accounts", _keystore("{"), ("account", "list"), 2, "not valid JSON"),
    # ------------------------------------------------------------- run --summary-json
    Case(
        "summary-json-missing-directory",
        _mark,
        ("run", "--summary-json", "no/such/dir/summary.json", "--", "python", "prepare.py"),
        2,
        "directory no/such/dir does not exist",
        _not_started,
    ),
    Case(
        "summary-json-a-directory",
        _then(_mark, lambda root: (root / "summary.json").mkdir()),
        ("run", "--summary-json", "summary.json", "--", "python", "prepare.py"),
        2,
        "is a directory",
        _not_started,
    ),
    # ------------------------------------------------------------- content store
    Case(
        "store-block-replaced",
        _then(_block_replaced("dataset"), _pulled),
        PULL_DATASET,
        2,
        "does not hash to its CID",
    ),
    Case(
        "store-pack-overwritten",
        _then(_pack_overwritten, _pulled),
        PULL_BLOB,
        2,
        "does not hash to its CID",
    ),
    Case("store-pack-truncated", _then(_pack_truncated, _pulled), PULL_BLOB, 2, "is truncated"),
    Case(
        "store-pack-deleted",
        _then(_pack_deleted, _pulled),
        PULL_BLOB,
        2,
        "No such file or directory",
    ),
    Case(
        "store-index-huge-length",
        _then(_index_huge_length, _pulled),
        PULL_BLOB,
        2,
        "more than a block can hold",
    ),
    Case(
        "store-blocks-a-file",
        _then(_blocks_dir_a_file, _pulled),
        PULL_DATASET,
        2,
        "the content store is damaged",
    ),
]


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_damaged_state_gives_one_line_and_an_exit_code(
    case: Case, damageable: Path, tmp_path: Path
) -> None:
    root = fork(damageable, tmp_path / "project")
    case.damage(root)

    result = proml(root, *case.argv)

    assert result.code == case.code, str(result)
    assert not result.detail, str(result)  # no exception escaped the CLI boundary
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    assert case.fragment in line, str(result)
    if case.after is not None:
        case.after(root)


#: A few cases again as real processes: what a user sees on a terminal, not only CliRunner.
REAL = ["journal-truncated", "chain-garbage", "chain-kv-emptied", "project-list", "keystore-list"]


@pytest.mark.parametrize("case", [c for c in CASES if c.id in REAL], ids=REAL)
def test_damaged_state_in_a_real_process(case: Case, damageable: Path, tmp_path: Path) -> None:
    root = fork(damageable, tmp_path / "project")
    case.damage(root)

    done = subprocess.run(
        proml_argv(*case.argv),
        cwd=root,
        env=process_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == case.code, done.stderr
    assert "Traceback" not in done.stderr
    assert case.fragment in one_error_line(done.stderr)
