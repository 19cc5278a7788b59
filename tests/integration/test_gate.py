"""The gate against an attacker with write access to ``.proml/`` and against a drifting policy,
on the real embedded EVM: every attack is refused with its exit code and the check that caught it.

* the embedded chain's event index (table ``logs`` of ``.proml/chain/chain.sqlite``) with rows
  inserted, removed or edited: ``verify`` exits 1 naming check 1, ``log`` exits 1, and
  ``transition`` (which reads contract storage) agrees with ``verify``;
* a model swap: a dataset's bytes at a path no artefact declares (exit 2, asking for
  ``--artefact``), or checked as the model (exit 1, the reason names both artefacts);
* a kind loosened in the local policy (``consumable``): exit 2 for verify, transition and run;
* ``--deep`` following the inputs of a transition's run (a rejected test set);
* ``run`` preflight: an artefact the ledger does not define → exit 2 before the command starts;
* kind evolution: redefinition while unused; refusal once used, then a successor kind and a
  rebind, with old versions keeping their kind;
* the chain's state rewritten (a block appended whose state brings a rejected model back to
  ``evaluated``, so the contract then approves it): the steps no longer follow on from each
  other, and ``verify``, ``log`` and ``show`` refuse the version.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _project import POLICY, fork, log_entries, ok, one_error_line, proml, write_project
from eth_utils.crypto import keccak

pytestmark = pytest.mark.integration

#: The core-loop policy plus a held-out test set that `evaluate` uses (a transition's input that
#: the model's registration does not name).
GATE_POLICY = (
    POLICY.replace(
        "  report: {kind: table, path: out/report.txt}\n",
        "  report: {kind: table, path: out/report.txt}\n"
        "  testset: {kind: table, path: data/test.csv}\n",
    )
    .replace(
        "    uses: {model: [trained], dataset: [validated]}\n",
        "    uses: {model: [trained], testset: [validated]}\n",
    )
    .replace(
        "steps:\n",
        "steps:\n  prepare-test:\n    command: python prepare_test.py\n    produces: [testset]\n",
    )
)

PREPARE_TEST = """\
from pathlib import Path

