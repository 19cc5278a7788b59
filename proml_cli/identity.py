"""The ledger's pinned identity: ``proml.lock``, versioned beside the policy, names our deployment.

``.proml/project.json`` says where the ledger is, but it lives in an unversioned, local
directory: whoever can write it can point every command at a look-alike ledger. ``proml init``
therefore also writes ``proml.lock`` next to ``proml.yaml`` (canonical JSON, committed with the
policy) holding the chain id, the ledger's address and what proves it is *this* deployment:
the transaction that created it, that transaction's block (number and hash), the deploying
admin and the chain's genesis hash. Every command that opens the ledger checks
``project.json`` against the lock, and the chain against the lock (the canonical block at the
pinned height must be the pinned block, whose hash commits to every earlier block and to the
deployment; on a mismatch the deployment's receipt is read to name it; never a local index):
a redirected address, a reset chain or another project's ledger at the same address is an
input error naming the mismatch. The check costs one block lookup (~2 ms on the embedded chain).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proml_cli.errors import InputError

if TYPE_CHECKING:
    from proml_cli.ledger import Deployment, Ledger

LOCK_NAME = "proml.lock"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LedgerIdentity:
    """What ``proml.lock`` pins: one deployment of the ledger contract on one chain."""

    chain_id: int
    ledger: str
    deploy_tx: str
    deploy_block: int
    deploy_block_hash: str
    admin: str
    genesis_hash: str

    def to_json(self) -> dict[str, Any]:
        """The lock's JSON document."""
        return {
            "schema_version": SCHEMA_VERSION,
            "chain_id": self.chain_id,
            "ledger": self.ledger,
            "deploy_tx": self.deploy_tx,
            "deploy_block": self.deploy_block,
            "deploy_block_hash": self.deploy_block_hash,
            "admin": self.admin,
            "genesis_hash": self.genesis_hash,
        }

    @classmethod
    def from_deployment(cls, chain_id: int, ledger: str, found: Deployment) -> LedgerIdentity:
        """The identity of ``ledger`` as the chain describes its deployment."""
        return cls(
            chain_id=chain_id,
            ledger=ledger,
            deploy_tx=found.tx_hash,
            deploy_block=found.block,
            deploy_block_hash=found.block_hash,
            admin=found.admin,
            genesis_hash=found.genesis_hash,
        )


def lock_path(root: Path) -> Path:
    """Where a project's lock lives: beside its policy."""
    return root / LOCK_NAME


