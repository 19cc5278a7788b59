"""The embedded chain's persistence: reopening, other processes, kill -9 and concurrent writers.

The worker processes are ``_chain_helpers.py`` run as a script (see its ``main``): separate
Python interpreters on the same state directory, as separate ``proml`` invocations would be.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _chain_helpers import (
    DATASET,
    ROLES,
    cid_of,
    history_json,
    new_account,
    random_cid,
    random_digest,
    version_digest,
)

from proml_cli.errors import InputError, LedgerError
from proml_cli.ledger import ChainConfig, Ledger, Registration, VersionRef, open_ledger
from proml_cli.ledger._client import ContractLedger

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("_chain_helpers.py")
#: A worker should never need this long; a hung one fails the test instead of the suite.
TIMEOUT = 120


def worker(command: str, **params: Any) -> dict[str, Any]:
    """Run one worker command to completion and return its JSON result."""
    proc = subprocess.run(
        [sys.executable, str(WORKER), command],
        input=json.dumps(params),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


@contextmanager
def running(command: str, log: Path, **params: Any) -> Iterator[subprocess.Popen[str]]:
    """A worker started in the background (stderr to ``log``); killed if still running at exit."""
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(params))
        proc.stdin.close()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()


def open_at(state_dir: Path, key: str, address: str | None) -> Any:
    from eth_account import Account

    return open_ledger(
        ChainConfig(state_dir=state_dir), signer=Account.from_key(key), address=address
    )


def deployed(state_dir: Path) -> tuple[str, str]:
    """Deploy the workers' project in ``state_dir`` (in a worker); return (key, address)."""
    key = "0x" + new_account().key.hex().removeprefix("0x")
    result = worker("deploy-and-write", state_dir=str(state_dir), key=key)
    return key, str(result["address"])


# ---------------------------------------------------------------------------- reopening


def test_reopening_gives_the_same_chain(tmp_path: Path) -> None:
    admin = new_account()
    config = ChainConfig(state_dir=tmp_path)
    with open_ledger(config, signer=admin) as ledger:
        ledger.define_roles(ROLES)
        ledger.define_kind(DATASET)
        ledger.define_artefacts({"train-set": "dataset"})
        ledger.grant_role("data-admin", admin.address)
        ref = VersionRef("train-set", random_digest())
        receipt = ledger.submit(random_cid(), [Registration(ref, random_cid())], [])
        address, history = ledger.address, history_json(ledger)
    assert (tmp_path / "chain.sqlite").stat().st_mode & 0o777 == 0o600

    with open_ledger(config, signer=new_account(), address=address) as ledger:
        assert history_json(ledger) == history
        found = ledger.version(ref)
        assert found is not None
        assert found.state == "raw"
        assert ledger.kind("dataset") == DATASET
        assert ledger.roles_of(admin.address) == ("data-admin",)
        assert ledger.tx_status(receipt.tx_hash) == receipt
        assert ledger.tx_status("0x" + "ab" * 32) is None


def test_ledgers_opened_in_turn_or_at_once_each_see_their_own_chain(tmp_path: Path) -> None:
    """A process reuses its web3 sessions between ledgers: never one chain's state for another."""
    admin = new_account()

    def deploy(state_dir: Path) -> tuple[str, VersionRef]:
        with open_ledger(ChainConfig(state_dir=state_dir), signer=admin) as ledger:
            ledger.define_roles(ROLES)
            ledger.define_kind(DATASET)
            ledger.define_artefacts({"train-set": "dataset"})
            ledger.grant_role("data-admin", admin.address)
            ref = VersionRef("train-set", random_digest())
            ledger.submit(random_cid(), [Registration(ref, random_cid())], [])
            return ledger.address, ref

    def opened(name: str) -> Any:
        return open_ledger(ChainConfig(state_dir=tmp_path / name), signer=None, address=address)

    (address, ref_one), (same, ref_two) = deploy(tmp_path / "one"), deploy(tmp_path / "two")
    assert same == address  # one deployer, one nonce: only the chain tells the two apart
    with opened("one") as first:
        with opened("two") as second:  # both open at once: a session each
            assert first._w3 is not second._w3
            assert second.version(ref_one) is None
            assert first.version(ref_two) is None
        history = history_json(first)
    # Opened in turn, each takes a session another chain's ledger gave back.
    for _ in range(2):
        for name, mine, theirs in (("two", ref_two, ref_one), ("one", ref_one, ref_two)):
            with opened(name) as ledger:
                assert ledger.version(mine) is not None
                assert ledger.version(theirs) is None
                # and the EVM, reached through the session's web3, runs on this chain too
                assert ContractLedger.version(ledger, mine) == ledger.version(mine)
                assert ContractLedger.version(ledger, theirs) is None
                if name == "one":
                    assert history_json(ledger) == history


