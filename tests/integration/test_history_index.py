"""The decoded history index (tables ``hist_*`` of ``.proml/chain/chain.sqlite``) against an
attacker with write access to ``.proml/``, on the real embedded EVM.

Whatever is done to the index — a row edited, removed or inserted, rows of another project,
a tip whose hash is not the chain's — no command serves it: the rows served for a version must
recompute the contract's step-chain head, and the index is rebuilt from the chain when they do
not (or when it does not belong to this ledger, or its tip is not the chain's block). Answers
stay the untouched project's answers.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _index_tamper import index_db, index_steps, insert_forged_version
from _project import POLICY, build_project, fork, log_entries, ok, proml, write_project

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Base:
    root: Path
    log: list[dict[str, Any]]
    shown: dict[str, Any]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """Dataset validated, model trained and evaluated; the log and `show model` as they are."""
    root = build_project(tmp_path_factory.mktemp("hindex") / "project")
    shown = ok(proml(root, "show", "model", "--json")).json()
    return Base(root, log_entries(root), shown)


@pytest.fixture
def project(base: Base, tmp_path: Path) -> Path:
    return fork(base.root, tmp_path / "project")


def _answers_are_untouched(root: Path, base: Base) -> None:
    assert log_entries(root) == base.log
    assert log_entries(root, "--limit", "2") == base.log[:2]
    shown = ok(proml(root, "show", "model", "--json")).json()
    assert shown == base.shown
    verdict = proml(root, "verify", "out/model.bin", "--state", "evaluated", "--json")
    assert verdict.code == 0, verdict.stdout


def test_the_index_holds_every_step_and_the_untouched_project_reads_from_it(
    project: Path, base: Base
) -> None:
    with index_db(project) as db:
        (count,) = db.execute("SELECT count(*) FROM hist_steps").fetchone()
    assert count == len(base.log)
    _answers_are_untouched(project, base)


@pytest.mark.parametrize("column", ["record_cid", "actor", "roles", "source", "artefact"])
def test_an_edited_row_is_rebuilt_never_served(project: Path, base: Base, column: str) -> None:
    move = next(r for r in index_steps(project, "model") if r[9] != "register")
    value: object = {
        "record_cid": "bafkreiforgedforgedforgedforgedforgedforgedforgedforgedfor",
        "actor": "0x" + "11" * 20,
        "roles": "0",
        "source": 0,
        "artefact": "dataset",
    }[column]
    with index_db(project) as db:
        db.execute(
            f"UPDATE hist_steps SET {column} = ? WHERE block = ? AND log_index = ?",  # noqa: S608
            (value, move[0], move[1]),
        )
    _answers_are_untouched(project, base)
    if column != "record_cid":  # that text is never served, nor looked up: nothing to rebuild
        assert index_steps(project, "model")[1] == move  # rebuilt from the chain


def test_registration_counts_follow_the_steps_and_an_edited_count_is_rebuilt(
    project: Path, base: Base
) -> None:
    def counts() -> tuple[dict[str, int], dict[str, int]]:
        with index_db(project) as db:
            kept = dict(db.execute("SELECT artefact, registered FROM hist_counts"))
            rows = db.execute(
                "SELECT artefact, count(*) FROM hist_steps WHERE action = 'register' "
                "GROUP BY artefact"
            )
            return kept, dict(rows)

    kept, counted = counts()
    assert kept == counted
    assert kept["model"] >= 1
    shown = ok(proml(project, "status", "--json")).json()
    versions = {row["artefact"]: row["versions"] for row in shown["artefacts"]}
    assert versions == {name: kept.get(name, 0) for name in versions}
    with index_db(project) as db:
        db.execute("UPDATE hist_counts SET registered = registered + 5 WHERE artefact = 'model'")
    assert ok(proml(project, "status", "--json")).json() == shown
    assert counts() == (kept, counted)  # rebuilt from the chain
    _answers_are_untouched(project, base)


def test_a_removed_row_is_rebuilt(project: Path, base: Base) -> None:
    register, move = index_steps(project, "model")[:2]
    with index_db(project) as db:
        db.execute("DELETE FROM hist_steps WHERE block = ? AND log_index = ?", move[:2])
    _answers_are_untouched(project, base)
    with index_db(project) as db:
        db.execute("DELETE FROM hist_steps WHERE block = ? AND log_index = ?", register[:2])
    _answers_are_untouched(project, base)


def test_an_inserted_version_is_never_served(project: Path, base: Base) -> None:
    evil = project / "deploy" / "evil.bin"
    evil.parent.mkdir()
    evil.write_bytes(b"never recorded\n")
    digest = insert_forged_version(project, "model", evil)
    verdict = proml(project, "verify", "deploy/evil.bin", "--artefact", "model", "--json")
    assert verdict.code == 1
    assert "is not a recorded version of 'model'" in verdict.json()["reasons"][0]
    _answers_are_untouched(project, base)
    assert all(r[6] != digest for r in index_steps(project, "model"))


def test_another_project_s_index_is_dropped(project: Path, base: Base, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_project(other, POLICY)
    ok(proml(other, "init"))
    ok(proml(other, "run", "--", "python", "prepare.py"))
    with index_db(project) as db:
        db.execute("ATTACH DATABASE ? AS other", (str(other / ".proml/chain/chain.sqlite"),))
        for table in ("hist_steps", "hist_inputs", "hist_other", "hist_meta"):
            db.execute(f"DELETE FROM main.{table}")  # noqa: S608
            db.execute(f"INSERT INTO main.{table} SELECT * FROM other.{table}")  # noqa: S608
        db.execute("DETACH DATABASE other")
    _answers_are_untouched(project, base)


def test_a_tip_that_is_not_the_chain_s_block_rebuilds_the_index(project: Path, base: Base) -> None:
    register = index_steps(project, "model")[0]
    with index_db(project) as db:
        db.execute("UPDATE hist_meta SET value = ? WHERE key = 'tip_hash'", ("0x" + "ab" * 32,))
        db.execute(
            "UPDATE hist_steps SET record_cid = 'forged' WHERE block = ? AND log_index = ?",
            register[:2],
        )
    ok(proml(project, "status"))
    assert index_steps(project, "model")[0] == register  # rebuilt before anything was read
    _answers_are_untouched(project, base)


def test_a_write_finds_its_anchor_through_the_index(project: Path, base: Base) -> None:
    from proml_cli.anchoring import _find_anchor
    from proml_cli.project import load_project
    from proml_cli.settings import Settings

    newest = base.log[0]
    policy = str(project / "proml.yaml")
    with load_project(policy, settings=Settings.from_environ()).ledger() as ledger:
        found = _find_anchor(ledger, newest["record_cid"])
        assert found is not None
        assert (found.tx_hash, found.block) == (newest["tx_hash"], newest["block"])
        assert (
            _find_anchor(ledger, "bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
            is None
        )


def _notes(stderr: str) -> list[str]:
    return [line.rstrip() for line in stderr.splitlines() if "history index rebuilt" in line]


def _edit_a_served_row_unseen(db: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    # Without its trigger the edit is not counted: only the contract check finds it.
    db.execute("DROP TRIGGER hist_steps_u")
    db.execute(
        "UPDATE hist_steps SET roles = '0' WHERE block = ? AND log_index = ?", (row[0], row[1])
    )


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (
            lambda db, row: db.execute(
                "DELETE FROM hist_steps WHERE block = ? AND log_index = ?", row[:2]
            ),
            "its tables (hist_*) were edited",
        ),
        (
            lambda db, row: db.execute(
                "UPDATE hist_meta SET value = ? WHERE key = 'tip_hash'", ("0x" + "ab" * 32,)
            ),
            "the chain changed at or below block {tip}",
        ),
        (
            lambda db, row: db.execute(
                "UPDATE logs SET tx_index = tx_index WHERE block = ?", (row[0],)
            ),
            "the event index (table logs) was edited",
        ),
        (_edit_a_served_row_unseen, "what it served disagreed with the contract"),
    ],
    ids=["own-rows", "tip", "event-index", "contract"],
)
def test_a_rebuild_is_noted_once_with_its_reason(
    project: Path, base: Base, damage: Any, why: str
) -> None:
    quiet = ok(proml(project, "log"))
    assert _notes(quiet.stderr) == []  # an index that matches the chain is not rebuilt
    move = index_steps(project, "model")[1]
    with index_db(project) as db:
        (tip,) = db.execute("SELECT value FROM hist_meta WHERE key = 'tip'").fetchone()
        damage(db, move)

    first = ok(proml(project, "log"))

    assert _notes(first.stderr) == [f"WARNING  history index rebuilt: {why.format(tip=tip)}"]
    assert first.stdout == quiet.stdout
    assert index_steps(project, "model")[1] == move
    again = ok(proml(project, "log"))
    assert _notes(again.stderr) == []
    _answers_are_untouched(project, base)