def read_lock(root: Path) -> LedgerIdentity | None:
    """The pinned identity, or None when the project has no ``proml.lock`` yet.

    Raises:
        InputError: the lock exists but is not a lock this version can read.
    """
    path = lock_path(root)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError("schema_version")
        identity = LedgerIdentity(
            chain_id=_int(data["chain_id"]),
            ledger=_address(data["ledger"]),
            deploy_tx=_hash(data["deploy_tx"]),
            deploy_block=_int(data["deploy_block"]),
            deploy_block_hash=_hash(data["deploy_block_hash"]),
            admin=_address(data["admin"]),
            genesis_hash=_hash(data["genesis_hash"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{LOCK_NAME}: not a ledger lock proml can read ({type(exc).__name__}: {exc})",
            hint=f"restore {LOCK_NAME} from version control",
        ) from exc
    return identity


def write_lock(root: Path, identity: LedgerIdentity) -> Path:
    """Write ``proml.lock`` atomically as canonical JSON (sorted keys, compact), one line."""
    from proml_cli.record import canonical_bytes

    path = lock_path(root)
    tmp = path.with_name(f".{LOCK_NAME}.tmp")
    tmp.write_bytes(canonical_bytes(identity.to_json()) + b"\n")
    os.replace(tmp, path)
    return path


def check_recorded(lock: LedgerIdentity, *, chain_id: int, ledger: str) -> None:
    """``.proml/project.json`` must name the pinned chain and ledger.

    Raises:
        InputError: it names another chain or another address.
    """
    if chain_id != lock.chain_id:
        raise InputError(
            f".proml/project.json records chain {chain_id}, but {LOCK_NAME} pins chain "
            f"{lock.chain_id}",
            hint=f"the local state was changed; restore it or re-run `proml init` ({LOCK_NAME} "
            "is what the team versions)",
        )
    if ledger.lower() != lock.ledger.lower():
        raise InputError(
            f".proml/project.json points at the ledger {ledger}, but {LOCK_NAME} pins "
            f"{lock.ledger}: refusing a redirected ledger",
            hint=f"restore .proml/project.json (the pinned address is in {LOCK_NAME})",
        )


def check_chain(lock: LedgerIdentity, ledger: Ledger) -> None:
    """The opened ledger must be the pinned deployment, on the pinned chain.

    Raises:
        InputError: another chain id, another genesis, no such deployment transaction, or a
            deployment in another block or by another admin (a reset chain, or another
            project's ledger at the same address).
    """
    where = f"the ledger at {ledger.address}"
    if ledger.chain_id != lock.chain_id:
        raise InputError(
            f"the chain has id {ledger.chain_id}, but {LOCK_NAME} pins chain {lock.chain_id}",
            hint="check chain.url / PROML_CHAIN_URL",
        )
    if ledger.address.lower() != lock.ledger.lower():
        raise InputError(f"{where} is not the ledger {LOCK_NAME} pins ({lock.ledger})")
    # The fast path, one request: a block's hash commits to its parents back to genesis and to
    # its transactions, so the pinned block being canonical here means this chain holds the
    # pinned deployment (and an address is created once per chain). Anything else is looked at
    # closely below, to name the mismatch.
    if ledger.block_hash(lock.deploy_block) == lock.deploy_block_hash:
        return
    hint = (
        "the chain was reset or replaced, or this is another project's ledger; "
        "nothing was read from or written to it"
    )
    found = ledger.deployment(lock.deploy_tx) or ledger.deployment()
    if found is None:
        raise InputError(
            f"this chain has no transaction {lock.deploy_tx} creating {where}, which "
            f"{LOCK_NAME} pins (block {lock.deploy_block} {lock.deploy_block_hash})",
            hint=hint,
        )
    genesis = (
        f" on a chain whose genesis block is {found.genesis_hash}, not {lock.genesis_hash}"
        if found.genesis_hash != lock.genesis_hash
        else ""
    )
    if (found.tx_hash, found.block, found.block_hash) != (
        lock.deploy_tx,
        lock.deploy_block,
        lock.deploy_block_hash,
    ):
        raise InputError(
            f"{where} was deployed in block {found.block} {found.block_hash}{genesis}, but "
            f"{LOCK_NAME} pins block {lock.deploy_block} {lock.deploy_block_hash}",
            hint=hint,
        )
    if genesis:
        raise InputError(f"{where} is{genesis} (as {LOCK_NAME} pins)", hint=hint)
    if found.admin.lower() != lock.admin.lower():
        raise InputError(
            f"{where} was deployed by {found.admin}, but {LOCK_NAME} pins {lock.admin}",
            hint=hint,
        )
    raise InputError(
        f"block {lock.deploy_block} of this chain is {ledger.block_hash(lock.deploy_block)}, "
        f"but {LOCK_NAME} pins {lock.deploy_block_hash}",
        hint=hint,
    )


def identify(ledger: Ledger) -> LedgerIdentity:
    """The identity of an opened ledger, as the chain describes it (for pinning).

    Raises:
        InputError: the chain cannot say how this contract was deployed.
    """
    found = ledger.deployment()
    if found is None:
        raise InputError(
            f"cannot find the transaction that deployed the ledger at {ledger.address}",
            hint="check the ledger address and the chain",
        )
    return LedgerIdentity.from_deployment(ledger.chain_id, ledger.address, found)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a non-negative integer: {value!r:.80}")
    return value


def _hash(value: object) -> str:
    text = str(value).lower()
    if len(text) != 66 or not text.startswith("0x") or not _is_hex(text[2:]):
        raise ValueError(f"not a 32-byte hash: {value!r:.80}")
    return text


def _address(value: object) -> str:
    text = str(value)
    if len(text) != 42 or not text.startswith("0x") or not _is_hex(text[2:]):
        raise ValueError(f"not an address: {value!r:.80}")
    return text


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)
