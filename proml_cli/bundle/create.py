"""Make a bundle: read a version's evidence from the chain and the content store.

What goes in (see :mod:`proml_cli.bundle.format`): every transaction that emitted one of the
version's events (and, with ``deep``, its lineage's), every transaction that defined the rules
those events are checked against (roles, grants, kinds, artefact bindings, the deployment), their
receipts and trie proofs, every block header from the oldest of them to the chain's head (the
anchor), the ledger account's and each version slot's storage proof at the anchor, the records,
and optionally the content as a CAR.
"""

from __future__ import annotations

import base64
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import rlp

from proml_cli.bundle.format import FORMAT, SCHEMA_VERSION, hexb, version_slot
from proml_cli.errors import InputError, LedgerError

if TYPE_CHECKING:
    from proml_cli.content import ContentStore
    from proml_cli.history import History, VersionHistory
    from proml_cli.identity import LedgerIdentity
    from proml_cli.project import Project

logger = logging.getLogger(__name__)

#: Events of one version; every other ledger event is part of the rules and always included.
VERSION_EVENTS = ("Registered", "Transitioned")


class RawChain(Protocol):
    """What a bundle reads from a ledger backend (both backends have these methods)."""

    @property
    def address(self) -> str:
        """The ledger contract's address."""
        ...

    @property
    def chain_id(self) -> int:
        """The chain's id."""
        ...

    def head_number(self) -> int:
        """The newest block whose state is read: the bundle's anchor."""
        ...

    def raw_header(self, number: int) -> bytes:
        """Block ``number``'s RLP header."""
        ...

    def raw_block(self, number: int) -> tuple[bytes, list[bytes], list[bytes]]:
        """RLP header, signed transactions and receipts (as the block's tries hold them)."""
        ...

    def state_proof(
        self, slots: Sequence[bytes], number: int
    ) -> tuple[list[bytes], list[list[bytes]]]:
        """``eth_getProof``: the ledger account's trie nodes and each slot's, at ``number``."""
        ...

    def version_words(self, refs: Sequence[Any]) -> list[int]:
        """Each version's packed storage word."""
        ...


def resolve(history: History, spec: str) -> VersionHistory:
    """``ARTEFACT[@VERSION]`` → the version (VERSION: a digest prefix, ``sha256:…``, or a CID).

    Raises:
        InputError: unknown artefact, no or several matching versions.
    """
    artefact, _, wanted = spec.partition("@")
    versions = history.of_artefact(artefact)
    if not versions:
        raise InputError(f"artefact '{artefact}' has no recorded version on the ledger")
    if not wanted:
        return versions[-1]
    needle = wanted.removeprefix("sha256:").lower()
    found = [v for v in versions if v.cid == wanted or (needle and v.digest.startswith(needle))]
    if len(found) != 1:
        raise InputError(
            f"'{spec}': {'no' if not found else 'more than one'} version of '{artefact}' matches",
            hint=f"name it by CID or sha256 prefix: proml log {artefact}",
        )
    return found[0]


def lineage(history: History, root: VersionHistory, store: ContentStore) -> list[VersionHistory]:
    """``root`` and every version it was derived from, recursively.

    As ``proml verify --deep`` follows them: the registration's inputs and the materials of the
    runs recorded for its steps (e.g. the test set an ``evaluate`` used).
    """
    from proml_cli.bundle.format import materials
    from proml_cli.record import parse_record

    seen: dict[tuple[str, str], VersionHistory] = {}
    todo = [root]
    while todo:
        version = todo.pop()
        key = (version.artefact, version.digest)
        if key in seen:
            continue
        seen[key] = version
        refs = set(version.inputs)
        for step in version.steps:
            if step.record_cid:
                record = parse_record(store.cat(step.record_cid), cid=step.record_cid)
                refs |= materials(record) - {key}
        for ref in sorted(refs):
            found = history.versions.get(ref)
            if found is None:
                raise LedgerError(f"lineage input {ref[0]} sha256:{ref[1][:12]} is not recorded")
            todo.append(found)
    return list(seen.values())


def _trie_proof(values: list[bytes], index: int, root: bytes, what: str) -> list[str]:
    from trie.hexary import HexaryTrie

    trie = HexaryTrie({})
    for i, value in enumerate(values):
        trie[rlp.encode(i)] = value
    if trie.root_hash != root:
        raise LedgerError(f"the chain's {what} do not match their block's root")
    nodes = trie.get_proof(rlp.encode(index))  # type: ignore[no-untyped-call]
    return [hexb(bytes(rlp.encode(node))) for node in nodes]


