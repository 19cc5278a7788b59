"""Shared helpers for the ledger integration tests: real CIDs, names, the standard project.

Run as a script (``python _chain_helpers.py COMMAND`` with JSON parameters on stdin) it is the
worker process of the persistence tests: see :func:`main`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from proml_cli.errors import LedgerError
from proml_cli.ledger import (
    ChainConfig,
    Kind,
    Ledger,
    Move,
    Receipt,
    Registration,
    Transition,
    VersionRef,
    open_ledger,
)

#: CIDv1 prefix for a raw-codec block addressed by sha256: version 1, codec raw (0x55),
#: multihash sha2-256 (0x12) of 32 bytes (0x20).
_CIDV1_RAW_SHA256 = bytes([0x01, 0x55, 0x12, 0x20])

_counter = itertools.count()


def cid_of(data: bytes) -> str:
    """The CIDv1 (raw, sha2-256, base32 lower) of ``data``, as kubo prints it."""
    binary = _CIDV1_RAW_SHA256 + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def random_cid() -> str:
    """A real CIDv1 raw string for random content."""
    return cid_of(os.urandom(32))


def random_digest() -> str:
    """A random sha256 hex digest."""
    return hashlib.sha256(os.urandom(32)).hexdigest()


def unique(prefix: str) -> str:
    """A name unique within this test process, short enough for bytes32 (≤ 32 ASCII chars)."""
    name = f"{prefix}-{next(_counter)}-{os.urandom(3).hex()}"
    assert len(name) <= 32, name
    return name


@contextmanager
def refused(error: str, *fragments: str) -> Iterator[pytest.ExceptionInfo[LedgerError]]:
    """Expect a LedgerError decoded from the contract's custom ``error`` naming ``fragments``."""
    with pytest.raises(LedgerError) as info:
        yield info
    assert getattr(info.value, "contract_error", None) == error, str(info.value)
    message = str(info.value)
    assert message.startswith("the ledger refused: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


ROLES = ("data-admin", "dev", "verifier", "operator")

DATASET = Kind.of(
    name="dataset",
    states=("raw", "validated", "rejected"),
    initial="raw",
    register=("data-admin",),
    transitions=(
        Transition("validate", ("raw",), "validated", ("data-admin", "verifier")),
        Transition("reject", ("raw", "validated"), "rejected", ("verifier",)),
    ),
)

MODEL = Kind.of(
    name="model",
    states=("trained", "approved", "deployed", "revoked"),
    initial="trained",
    register=("dev",),
    transitions=(
        Transition("approve", ("trained",), "approved", ("verifier",)),
        Transition("deploy", ("approved",), "deployed", ("operator",)),
        Transition("revoke", ("approved", "deployed"), "revoked", ("verifier", "operator")),
    ),
)


@dataclass
class Project:
    """A deployed ledger with the standard roles and kinds, and one account per role."""

    ledger: Ledger
    admin: Any
    #: role name → a view of the ledger signing with an account that holds only that role
    members: dict[str, Ledger]
    #: a view signing with a funded account that holds no role
    outsider: Ledger

    def artefact(self, kind: str) -> str:
        """Bind a new, uniquely named artefact to ``kind`` and return its name."""
        name = unique(kind[:8])
        self.ledger.define_artefacts({name: kind})
        return name


def define_kind_raw(ledger: Ledger, kind: Kind, transitions: Sequence[Transition]) -> Receipt:
    """Define ``kind`` with exactly ``transitions`` (repeats included), past the typed model.

    :class:`Kind` keys its transitions by name, so a client cannot send one name twice; the
    contract's own refusal of that is reached through the raw call.
    """
    from proml_cli.ledger._client import name32

    call = ledger._contract.functions.defineKind(  # type: ignore[attr-defined]
        name32(kind.name),
        [name32(s) for s in kind.states],
        kind.states.index(kind.initial),
        [name32(r) for r in kind.register],
        [name32(s) for s in kind.consumable],
        [
            (
                name32(t.name),
                [name32(s) for s in t.sources],
                name32(t.target),
                [name32(r) for r in t.roles],
            )
            for t in transitions
        ],
    )
    receipt: Receipt = ledger._transact(call)  # type: ignore[attr-defined]
    return receipt


def new_account() -> Any:
    from eth_account import Account

    return Account.create()


def open_project(state_dir: Path) -> Iterator[Project]:
    """Deploy a ledger under ``state_dir`` and define the standard roles, kinds and members."""
    admin = new_account()
    with open_ledger(ChainConfig(state_dir=state_dir), signer=admin) as ledger:
        ledger.define_roles(ROLES)
        ledger.define_kind(DATASET)
        ledger.define_kind(MODEL)
        members = {}
        for role in ROLES:
            ledger.grant_role(role, admin.address)
            member = ledger.with_signer(new_account())
            ledger.grant_role(role, member.account)
            members[role] = member
        outsider = ledger.with_signer(new_account())
        yield Project(ledger=ledger, admin=admin, members=members, outsider=outsider)


# ---------------------------------------------------------------------------- worker processes


def version_digest(prefix: str, i: int) -> str:
    """The digest of the ``i``-th version a worker with ``prefix`` writes."""
    return hashlib.sha256(f"{prefix}/{i}".encode()).hexdigest()


def history_json(ledger: Ledger) -> list[dict[str, object]]:
    """The ledger's history as plain JSON values."""
    from dataclasses import asdict

    # ``raw`` holds the ABI-decoded bytes behind ``args``: not JSON, and nothing new.
    return [{k: v for k, v in asdict(e).items() if k != "raw"} for e in ledger.history()]


def _write_some(ledger: Ledger, artefact: str) -> list[VersionRef]:
    """Registrations with lineage, single transitions and a batch; returns the versions."""
    a, b, c = (VersionRef(artefact, version_digest("some", i)) for i in range(3))
    ledger.submit(cid_of(b"r1"), [Registration(a, cid_of(b"a"))], [])
    ledger.submit(cid_of(b"r2"), [], [Move(a, "validate")])
    ledger.submit(
        cid_of(b"r3"),
        [Registration(b, cid_of(b"b"), (a,)), Registration(c, cid_of(b"c"), (a, b))],
        [Move(b, "validate"), Move(c, "validate")],
    )
    ledger.submit(cid_of(b"r4"), [], [Move(a, "reject")])
    return [a, b, c]


def _states(ledger: Ledger, refs: list[VersionRef]) -> dict[str, str | None]:
    out = {}
    for ref in refs:
        found = ledger.version(ref)
        out[f"{ref.artefact}/{ref.digest}"] = None if found is None else found.state
    return out


def _register_and_validate(ledger: Ledger, prefix: str, i: int) -> None:
    ref = VersionRef("train-set", version_digest(prefix, i))
    inputs = (VersionRef("train-set", version_digest(prefix, i - 1)),) if i else ()
    ledger.submit(cid_of(b"r%d" % i), [Registration(ref, cid_of(ref.digest.encode()), inputs)], [])
    print(f"registered {i}", flush=True)
    ledger.submit(cid_of(b"v%d" % i), [], [Move(ref, "validate")])
    print(f"validated {i}", flush=True)


def main(command: str, params: dict[str, Any]) -> None:
    """One worker command; parameters come as JSON on stdin, results go as JSON to stdout.

    * ``deploy-and-write`` {state_dir, key}: deploy, define the standard kinds, write a little
      history; print {address, versions, history}.
    * ``read`` {state_dir, key, address, versions}: print {versions, history}.
    * ``loop`` {state_dir, key, address, prefix}: register version i, then validate it, for
      ever; print ``i`` after each transaction (the test kills this process).
    * ``register`` {state_dir, key, address, prefix, n, pause}: n registrations, opening and
      closing the ledger around each one and pausing after it, as n proml processes would.
    """
    from eth_account import Account

    signer = Account.from_key(params["key"])
    config = ChainConfig(state_dir=Path(params["state_dir"]))
    address = params.get("address")
    if command == "deploy-and-write":
        with open_ledger(config, signer=signer) as ledger:
            ledger.define_roles(ROLES)
            ledger.define_kind(DATASET)
            ledger.define_artefacts({"train-set": "dataset"})
            ledger.grant_role("data-admin", signer.address)
            ledger.grant_role("verifier", signer.address)
            refs = _write_some(ledger, "train-set")
            result = {
                "address": ledger.address,
                "versions": _states(ledger, refs),
                "history": history_json(ledger),
            }
    elif command == "read":
        refs = [VersionRef(*key.split("/")) for key in params["versions"]]
        with open_ledger(config, signer=signer, address=address) as ledger:
            result = {"versions": _states(ledger, refs), "history": history_json(ledger)}
    elif command == "loop":
        i = 0
        while True:  # reopened every few transactions, so a kill may also land in open()
            with open_ledger(config, signer=signer, address=address) as ledger:
                for _ in range(3):
                    _register_and_validate(ledger, params["prefix"], i)
                    i += 1
    elif command == "register":
        prefix = params["prefix"]
        for i in range(params["n"]):
            with open_ledger(config, signer=signer, address=address) as ledger:
                ref = VersionRef("train-set", version_digest(prefix, i))
                ledger.submit(cid_of(b"%d" % i), [Registration(ref, cid_of(prefix.encode()))], [])
            # The gap a new proml process would leave; without it the lock (which polls) goes
            # back to this process every time and the writers do not interleave.
            time.sleep(params.get("pause", 0.0))
        result = {"registered": params["n"]}
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], json.load(sys.stdin))
