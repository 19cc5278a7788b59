"""``proml.lock``: canonical bytes, a strict reader, and the mismatch messages it leads to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proml_cli.errors import ExitCode, InputError
from proml_cli.identity import LedgerIdentity, check_recorded, read_lock, write_lock
from proml_cli.record import canonical_bytes

PINNED = LedgerIdentity(
    chain_id=31337,
    ledger="0x5FbDB2315678afecb367f032d93F642f64180aa3",
    deploy_tx="0x" + "ab" * 32,
    deploy_block=3,
    deploy_block_hash="0x" + "cd" * 32,
    admin="0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    genesis_hash="0x" + "ef" * 32,
)


def test_the_lock_is_one_line_of_canonical_json_and_reads_back(tmp_path: Path) -> None:
    path = write_lock(tmp_path, PINNED)

    assert path.name == "proml.lock"
    assert path.read_bytes() == canonical_bytes(PINNED.to_json()) + b"\n"
    assert read_lock(tmp_path) == PINNED


def test_no_lock_is_none(tmp_path: Path) -> None:
    assert read_lock(tmp_path) is None


@pytest.mark.parametrize(
    "change",
    [
        {"schema_version": 2},
        {"chain_id": "31337"},
        {"chain_id": -1},
        {"ledger": "0x1234"},
        {"deploy_tx": "0x" + "zz" * 32},
        {"deploy_block": True},
        {"genesis_hash": None},
    ],
)
def test_a_damaged_lock_is_an_input_error(tmp_path: Path, change: dict[str, object]) -> None:
    (tmp_path / "proml.lock").write_text(json.dumps({**PINNED.to_json(), **change}))

    with pytest.raises(InputError) as caught:
        read_lock(tmp_path)

    assert caught.value.exit_code == ExitCode.USAGE
    assert "proml.lock" in caught.value.diagnosis


def test_a_lock_that_is_not_json_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "proml.lock").write_text("<<<<<<< HEAD\n")

    with pytest.raises(InputError, match=r"proml\.lock"):
        read_lock(tmp_path)


def test_a_redirected_address_names_both(tmp_path: Path) -> None:
    other = "0x" + "12" * 20

    with pytest.raises(InputError) as caught:
        check_recorded(PINNED, chain_id=PINNED.chain_id, ledger=other)

    assert other in caught.value.diagnosis
    assert PINNED.ledger in caught.value.diagnosis


def test_another_chain_id_names_both() -> None:
    with pytest.raises(InputError) as caught:
        check_recorded(PINNED, chain_id=4242, ledger=PINNED.ledger)

    assert "4242" in caught.value.diagnosis
    assert "31337" in caught.value.diagnosis
