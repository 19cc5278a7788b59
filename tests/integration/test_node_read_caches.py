"""What a warm node keeps between reads (contract storage by root, decoded events while every
index row is the same, step-chain heads by every field they hash) never makes it more trusting.

Real ``proml`` processes and the real node on the embedded chain. Between two requests to the
same warm node an attacker edits ``.proml/chain/chain.sqlite``: index rows (edited, removed,
a version inserted), or a leaf of the contract's storage trie. Answers stay the untouched
project's; a forged version is never served; and a process that keeps nothing refuses the
edited storage (a trie node that does not match its hash) instead of reading it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _index_tamper import index_db, index_steps, insert_forged_version
from _nodes import stop_nodes
from _project import (
    build_project,
    call_env,
    fork,
    process_env,
    proml_argv,
)

pytestmark = pytest.mark.integration

TIMEOUT = 120.0


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_project(tmp_path_factory.mktemp("caches") / "project")
    return root


@pytest.fixture
def project(base: Path, tmp_path: Path) -> Any:
    root = fork(base, tmp_path / "project")
    yield root
    stop_nodes(tmp_path)


def _cli(root: Path, *args: str, node: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        proml_argv(*args),
        cwd=root,
        env=process_env(None if node else {"PROML_NODE": "off"}),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _log(root: Path, *, node: bool = True) -> list[dict[str, Any]]:
    done = _cli(root, "log", "--json", node=node)
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, Any]] = json.loads(done.stdout)["entries"]
    return entries


def _node_pid(root: Path) -> int:
    return int(json.loads((root / ".proml" / "node.pid").read_text())["pid"])


def test_index_rows_edited_between_two_requests_are_never_served(project: Path) -> None:
    before = _log(project)  # the node is warm: storage, events and heads kept
    pid = _node_pid(project)
    assert _log(project) == before
    move = next(r for r in index_steps(project, "model") if r[9] != "register")
    with index_db(project) as db:
        db.execute(
            "UPDATE hist_steps SET actor = ?, roles = '0' WHERE block = ? AND log_index = ?",
            ("0x" + "11" * 20, move[0], move[1]),
        )
    assert _log(project) == before
    assert index_steps(project, "model")[1] == move  # rebuilt from the chain
    with index_db(project) as db:
        db.execute("DELETE FROM hist_steps WHERE block = ? AND log_index = ?", move[:2])
    assert _log(project) == before
    assert _node_pid(project) == pid  # the same warm node answered every time


def test_a_version_inserted_between_two_requests_is_never_served(project: Path) -> None:
    before = _log(project)
    evil = project / "deploy" / "evil.bin"
    evil.parent.mkdir()
    evil.write_bytes(b"never recorded\n")
    insert_forged_version(project, "model", evil)
    verdict = _cli(project, "verify", "deploy/evil.bin", "--artefact", "model", "--json")
    assert verdict.returncode == 1, verdict.stderr
    assert "is not a recorded version of 'model'" in json.loads(verdict.stdout)["reasons"][0]
    assert _log(project) == before


def _forge_storage_leaf(root: Path, artefact: str, digest: str) -> None:
    """Rewrite the storage-trie leaf of a version's word in the chain database (same key)."""
    import rlp

    from proml_cli.ledger import VersionRef, _storage
    from proml_cli.ledger._client import version_key
    from proml_cli.ledger._layout import VERSIONS_SLOT
    from proml_cli.project import load_project
    from proml_cli.settings import Settings

    policy = str(root / "proml.yaml")
    with load_project(policy, settings=Settings.from_environ()).ledger() as ledger:
        header = ledger._tester.backend.chain.get_canonical_head()  # type: ignore[attr-defined]
        address = bytes.fromhex(ledger.address.removeprefix("0x"))
        fetch = ledger._trie_nodes  # type: ignore[attr-defined]
        storage_root = _storage.storage_root(bytes(header.state_root), address, fetch)
    slot = keccak_of(version_key(VersionRef(artefact, digest)) + VERSIONS_SLOT.to_bytes(32, "big"))
    path = keccak_of(slot).hex()
    ref, depth = storage_root, 0
    with index_db(root) as db:
        while True:
            (stored,) = db.execute("SELECT value FROM kv WHERE key = ?", (ref,)).fetchone()
            node = rlp.decode(stored)
            if len(node) == 17:
                ref, depth = node[int(path[depth], 16)], depth + 1
                continue
            assert len(node) == 2  # the version's leaf (a 32-byte word is never held inline)
            word = int.from_bytes(rlp.decode(node[1]), "big")
            forged = rlp.encode([node[0], rlp.encode(word ^ (1 << 200))])
            db.execute("UPDATE kv SET value = ? WHERE key = ?", (forged, ref))
            return


def keccak_of(data: bytes) -> bytes:
    from proml_cli.ledger._storage import keccak

    return keccak(data)


def test_contract_storage_edited_on_disk_is_refused_cold_and_unchanged_warm(
    project: Path,
) -> None:
    before = _log(project)  # the warm node keeps the words verified under this storage root
    model = next(e for e in before if e["artefact"] == "model")
    _forge_storage_leaf(project, "model", model["sha256"].removeprefix("sha256:"))
    assert _log(project) == before  # the same root: the words read under it, not the forgery
    cold = _cli(project, "log", "--json", node=False)
    assert cold.returncode == 2, cold.stderr
    assert "is damaged" in cold.stderr
    assert "does not match its hash" in cold.stderr
    assert cold.stdout == ""


def test_a_checked_history_is_reused_only_while_rows_and_storage_are_the_same(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process, as the node reads: the same checked history object while nothing changed;
    a new one after another process's write; the chain's answer after an edit of the index."""
    import proml_cli as proml
    from proml_cli import history
    from proml_cli.ledger import _storage

    for name, value in call_env().items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    opened = proml.open_project(project)

    def read() -> history.History:
        with opened._context.ledger() as ledger:
            return history.read(ledger)

    assert read() is not read()  # a process that keeps nothing checks afresh
    _storage.keep_across_reads()
    try:
        first = read()
        assert read() is first
        rows = opened.log()
        assert opened.log() == rows
        done = _cli(project, "transition", "dataset", "deprecate", node=False)
        assert done.returncode == 0, done.stderr
        after = read()
        assert after is not first
        assert [v.state for v in after.versions.values() if v.artefact == "dataset"] == [
            "deprecated"
        ]
        assert read() is after
        # The index's rows edited: it is rebuilt, and what is served is the chain's.
        with index_db(project) as db:
            db.execute("UPDATE hist_steps SET time = time + 1")
        assert [e.to_json() for e in opened.log()] == _log(project, node=False)
    finally:
        _storage.keep_across_reads(False)
