"""The ledger's pinned identity (``proml.lock``) on the real embedded chain and on real anvils.

Attacks: ``.proml/project.json`` redirected to a look-alike ledger deployed by another key; the
chain reset and another project's ledger deployed at the same address (same deployer, same
nonce); a lock missing (a project from before the lock) or naming another ledger on joining.
Each is refused with exit 2 naming the mismatch, and ``sync`` anchors nothing into it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _network import rpc_config, rpc_policy
from _project import (
    build_project,
    fork,
    journal_files,
    log_entries,
    ok,
    one_error_line,
    proml,
    write_project,
)

from proml_cli.account import load_signer
from proml_cli.ledger import ChainConfig, open_ledger
from proml_cli.record import canonical_bytes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("identity") / "project", train=False)


@pytest.fixture
def project(base: Path, tmp_path: Path) -> Path:
    return fork(base, tmp_path / "project")


def _lock(root: Path) -> dict[str, Any]:
    lock = json.loads((root / "proml.lock").read_text())
    assert isinstance(lock, dict)
    return lock


def _state(root: Path) -> dict[str, Any]:
    state = json.loads((root / ".proml" / "project.json").read_text())
    assert isinstance(state, dict)
    return state


def _embedded(root: Path) -> ChainConfig:
    return ChainConfig(state_dir=root / ".proml" / "chain")


def _refused(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = proml(root, *args, env=env)
    assert result.code == 2, str(result)
    assert result.stdout == ""
    return one_error_line(result.stderr)


def _leave_a_record_to_sync(root: Path) -> str:
    """Put an anchored record back in ``pending/``, as if its anchoring were still to come."""
    journal = root / ".proml" / "journal"
    done = sorted((journal / "done").glob("*.json"))[-1]
    (journal / "pending").mkdir(exist_ok=True)
    shutil.copy(done, journal / "pending" / done.name)
    return done.stem


# ----------------------------------------------------------------------------- the lock


def test_init_pins_the_deployment_in_a_canonical_lock(project: Path) -> None:
    raw = (project / "proml.lock").read_bytes()
    lock = _lock(project)

    assert raw == canonical_bytes(lock) + b"\n"
    assert set(lock) == {
        "schema_version",
        "chain_id",
        "ledger",
        "deploy_tx",
        "deploy_block",
        "deploy_block_hash",
        "admin",
        "genesis_hash",
    }
    state = _state(project)
    assert (lock["chain_id"], lock["ledger"], lock["admin"]) == (
        state["chain_id"],
        state["ledger"],
        state["admin"],
    )
    with open_ledger(_embedded(project), signer=None, address=lock["ledger"]) as ledger:
        found = ledger.deployment(lock["deploy_tx"])
    assert found is not None
    assert (found.block, found.block_hash, found.genesis_hash) == (
        lock["deploy_block"],
        lock["deploy_block_hash"],
        lock["genesis_hash"],
    )
    assert found.block == state["deployed_block"]


def test_a_project_from_before_the_lock_is_pinned_once_by_init(project: Path) -> None:
    pinned = (project / "proml.lock").read_bytes()
    (project / "proml.lock").unlink()

    line = _refused(project, "log")
    assert "proml.lock is missing" in line

    result = ok(proml(project, "init"))
    assert "trust on first use" in result.stderr
    assert (project / "proml.lock").read_bytes() == pinned
    ok(proml(project, "log"))


# ----------------------------------------------------------------------------- redirected


def test_a_ledger_redirected_to_a_look_alike_is_refused(project: Path) -> None:
    from eth_account import Account

    pinned = _lock(project)["ledger"]
    # Same contract, same chain, deployed by someone else's key.
    with open_ledger(_embedded(project), signer=Account.create()) as other:
        look_alike = other.address
        other.define_roles(["curator"])
    state = _state(project)
    state["ledger"] = look_alike
    (project / ".proml" / "project.json").write_text(json.dumps(state))
    record = _leave_a_record_to_sync(project)

    for args in (
        ("log",),
        ("status",),
        ("run", "--", "python", "train.py"),
        ("transition", "dataset", "deprecate"),
        ("sync",),
    ):
        line = _refused(project, *args)
        assert look_alike in line, args
        assert pinned in line, args
    assert not (project / "train.started").exists(), "the command ran against the look-alike"
    assert journal_files(project)["pending"] == [f"{record}.json"]
    with open_ledger(_embedded(project), signer=None, address=look_alike) as other:
        assert {e.name for e in other.history()} == {"AdminTransferred", "RoleDefined"}


# ----------------------------------------------------------------------------- reset


def test_a_reset_chain_with_another_projects_ledger_at_the_same_address_is_refused(
    project: Path,
) -> None:
    lock = _lock(project)
    record = _leave_a_record_to_sync(project)
    admin = load_signer(project / ".proml", prompt=False)
    shutil.rmtree(project / ".proml" / "chain")
    # The same deployer's first transaction on a fresh chain: the same address, another ledger.
    with open_ledger(_embedded(project), signer=admin) as foreign:
        assert foreign.address == lock["ledger"]
        foreign.define_roles(["curator", "trainer", "verifier"])

    for args in (("log",), ("sync",), ("transition", "dataset", "deprecate")):
        line = _refused(project, *args)
        assert lock["ledger"] in line, args
        assert lock["deploy_block_hash"] in line, args
        assert "proml.lock pins block" in line, args

    assert journal_files(project)["pending"] == [f"{record}.json"]
    with open_ledger(_embedded(project), signer=None, address=lock["ledger"]) as foreign:
        names = {e.name for e in foreign.history()}
    assert "Registered" not in names, "sync anchored a record into the foreign ledger"
    assert "Transitioned" not in names


def test_a_reset_chain_without_the_ledger_is_refused(project: Path) -> None:
    shutil.rmtree(project / ".proml" / "chain")

    line = _refused(project, "log")
    assert _lock(project)["ledger"] in line


# ----------------------------------------------------------------------------- joining


def _joiner(project: Path, tmp_path: Path) -> Path:
    """Another organisation on the same (embedded) chain: the policy, the lock, its own key."""
    joiner = fork(project, tmp_path / "joiner")
    (joiner / ".proml" / "project.json").unlink()
    shutil.rmtree(joiner / ".proml" / "keys")
    shutil.rmtree(joiner / ".proml" / "journal", ignore_errors=True)
    return joiner


def test_joining_with_a_committed_lock_attaches_to_the_pinned_ledger(
    project: Path, tmp_path: Path
) -> None:
    joiner = _joiner(project, tmp_path)

    result = ok(proml(joiner, "init", "--json"))

    assert result.json()["ledger"] == _lock(project)["ledger"]
    assert "checked the ledger against proml.lock" in result.json()["actions"]
    assert not [a for a in result.json()["actions"] if a.startswith("deployed")]
    assert log_entries(joiner) == log_entries(project)


def test_joining_another_ledger_than_the_lock_pins_is_refused(
    project: Path, tmp_path: Path
) -> None:
    from eth_account import Account

    joiner = _joiner(project, tmp_path)
    with open_ledger(_embedded(joiner), signer=Account.create()) as other:
        look_alike = other.address

    line = _refused(joiner, "init", "--ledger", look_alike)

    assert look_alike in line
    assert _lock(project)["ledger"] in line
    assert not (joiner / ".proml" / "project.json").exists()


# ----------------------------------------------------------------------------- on anvil


@pytest.mark.usefixtures("nonce_cache")
def test_on_anvil_redirected_and_reset_ledgers_are_refused(tmp_path: Path) -> None:
    from eth_account import Account
    from services import anvil

    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    with anvil(tmp_path / "first") as first:
        root = write_project(tmp_path / "project", rpc_policy(first))
        ok(proml(root, "init"))
        ok(proml(root, "run", "--", "python", "prepare.py"))
        lock = _lock(root)

        # Redirected: a look-alike deployed by another key on the same chain.
        with open_ledger(rpc_config(first), signer=Account.create()) as other:
            look_alike = other.address
        redirected = fork(root, tmp_path / "redirected")
        state = _state(redirected)
        state["ledger"] = look_alike
        (redirected / ".proml" / "project.json").write_text(json.dumps(state))
        for args in (("log",), ("run", "--", "python", "train.py")):
            line = _refused(redirected, *args)
            assert look_alike in line
            assert lock["ledger"] in line
        assert not (redirected / "train.started").exists()
    record = _leave_a_record_to_sync(root)

    # Reset: a new chain (same chain id), the same deployer's first transaction on it.
    with anvil(tmp_path / "second") as second:
        admin = load_signer(root / ".proml", prompt=False)
        with open_ledger(rpc_config(second), signer=admin) as foreign:
            assert foreign.address == lock["ledger"]
            assert foreign.chain_id == lock["chain_id"]
        env = {"PROML_CHAIN_URL": second}

        for args in (("log",), ("sync",)):
            line = _refused(root, *args, env=env)
            assert lock["ledger"] in line
            assert "proml.lock" in line

        assert journal_files(root)["pending"] == [f"{record}.json"]
        with open_ledger(rpc_config(second), signer=None, address=lock["ledger"]) as foreign:
            assert [e.name for e in foreign.history()] == ["AdminTransferred"]