def test_a_block_takes_the_time_it_is_sent_at_never_before_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proml_cli.ledger import _embedded

    with open_ledger(ChainConfig(state_dir=tmp_path), signer=new_account()) as ledger:
        later = int(time.time()) + 3600  # the process waited an hour since its last block
        monkeypatch.setattr(_embedded, "_now", lambda: later)
        first = ledger.define_roles(["a"])
        second = ledger.define_roles(["b"])  # within the same second
        monkeypatch.setattr(_embedded, "_now", lambda: later - 60)  # the clock went back
        third = ledger.define_roles(["c"])
    stamps = [r.timestamp if r is not None else None for r in (first, second, third)]
    assert stamps == [later, later + 1, later + 2]


def test_a_missing_contract_is_an_input_error_and_releases_the_chain(tmp_path: Path) -> None:
    config = ChainConfig(state_dir=tmp_path)
    with open_ledger(config, signer=new_account()) as ledger:
        address = ledger.address
    nowhere = "0x" + "12" * 20
    with (
        pytest.raises(InputError, match="no contract at"),
        open_ledger(config, signer=new_account(), address=nowhere),
    ):
        pass  # pragma: no cover - the open fails
    # The failed open released the lock: the chain opens again at once.
    with open_ledger(config, signer=new_account(), address=address) as ledger:
        assert ledger.admin()


def test_attaching_to_a_look_alike_contract_is_refused(tmp_path: Path) -> None:
    config = ChainConfig(state_dir=tmp_path)
    with open_ledger(config, signer=new_account()) as ledger:
        w3 = ledger._w3  # type: ignore[attr-defined]
        faucet = w3.eth.accounts[0]
        # Init code returning one byte of runtime code (STOP): a contract, but not a ledger.
        init = "0x600160" + "0c" + "60003960016000f3" + "00"
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": faucet, "data": init})
        )
        impostor = receipt["contractAddress"]
        assert w3.eth.get_code(impostor)
        ledger._commit()  # type: ignore[attr-defined]  # a raw web3 call is not committed
    with (
        pytest.raises(InputError, match="not this version of the ProMLLedger"),
        open_ledger(config, signer=new_account(), address=impostor),
    ):
        pass  # pragma: no cover - the open fails


def test_a_refused_operation_leaves_the_chain_as_it_was(tmp_path: Path) -> None:
    admin = new_account()
    config = ChainConfig(state_dir=tmp_path)
    with open_ledger(config, signer=admin) as ledger:
        address = ledger.address
        ledger.define_roles(["data-admin"])
        head = ledger.history()[-1].block
        with pytest.raises(LedgerError):
            ledger.grant_role("nope", admin.address)
        ledger.define_roles(["x" * 32])
        with pytest.raises(LedgerError):
            ledger.with_signer(new_account()).define_roles(["y"])
        after = [e for e in ledger.history() if e.block > head]
    assert [(e.name, e.args["role"]) for e in after] == [("RoleDefined", "x" * 32)]
    with open_ledger(config, signer=admin, address=address) as ledger:
        assert ledger.role_names() == ("data-admin", "x" * 32)


# ---------------------------------------------------------------------------- other processes


def test_round_trip_across_processes(tmp_path: Path) -> None:
    key = "0x" + new_account().key.hex().removeprefix("0x")
    written = worker("deploy-and-write", state_dir=str(tmp_path), key=key)
    versions = written["versions"]
    assert list(versions.values()) == ["rejected", "validated", "validated"]

    reader_key = "0x" + new_account().key.hex().removeprefix("0x")
    read = worker(
        "read",
        state_dir=str(tmp_path),
        key=reader_key,
        address=written["address"],
        versions=list(versions),
    )
    assert read["versions"] == versions
    assert read["history"] == written["history"]
    registered = [e for e in read["history"] if e["name"] == "Registered"]
    assert [len(e["args"]["inputs"]) for e in registered] == [0, 1, 2]
    assert all(i is not None for e in registered for i in e["args"]["inputs"])

    # And this process reads the same (the reader funded its account: one more block).
    with open_at(tmp_path, key, written["address"]) as ledger:
        assert history_json(ledger) == written["history"]