def create(
    chain: RawChain,
    history: History,
    store: ContentStore,
    *,
    spec: str,
    deep: bool,
    with_content: bool,
    identity: LedgerIdentity | None,
    deployment: tuple[str, int] | None,
) -> dict[str, Any]:
    """Gather the evidence for ``spec`` into a bundle document.

    ``history`` must be the checked one (:func:`proml_cli.history.read`); ``deployment`` the
    ledger's deployment transaction and block (included: its signer and nonce prove the address).

    Raises:
        InputError: an unknown artefact or version.
        LedgerError: the chain's answers do not match their own roots or the contract.
        BackendUnavailable: the chain or the content node cannot be reached.
    """
    from eth_utils.crypto import keccak

    subject = resolve(history, spec)
    versions = lineage(history, subject, store) if deep else [subject]
    for version in versions:
        if version.problem:
            raise LedgerError(
                f"version sha256:{version.digest[:12]} of '{version.artefact}': {version.problem}"
            )
    wanted_keys = {(v.artefact, v.digest) for v in versions}
    tx_hashes: dict[str, int] = {}
    for event in history.events:
        if event.name in VERSION_EVENTS:
            key = (str(event.args["artefact"]), str(event.args["digest"]))
            if key not in wanted_keys:
                continue
        tx_hashes.setdefault(event.tx_hash.lower(), event.block)
    if deployment is not None:
        tx_hashes.setdefault(deployment[0].lower(), deployment[1])
    anchor = chain.head_number()
    first = min(tx_hashes.values(), default=anchor)
    headers: list[str] = []
    transactions: list[dict[str, Any]] = []
    evidence_blocks = set(tx_hashes.values())
    anchor_hash = b""
    for number in range(first, anchor + 1):
        if number not in evidence_blocks:
            header = chain.raw_header(number)
            headers.append(hexb(header))
            anchor_hash = bytes(keccak(header))
            continue
        header, txs, receipts = chain.raw_block(number)
        headers.append(hexb(header))
        anchor_hash = bytes(keccak(header))
        fields = rlp.decode(header)
        for index, raw in enumerate(txs):
            if "0x" + bytes(keccak(raw)).hex() not in tx_hashes:
                continue
            transactions.append(
                {
                    "block": number,
                    "index": index,
                    "raw": hexb(raw),
                    "tx_proof": _trie_proof(txs, index, bytes(fields[4]), "transactions"),
                    "receipt": hexb(receipts[index]),
                    "receipt_proof": _trie_proof(receipts, index, bytes(fields[5]), "receipts"),
                }
            )
    found = {"0x" + bytes(keccak(bytes.fromhex(t["raw"][2:]))).hex() for t in transactions}
    missing = sorted(set(tx_hashes) - found)
    if missing:
        raise LedgerError(f"transaction {missing[0]} is not in the block its event names")
    from proml_cli.ledger import VersionRef

    slots = [version_slot(v.artefact, v.digest) for v in versions]
    account_proof, storage_proofs = chain.state_proof(slots, anchor)
    words = chain.version_words([VersionRef(v.artefact, v.digest) for v in versions])
    if any(w == 0 for w in words):
        raise LedgerError("a bundled version has no word in contract storage")
    records: dict[str, str] = {}
    for version in versions:
        for step in version.steps:
            if step.record_cid and step.record_cid not in records:
                records[step.record_cid] = base64.b64encode(store.cat(step.record_cid)).decode()
    content = None
    if with_content:
        with tempfile.TemporaryDirectory(prefix="proml-bundle-") as tmp:
            car = Path(tmp) / "content.car"
            store.export_car(subject.cid, car)
            content = {"cid": subject.cid, "car": base64.b64encode(car.read_bytes()).decode()}
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "chain_id": chain.chain_id,
        "ledger": chain.address,
        "identity": identity.to_json() if identity is not None else None,
        "subject": {"artefact": subject.artefact, "digest": subject.digest},
        "deep": deep,
        "anchor": {"number": anchor, "hash": hexb(anchor_hash)},
        "headers": headers,
        "transactions": sorted(transactions, key=lambda t: (t["block"], t["index"])),
        "state": {
            "account_proof": [hexb(n) for n in account_proof],
            "versions": [
                {
                    "artefact": v.artefact,
                    "digest": v.digest,
                    "proof": [hexb(n) for n in proof],
                }
                for v, proof in zip(versions, storage_proofs, strict=True)
            ],
        },
        "records": records,
        "content": content,
    }


def create_for_project(
    project: Project, spec: str, *, deep: bool = False, with_content: bool = False
) -> dict[str, Any]:
    """The bundle document for version ``spec`` of ``project`` (write it with ``format.dump``).

    The ledger is opened once; the deployment is the one ``proml.lock`` pins, else the one the
    chain reports for the ledger.

    Raises:
        InputError: no such artefact or version; LedgerError: the history does not check.
    """
    from typing import cast

    from proml_cli import history, identity

    store = project.store()
    lock = identity.read_lock(project.root)
    with project.ledger() as ledger:
        deployment: tuple[str, int] | None = None
        if lock is not None:
            deployment = (lock.deploy_tx, lock.deploy_block)
        else:
            found = ledger.deployment()
            deployment = (found.tx_hash, found.block) if found else None
        return create(
            cast("RawChain", ledger),
            history.read(ledger),
            store,
            spec=spec,
            deep=deep,
            with_content=with_content,
            identity=lock,
            deployment=deployment,
        )