Path("data").mkdir(exist_ok=True)
Path("data/test.csv").write_text("x,y\\n9,1\\n")
"""

REGISTERED = "Registered(bytes32,bytes32,address,bytes,bytes,bytes32[],uint256)"
TRANSITIONED = "Transitioned(bytes32,bytes32,address,bytes32,uint8,uint8,bytes,uint256)"


@dataclass(frozen=True)
class Base:
    root: Path


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """Dataset and test set validated, model trained and evaluated (on the test set)."""
    root = tmp_path_factory.mktemp("gate") / "project"
    write_project(root, GATE_POLICY)
    (root / "prepare_test.py").write_text(PREPARE_TEST)
    ok(proml(root, "init"))
    ok(proml(root, "run", "--", "python", "prepare.py"))
    ok(proml(root, "run", "--", "python", "prepare_test.py"))
    ok(proml(root, "transition", "dataset", "validate"))
    ok(proml(root, "transition", "testset", "validate"))
    ok(proml(root, "run", "--", "python", "train.py"))
    ok(proml(root, "run", "--", "python", "evaluate.py"))
    return Base(root)


@pytest.fixture
def project(base: Base, tmp_path: Path) -> Path:
    return fork(base.root, tmp_path / "project")


# ---------------------------------------------------------------------------- the index


def _db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / ".proml" / "chain" / "chain.sqlite", isolation_level=None)


def _topic0(signature: str) -> bytes:
    return bytes(keccak(text=signature))


def _rows(root: Path, signature: str) -> list[tuple[Any, ...]]:
    with _db(root) as db:
        rows = db.execute(
            "SELECT block, log_index, tx_hash, tx_index, address, topics, data, timestamp "
            "FROM logs ORDER BY block, log_index"
        ).fetchall()
    return [r for r in rows if bytes(r[5])[:32] == _topic0(signature)]


def _artefact_topic(name: str) -> bytes:
    return name.encode().ljust(32, b"\0")


def _rows_of(root: Path, signature: str, artefact: str) -> list[tuple[Any, ...]]:
    return [r for r in _rows(root, signature) if bytes(r[5])[32:64] == _artefact_topic(artefact)]


def _verify(root: Path, *args: str) -> dict[str, Any]:
    result = proml(root, "verify", *args, "--json")
    document = result.json()
    document["exit"] = result.code
    return document


def test_the_untouched_project_verifies_deep(project: Path) -> None:
    found = _verify(project, "out/model.bin", "--state", "evaluated", "--deep")
    assert found["exit"] == 0, found
    via = {(e["artefact"], e["via"]) for e in found["lineage"]}
    assert ("dataset", "register") in via
    assert ("testset", "evaluate") in via


def test_an_inserted_registration_for_random_bytes_is_not_believed(project: Path) -> None:
    evil = project / "deploy" / "evil.bin"
    evil.parent.mkdir()
    evil.write_bytes(b"never recorded\n")
    digest = hashlib.sha256(evil.read_bytes()).digest()
    # Copy the model's registration row with the evil digest, in a later block, and copy the
    # evaluate transition after it: the index now says the evil bytes are an evaluated model.
    reg = _rows_of(project, REGISTERED, "model")[0]
    move = _rows_of(project, TRANSITIONED, "model")[0]
    with _db(project) as db:
        for offset, row in enumerate((reg, move)):
            topics = bytes(row[5])
            forged = topics[:64] + digest + topics[96:]
            db.execute(
                "INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (10_000, offset, row[2], row[3], row[4], forged, row[6], row[7]),
            )

    found = _verify(project, "deploy/evil.bin", "--artefact", "model", "--state", "evaluated")
    assert found["exit"] == 1
    (reason,) = found["reasons"]
    assert reason.startswith("1: ")
    assert "the local event index lists it, the contract does not" in reason

    # transition reads the same contract storage: it agrees.
    moved = proml(project, "transition", "model", "approve", "--path", "deploy/evil.bin")
    assert moved.code == 1
    assert "is not a recorded version of 'model'" in one_error_line(moved.stderr)

    logged = proml(project, "log")
    assert logged.code == 1
    line = one_error_line(logged.stderr)
    assert "disagrees with the contract for 1 version(s)" in line
    assert "'model' sha256:" + digest.hex()[:12] in line


def test_an_undecodable_copy_of_a_genuine_row_is_named_not_skipped(project: Path) -> None:
    (reg,) = _rows_of(project, REGISTERED, "model")
    block, log_index, tx_hash, tx_index, address, topics, data, stamp = reg
    with _db(project) as db:
        db.execute(
            "INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (block, log_index + 100, tx_hash, tx_index, address, topics, bytes(data)[:-40], stamp),
        )

    result = proml(project, "verify", "out/model.bin", "--state", "evaluated")
    assert result.code == 1, str(result)
    line = one_error_line(result.stderr)
    assert f"undecodable Registered row (block {block}, log {log_index + 100})" in line
    assert proml(project, "log").code == 1


def test_a_removed_transition_is_detected(project: Path) -> None:
    (move,) = _rows_of(project, TRANSITIONED, "model")
    with _db(project) as db:
        db.execute("DELETE FROM logs WHERE block = ? AND log_index = ?", (move[0], move[1]))

    found = _verify(project, "out/model.bin", "--state", "evaluated")
    assert found["exit"] == 1
    (reason,) = found["reasons"]
    assert reason.startswith("1: history of 'model'")
    assert "the index holds 1 step(s) for it, the contract committed to 2" in reason
    assert proml(project, "show", "model").code == 1


def test_a_removed_registration_is_detected(project: Path) -> None:
    (reg,) = _rows_of(project, REGISTERED, "dataset")
    with _db(project) as db:
        db.execute("DELETE FROM logs WHERE block = ? AND log_index = ?", (reg[0], reg[1]))

    found = _verify(project, "data/data.csv")
    assert found["exit"] == 1
    (reason,) = found["reasons"]
    assert reason.startswith("1: the contract records 'dataset'")
    assert "the local event index has none of its steps" in reason

    # The model's registration names the dataset by key only, which the index can no longer
    # resolve; the training run's record names it, and the contract has it, the index not.
    deep = _verify(project, "out/model.bin", "--state", "evaluated", "--deep")
    assert deep["exit"] == 1
    unresolved, missing = deep["reasons"]
    assert unresolved.startswith(
        "6 (an input of 'model' register): no registration in the local event index has its key"
    )
    assert missing.startswith("6 (input dataset@sha256:")
    assert "the local event index has none of its steps" in missing


@pytest.mark.parametrize("field", ["roles", "record", "actor"])
def test_an_edited_step_is_detected(project: Path, field: str) -> None:
    (move,) = _rows_of(project, TRANSITIONED, "model")
    topics, data = bytes(move[5]), bytearray(bytes(move[6]))
    if field == "roles":
        data[5 * 32 - 1] ^= 0x02  # the roles bitmap (fifth word): claim another role
    elif field == "record":
        data[6 * 32 + 10] ^= 0x01  # a byte inside the record CID (after its length)
    else:
        topics = topics[:96] + b"\0" * 12 + b"\x11" * 20
    with _db(project) as db:
        db.execute(
            "UPDATE logs SET topics = ?, data = ? WHERE block = ? AND log_index = ?",
            (topics, bytes(data), move[0], move[1]),
        )

    found = _verify(project, "out/model.bin", "--state", "evaluated")
    assert found["exit"] == 1
    (reason,) = found["reasons"]
    assert reason.startswith("1: history of 'model'")
    assert "2 step(s) for it, the contract committed to 2 with another content" in reason


def test_an_inserted_role_grant_is_not_believed(project: Path) -> None:
    (grant, *_) = _rows(project, "RoleGranted(bytes32,address,address)")
    stranger = "0x" + "11" * 20
    topics = bytes(grant[5])
    forged = topics[:64] + b"\0" * 12 + bytes.fromhex(stranger[2:]) + topics[96:]
    with _db(project) as db:
        db.execute(
            "INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (10_000, 0, grant[2], grant[3], grant[4], forged, grant[6], grant[7]),
        )
    holders = ok(proml(project, "roles", "list", "--json")).json()["roles"]
    assert all(stranger not in {h.lower() for h in members} for members in holders.values())
    assert ok(proml(project, "log", "--json")).json()["entries"]


# ---------------------------------------------------------------------------- model swap


def test_a_path_no_artefact_declares_needs_artefact(project: Path) -> None:
    swapped = project / "deploy" / "model.bin"
    swapped.parent.mkdir()
    swapped.write_bytes((project / "data" / "data.csv").read_bytes())

    result = proml(project, "verify", "deploy/model.bin")
    assert result.code == 2
    assert "is not the path of an artefact" in one_error_line(result.stderr)
    assert "--artefact" in result.stderr


@pytest.mark.parametrize("where", ["deploy/model.bin", "out/model.bin"])
def test_a_dataset_checked_as_the_model_fails_naming_both(project: Path, where: str) -> None:
    swapped = project / where
    swapped.parent.mkdir(exist_ok=True)
    swapped.write_bytes((project / "data" / "data.csv").read_bytes())

    found = _verify(project, where, "--artefact", "model")
    assert found["exit"] == 1
    (reason,) = found["reasons"]
    assert "is a recorded version of 'dataset' (state 'validated'), not of 'model'" in reason
    if where == "out/model.bin":  # the model's own path: no --artefact needed
        assert _verify(project, where)["reasons"] == [reason]


# ---------------------------------------------------------------------------- policy drift


def _loosen(project: Path) -> None:
    policy = project / "proml.yaml"
    text = policy.read_text()
    assert "    consumable: [approved]\n" in text
    policy.write_text(text.replace("    consumable: [approved]\n", "    consumable: [evaluated]\n"))


def test_a_locally_loosened_consumable_is_refused_everywhere(project: Path) -> None:
    assert _verify(project, "out/model.bin")["exit"] == 1  # evaluated, not approved
    _loosen(project)

    result = proml(project, "verify", "out/model.bin")
    assert result.code == 2
    line = one_error_line(result.stderr)
    assert "kind 'weights'" in line
    assert "consumable states: policy [evaluated], ledger [approved]" in line

    moved = proml(project, "transition", "model", "approve")
    assert moved.code == 2
    assert "consumable states: policy [evaluated], ledger [approved]" in moved.stderr

    ran = proml(project, "run", "--", "python", "train.py")
    assert ran.code == 2
    assert "consumable states: policy [evaluated], ledger [approved]" in ran.stderr
    assert "proml init" in ran.stderr

    # The consumer's explicit --state is theirs, and needs no policy edit.
    (project / "proml.yaml").write_text(GATE_POLICY)
    assert _verify(project, "out/model.bin", "--state", "evaluated")["exit"] == 0


# ---------------------------------------------------------------------------- --deep


def test_deep_names_a_rejected_input_of_a_transition(project: Path) -> None:
    ok(proml(project, "transition", "testset", "reject", "--note", "leaked into training"))

    shallow = _verify(project, "out/model.bin", "--state", "evaluated")
    assert shallow["exit"] == 0, shallow
    deep = _verify(project, "out/model.bin", "--state", "evaluated", "--deep")
    assert deep["exit"] == 1
    (reason,) = deep["reasons"]
    assert reason.startswith("3 (input testset@sha256:")
    assert "of 'model' evaluate" in reason
    assert "'testset' is in state 'rejected'" in reason


# ---------------------------------------------------------------------------- run preflight


def test_run_refuses_before_the_command_when_the_ledger_lacks_an_artefact(project: Path) -> None:
    policy = project / "proml.yaml"
    policy.write_text(
        policy.read_text()
        .replace(
            "  testset: {kind: table, path: data/test.csv}\n",
            "  testset: {kind: table, path: data/test.csv}\n"
            "  summary: {kind: table, path: out/summary.txt}\n",
        )
        .replace("    produces: [model]\n", "    produces: [model, summary]\n")
    )
    (project / "train.started").unlink()

    result = proml(project, "run", "--", "python", "train.py")
    assert result.code == 2
    assert "artefact 'summary' is not defined on the ledger" in one_error_line(result.stderr)
    assert "run `proml init`" in result.stderr
    assert not (project / "train.started").exists(), "the command started"


# ---------------------------------------------------------------------------- kind evolution


def test_a_kind_is_redefined_while_no_version_of_it_exists(tmp_path: Path) -> None:
    root = write_project(tmp_path / "project", GATE_POLICY)
    ok(proml(root, "init"))
    policy = root / "proml.yaml"
    policy.write_text(
        policy.read_text().replace(
            "    states: [trained, evaluated, approved, rejected]\n",
            "    states: [trained, evaluated, approved, rejected, retired]\n",
        )
    )

    result = ok(proml(root, "init", "--json")).json()
    (action,) = result["actions"]
    assert action.startswith("redefined kind 'weights' (no version of it was recorded): states:")
    assert ok(proml(root, "init", "--json")).json()["actions"] == []


def test_a_used_kind_is_refused_then_moves_to_a_successor(project: Path) -> None:
    policy = project / "proml.yaml"
    original = policy.read_text()
    changed = original.replace(
        "      deprecate: {from: [validated], to: deprecated, roles: [curator]}\n",
        "      deprecate: {from: [validated, rejected], to: deprecated, roles: [curator]}\n",
    )
    policy.write_text(changed)
    refused = proml(project, "init")
    assert refused.code == 2
    line = one_error_line(refused.stderr)
    assert "kind 'table'" in line
    assert "versions of it are recorded" in line
    assert "transition 'deprecate' from" in line
    assert "table-v2" in refused.stderr

    # The documented way forward: keep 'table', add 'table-v2', point the dataset at it.
    successor = changed.split("kinds:\n", 1)[1].split("  weights:\n", 1)[0]
    successor = successor.replace("  table:\n", "  table-v2:\n", 1)
    policy.write_text(
        original.replace("kinds:\n", "kinds:\n" + successor, 1).replace(
            "  dataset: {kind: table, path: data/data.csv}\n",
            "  dataset: {kind: table-v2, path: data/data.csv}\n",
        )
    )
    actions = ok(proml(project, "init", "--json")).json()["actions"]
    assert actions == [
        "defined kind 'table-v2'",
        "rebound artefact 'dataset' from kind 'table' to 'table-v2' "
        "(recorded versions keep their kind)",
    ]

    old = _verify(project, "data/data.csv")
    assert (old["exit"], old["kind"], old["state"]) == (0, "table", "validated")
    # A new version follows the new kind.
    script = project / "prepare.py"
    script.write_text(script.read_text().replace("1,0", "5,5"))
    ok(proml(project, "run", "--", "python", "prepare.py"))
    new = _verify(project, "data/data.csv", "--state", "raw")
    assert (new["exit"], new["kind"]) == (0, "table-v2")
    entries = log_entries(project, "dataset")
    assert [e["action"] for e in entries] == ["register", "validate", "register"]


# ---------------------------------------------------------------------------- a real anvil


def test_on_anvil_the_node_s_events_match_the_contract_and_the_gate_holds(
    tmp_path: Path, anvil_url: str
) -> None:
    env = {"PROML_CHAIN_URL": anvil_url}
    root = write_project(tmp_path / "project", GATE_POLICY)
    (root / "prepare_test.py").write_text(PREPARE_TEST)
    for args in (
        ("init",),
        ("run", "--", "python", "prepare.py"),
        ("run", "--", "python", "prepare_test.py"),
        ("transition", "dataset", "validate"),
        ("transition", "testset", "validate"),
        ("run", "--", "python", "train.py"),
        ("run", "--", "python", "evaluate.py"),
    ):
        ok(proml(root, *args, env=env))

    result = proml(
        root, "verify", "out/model.bin", "--state", "evaluated", "--deep", "--json", env=env
    )
    verdict = result.json()
    assert result.code == 0, verdict
    assert verdict["checked"][0] == "1: recorded version, 2 step(s) matching the contract"

    (root / "deploy").mkdir()
    (root / "deploy" / "model.bin").write_bytes((root / "data" / "data.csv").read_bytes())
    assert proml(root, "verify", "deploy/model.bin", env=env).code == 2
    swapped = proml(root, "verify", "deploy/model.bin", "--artefact", "model", env=env)
    assert swapped.code == 1
    assert "a recorded version of 'dataset' (state 'validated'), not of 'model'" in swapped.stderr

    _loosen(root)
    loosened = proml(root, "verify", "out/model.bin", env=env)
    assert loosened.code == 2
    assert "consumable states: policy [evaluated], ledger [approved]" in loosened.stderr
    refused = proml(root, "init", env=env)
    assert refused.code == 2
    assert "kind 'weights'" in one_error_line(refused.stderr)
    assert "weights-v2" in refused.stderr


def test_the_index_is_checked_against_the_chain_s_receipts_and_rebuilt(project: Path) -> None:
    from proml_cli.ledger._embedded import EmbeddedLedger
    from proml_cli.project import load_project
    from proml_cli.settings import Settings

    (move,) = _rows_of(project, TRANSITIONED, "model")
    reg = _rows_of(project, REGISTERED, "dataset")[0]
    with _db(project) as db:
        db.execute("DELETE FROM logs WHERE block = ? AND log_index = ?", (move[0], move[1]))
        db.execute(
            "UPDATE logs SET data = ? WHERE block = ? AND log_index = ?",
            (bytes(reg[6])[:-1] + b"\x01", reg[0], reg[1]),
        )
        db.execute(
            "INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (10_000, 0, reg[2], reg[3], reg[4], reg[5], reg[6], reg[7]),
        )
    assert proml(project, "log").code == 1

    with load_project(str(project / "proml.yaml"), settings=Settings()).ledger() as ledger:
        assert isinstance(ledger, EmbeddedLedger)
        assert ledger.index_problems() == [
            f"the event index (table logs) lacks 1 log(s) of the chain (blocks {move[0]})",
            "the event index (table logs) holds 1 log(s) the chain does not (blocks 10000): "
            "history would show events that never happened",
            "the event index (table logs) has 1 log(s) that differ from the chain's receipts "
            f"(blocks {reg[0]})",
        ]
        ledger.rebuild_index()
        assert ledger.index_problems() == []

    assert _verify(project, "out/model.bin", "--state", "evaluated", "--deep")["exit"] == 0
    ok(proml(project, "log"))


def test_an_inserted_row_never_marks_a_pending_record_as_anchored(project: Path) -> None:
    from proml_cli.anchoring import _find_anchor
    from proml_cli.content import bytes_cid, cid_to_bytes
    from proml_cli.project import load_project
    from proml_cli.settings import Settings

    pending = bytes_cid(b'{"a pending record":true}')
    reg = _rows_of(project, REGISTERED, "model")[0]
    # The model's registration row again, in a later block, with the pending record's CID.
    data = bytes(reg[6])
    with load_project(str(project / "proml.yaml"), settings=Settings()).ledger() as ledger:
        (event,) = [
            e for e in ledger.history() if e.name == "Registered" and e.args["artefact"] == "model"
        ]
        old_cid = event.raw["recordCid"]
        assert isinstance(old_cid, bytes)
    new_cid = cid_to_bytes(pending)
    assert len(new_cid) == len(old_cid)
    forged = data.replace(old_cid, new_cid)
    with _db(project) as db:
        db.execute(
            "INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (10_000, 0, reg[2], reg[3], reg[4], reg[5], forged, reg[7]),
        )
    with load_project(str(project / "proml.yaml"), settings=Settings()).ledger() as ledger:
        assert any(e.args.get("recordCid") == pending for e in ledger.history())
        assert _find_anchor(ledger, pending) is None


# ---------------------------------------------------------------------------- the state


def test_a_rejected_version_brought_back_by_a_forged_state_is_refused(project: Path) -> None:
    from _chain_helpers import random_cid
    from _state_forgery import append_block_with_state

    import proml_cli
    from proml_cli.ledger import Move, VersionRef

    ok(proml(project, "transition", "model", "reject"))
    assert proml(project, "transition", "model", "approve").code == 1
    ledger = json.loads((project / ".proml" / "project.json").read_text())["ledger"]
    evaluated = 1  # weights: trained, evaluated, approved, rejected
    append_block_with_state(project, "model", "out/model.bin", evaluated, ledger)

    # proml refuses to move it: its last step ended in 'rejected', the contract says otherwise.
    refused = proml(project, "transition", "model", "approve")
    assert refused.code == 1
    assert "its history does not match the contract: the contract says state 'evaluated'" in (
        refused.stderr
    )
    # The forger sends the approval to the contract directly, with the project's key: the
    # contract reads the forged word and approves (the chain's code cannot tell).
    digest = hashlib.sha256((project / "out" / "model.bin").read_bytes()).hexdigest()
    opened = proml_cli.open_project(project)
    with opened.context.ledger(opened.context.signer()) as chain:
        chain.submit(random_cid(), [], [Move(VersionRef("model", digest), "approve")])

    verdict = _verify(project, "out/model.bin", "--deep")
    assert verdict["exit"] == 1
    (reason,) = verdict["reasons"]
    assert "step 4 (approve) starts from 'evaluated', but step 3 ended in 'rejected'" in reason
    assert "changed outside the contract" in reason
    for command in (("log",), ("show", "model")):
        shown = proml(project, *command)
        assert shown.code == 1, command
        assert "changed outside the contract" in shown.stderr, command
    # and proml moves it no further
    assert "changed outside the contract" in proml(project, "transition", "model", "reject").stderr


def test_run_refuses_an_input_whose_state_was_forged_back(project: Path) -> None:
    from _state_forgery import append_block_with_state

    ok(proml(project, "transition", "dataset", "reject"))
    ledger = json.loads((project / ".proml" / "project.json").read_text())["ledger"]
    validated = 1  # table: raw, validated, rejected, deprecated
    append_block_with_state(project, "dataset", "data/data.csv", validated, ledger)
    (project / "train.started").unlink(missing_ok=True)

    refused = proml(project, "run", "--", "python", "train.py")

    assert refused.code == 1
    assert "input 'dataset' (data/data.csv): its history does not match the contract" in (
        refused.stderr
    )
    assert not (project / "train.started").exists()  # the command never ran