@pytest.mark.slow
def test_kill_9_during_writes_leaves_a_consistent_prefix(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)  # noqa: S311 - kill timing, not security
    key, address = deployed(tmp_path)
    acknowledged: dict[str, list[str]] = {}
    for round_ in range(5):
        prefix = f"kill-{round_}"
        log = tmp_path / f"{prefix}.log"
        params = {"state_dir": str(tmp_path), "key": key, "address": address, "prefix": prefix}
        with running("loop", log, **params) as proc:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # the worker is in its write loop now
            assert first, log.read_text()
            time.sleep(rng.uniform(0.0, 0.6))
            proc.kill()
            proc.wait(timeout=TIMEOUT)
            acknowledged[prefix] = [first.strip(), *proc.stdout.read().splitlines()]

    db = sqlite3.connect(tmp_path / "chain.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",), seed
    db.close()

    with open_at(tmp_path, key, address) as ledger:
        states = _fold_states(ledger, seed)
        for prefix, lines in acknowledged.items():
            # Every write the worker saw succeed survived the kill.
            for line in lines:
                action, number = line.split()
                ref = VersionRef("train-set", version_digest(prefix, int(number)))
                expected = "raw" if action == "registered" else "validated"
                assert states.get(ref) in (expected, "validated"), (seed, line)
            # No version exists on-chain without its Registered event, and vice versa.
            last = int(lines[-1].split()[1])
            for i in range(last + 3):
                ref = VersionRef("train-set", version_digest(prefix, i))
                found = ledger.version(ref)
                assert (found is None) == (ref not in states), (seed, prefix, i)
        # The chain is still writable: the lock and the database were left usable.
        ref = VersionRef("train-set", random_digest())
        ledger.submit(random_cid(), [Registration(ref, cid_of(b"after"))], [])
        assert ledger.version(ref) is not None


def _fold_states(ledger: Ledger, seed: int) -> dict[VersionRef, str]:
    """Every version's state implied by the history alone, checked against the contract."""
    kinds: dict[str, list[str]] = {}
    initial: dict[str, str] = {}
    artefacts: dict[str, str] = {}
    states: dict[VersionRef, str] = {}
    for e in ledger.history():
        a = e.args
        if e.name == "KindDefined":
            kinds[str(a["kind"])] = [str(s) for s in a["states"]]  # type: ignore[attr-defined]
            initial[str(a["kind"])] = kinds[str(a["kind"])][int(a["initial"])]  # type: ignore[call-overload]
        elif e.name == "ArtefactDefined":
            artefacts[str(a["artefact"])] = str(a["kind"])
        elif e.name == "Registered":
            ref = VersionRef(str(a["artefact"]), str(a["digest"]))
            assert ref not in states, seed
            for source in a["inputs"]:  # type: ignore[attr-defined]
                assert source is not None, (seed, ref)  # every input was registered first
            states[ref] = initial[artefacts[ref.artefact]]
        elif e.name == "Transitioned":
            ref = VersionRef(str(a["artefact"]), str(a["digest"]))
            names = kinds[artefacts[ref.artefact]]
            assert names[int(a["source"])] == states[ref], seed  # type: ignore[call-overload]
            states[ref] = names[int(a["target"])]  # type: ignore[call-overload]
    for ref, state in states.items():
        found = ledger.version(ref)
        assert found is not None, (seed, ref)
        assert found.state == state, (seed, ref)
    return states


def test_two_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    key, address = deployed(tmp_path)
    n = 8
    # Both sign with the same account: their nonces must not collide either.
    params = {"state_dir": str(tmp_path), "key": key, "address": address, "n": n, "pause": 0.1}
    prefixes = ("left", "right")
    with (
        running("register", tmp_path / "left.log", prefix="left", **params) as left,
        running("register", tmp_path / "right.log", prefix="right", **params) as right,
    ):
        for prefix, proc in zip(prefixes, (left, right), strict=True):
            assert proc.wait(timeout=TIMEOUT) == 0, (tmp_path / f"{prefix}.log").read_text()
            assert proc.stdout is not None
            assert json.loads(proc.stdout.read().splitlines()[-1]) == {"registered": n}

    with open_at(tmp_path, key, address) as ledger:
        registered = {str(e.args["digest"]) for e in ledger.history() if e.name == "Registered"}
        for prefix in prefixes:
            for i in range(n):
                ref = VersionRef("train-set", version_digest(prefix, i))
                found = ledger.version(ref)
                assert found is not None, (prefix, i)
                assert found.state == "raw"
                assert ref.digest in registered
