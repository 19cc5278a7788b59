"""Check a bundle offline: no chain, no content store, no project directory.

Everything is derived from one block the verifier trusts (``NUMBER:HASH``). Every check runs
on everything the bundle claims and reports its own failures (a forged step fails the proofs
*and* names the missing role); the bundle is verified only when none fails. Checks, numbered as
they are reported:

1. headers: every header hashes to its successor's parent hash, up to the bundle's newest
   block, which is the trusted block;
2. proofs: every transaction and receipt is in its block's tries (Merkle-Patricia proofs against
   the header's roots); the ledger account is in the anchor's state trie with the ProMLLedger's
   code; each bundled version's storage slot is in the account's storage trie;
3. signatures: every transaction's signature recovers its signer, is for this chain, and calls
   the ledger (the deployment: created it, by the pinned admin, in the pinned block);
4. events: the receipts succeeded; the events decoded from them are the ledger's, each actor is
   its transaction's signer, and each version's events recompute its proven step count and
   head (an event dropped, added or altered changes the head);
5. roles: every step names roles its kind allows for it, each held by the signer then (role
   grants and revocations replayed from proven events);
6. state: the kind's state machine replayed over the steps reaches the proven current state,
   which is accepted (``--state``, else the kind's consumable states; inputs: consumable);
7. records: every record's bytes hash to the CID the chain anchored, parse as a record and
   name the version;
8. content: with PATH, its bytes have the version's sha256 and CID; a bundled CAR has the CID;
9. lineage: with a deep bundle, every input of every bundled version (its registration's, and
   the materials of its steps' records) is bundled and checked.

This module reads the contract's ABI and bytecode from the package; it imports neither the
project nor the policy layer.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rlp
from rlp.exceptions import RLPException

from proml_cli.bundle.format import unhex, version_slot
from proml_cli.errors import ProMLError
from proml_cli.ledger import ChainEvent

CHECKS = {
    1: "headers",
    2: "proofs",
    3: "signatures",
    4: "events",
    5: "roles",
    6: "state",
    7: "records",
    8: "content",
    9: "lineage",
}


@dataclass
class BundleVerdict:
    """The answer: ``verified`` and one reason per failed check (``check N (name): …``)."""

    artefact: str
    digest: str
    cid: str = ""
    kind: str | None = None
    state: str | None = None
    anchor: int = 0
    chain_id: int = 0
    ledger: str = ""
    reasons: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        """True when no check failed."""
        return not self.reasons

    def failed(self) -> list[str]:
        """The names of the checks that failed, in check order."""
        names = {r.split("(", 1)[1].split(")", 1)[0] for r in self.reasons}
        return [name for name in CHECKS.values() if name in names]

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` shape."""
        return {
            "schema_version": 1,
            "verified": self.verified,
            "artefact": self.artefact,
            "sha256": f"sha256:{self.digest}",
            "cid": self.cid,
            "kind": self.kind,
            "state": self.state,
            "chain_id": self.chain_id,
            "ledger": self.ledger,
            "anchor_block": self.anchor,
            "reasons": self.reasons,
            "checked": self.checked,
            "failed_checks": self.failed(),
            "steps": self.steps,
        }


class _Bad(Exception):  # noqa: N818 - internal signal: a value failed its check
    pass


def _trie_errors() -> tuple[type[Exception], ...]:
    from trie.exceptions import BadTrieProof, ValidationError

    return (
        BadTrieProof,
        ValidationError,
        RLPException,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
    )


def _get_from_proof(root: bytes, key: bytes, nodes: list[bytes]) -> bytes:
    from trie.hexary import HexaryTrie

    try:
        decoded = [rlp.decode(n) for n in nodes]
        value = HexaryTrie.get_from_proof(root, key, decoded)  # type: ignore[no-untyped-call]
    except _trie_errors() as exc:
        raise _Bad(f"the proof does not lead to its root ({type(exc).__name__})") from exc
    return bytes(value)


def _runtime_code_hash() -> bytes:
    from eth_utils.crypto import keccak

    from proml_cli.ledger._client import compiled_contract

    code = bytes.fromhex(str(compiled_contract()["deployed_bytecode"]).removeprefix("0x"))
    return bytes(keccak(code))


@dataclass
class _Tx:
    block: int
    index: int
    raw: bytes
    receipt: bytes
    tx_hash: str
    signer: str = ""
    #: False once its signature cannot be recovered: nothing it says can be attributed.
    ok: bool = True


@dataclass
class _Kind:
    states: list[str]
    initial: int
    register_roles: list[str]
    consumable: list[str]
    transitions: dict[str, tuple[list[str], str, list[str]]] = field(default_factory=dict)


def verify_bundle(
    document: dict[str, Any],
    *,
    trusted: tuple[int, bytes],
    path: Path | None = None,
    states: Sequence[str] = (),
    cid_of_path: Callable[[Path, int], tuple[str, str]] | None = None,
) -> BundleVerdict:
    """Run every check on a loaded bundle (see :func:`proml_cli.bundle.format.load`).

    ``states``: the subject's accepted states (default: its kind's consumable states; the
    lineage is always held to its kinds' consumable states, as ``proml verify --deep`` does).
    ``cid_of_path(path, cid_version)`` → (sha256 hex, CID) of PATH's bytes; the default hashes
    with :func:`proml_cli.content.hash_path`.

    Raises:
        InputError: a malformed field (bad hex) in the bundle.
    """
    from eth_utils.crypto import keccak

    from proml_cli.ledger._client import _event_table, chain_head, cid_text, text32

    subject = document["subject"]
    verdict = BundleVerdict(
        artefact=str(subject.get("artefact")), digest=str(subject.get("digest"))
    )
    ledger = str(document["ledger"]).lower()
    chain_id = int(document["chain_id"])
    verdict.chain_id, verdict.ledger = chain_id, str(document["ledger"])

    def fail(check: int, reason: str) -> None:
        verdict.reasons.append(f"check {check} ({CHECKS[check]}): {reason}")

    # 1. headers ---------------------------------------------------------------------------
    headers: dict[int, list[Any]] = {}
    hashes: dict[int, bytes] = {}
    chain: list[tuple[bytes, list[Any]]] = []
    for i, text in enumerate(document["headers"]):
        raw = unhex(text, f"headers[{i}]")
        try:
            fields = list(rlp.decode(raw))
        except RLPException:
            fail(1, f"header {i} is not RLP")
            continue
        if len(fields) < 15 or not all(isinstance(f, bytes) for f in fields):
            fail(1, f"header {i} is not a block header")
            continue
        chain.append((bytes(keccak(raw)), fields))
    if not chain:
        fail(1, "the bundle holds no block header")
    else:
        newest_hash, newest = chain[-1]
        number = int.from_bytes(bytes(newest[8]), "big")
        verdict.anchor = number
        claimed = document["anchor"]
        if (claimed.get("number"), claimed.get("hash")) != (number, "0x" + newest_hash.hex()):
            fail(1, f"the bundle's anchor {claimed} is not its newest header")
        if (number, newest_hash) != trusted:
            fail(
                1,
                f"the bundle's newest block {number}:0x{newest_hash.hex()} is not the trusted "
                f"block {trusted[0]}:0x{trusted[1].hex()}",
            )
        else:
            headers[number] = newest
            hashes[number] = newest_hash
            for (h_prev, prev), (_, nxt) in zip(chain[-2::-1], chain[:0:-1], strict=True):
                n = int.from_bytes(bytes(prev[8]), "big")
                if bytes(nxt[0]) != h_prev or int.from_bytes(bytes(nxt[8]), "big") != n + 1:
                    fail(1, f"block {n} does not link to block {n + 1} (parent hash)")
                    break
                headers[n] = prev
                hashes[n] = h_prev
    verdict.checked.append("1 headers")

    # 2. proofs ----------------------------------------------------------------------------
    txs: list[_Tx] = []
    for i, entry in enumerate(document["transactions"]):
        block, index = int(entry["block"]), int(entry["index"])
        raw = unhex(entry["raw"], f"transactions[{i}].raw")
        receipt = unhex(entry["receipt"], f"transactions[{i}].receipt")
        tx = _Tx(block, index, raw, receipt, "0x" + bytes(keccak(raw)).hex())
        txs.append(tx)
        header = headers.get(block)
        if header is None:
            fail(2, f"transaction {tx.tx_hash} is in block {block}, not linked to the trusted one")
            continue
        key = bytes(rlp.encode(index))
        for what, root, value, proof in (
            ("transaction", bytes(header[4]), raw, entry["tx_proof"]),
            ("receipt", bytes(header[5]), receipt, entry["receipt_proof"]),
        ):
            nodes = [unhex(n, f"transactions[{i}] proof") for n in proof]
            try:
                if _get_from_proof(root, key, nodes) != value:
                    raise _Bad("the proven value differs")
            except _Bad as exc:
                fail(2, f"{what} {index} of block {block} ({tx.tx_hash}): {exc}")
    words: dict[tuple[str, str], int] = {}
    anchor = headers.get(verdict.anchor)
    state = document["state"]
    if anchor is None:
        fail(2, "no trusted state root: the state proofs cannot be checked")
    else:
        try:
            nodes = [unhex(n, "state.account_proof") for n in state.get("account_proof", [])]
            account_rlp = _get_from_proof(
                bytes(anchor[3]), bytes(keccak(bytes.fromhex(ledger[2:]))), nodes
            )
            if not account_rlp:
                raise _Bad("the ledger account does not exist at the trusted block")
            try:
                account = rlp.decode(account_rlp)
            except RLPException as exc:
                raise _Bad("the proven account is not RLP") from exc
            if bytes(account[3]) != _runtime_code_hash():
                raise _Bad("the account's code is not this version of the ProMLLedger")
            storage_root = bytes(account[2])
        except _Bad as exc:
            fail(2, f"ledger account {document['ledger']}: {exc}")
        else:
            for j, item in enumerate(state.get("versions", [])):
                ref = (str(item["artefact"]), str(item["digest"]))
                slot = version_slot(*ref)
                try:
                    nodes = [unhex(n, f"state.versions[{j}].proof") for n in item["proof"]]
                    value = _get_from_proof(storage_root, bytes(keccak(slot)), nodes)
                    word = int.from_bytes(bytes(rlp.decode(value)), "big") if value else 0
                    if word == 0:
                        raise _Bad("not registered")
                    words[ref] = word
                except (_Bad, RLPException) as exc:
                    fail(2, f"storage of version sha256:{ref[1][:12]} of '{ref[0]}': {exc}")
    verdict.checked.append("2 proofs")

    # 3. signatures ------------------------------------------------------------------------
    identity = document.get("identity") or {}
    from eth_account import Account
    from eth_keys.exceptions import BadSignature
    from eth_utils.address import to_checksum_address
    from eth_utils.exceptions import ValidationError

    for tx in txs:
        try:
            tx.signer = str(Account.recover_transaction(tx.raw))
            to, nonce, tx_chain = _tx_fields(tx.raw)
        except (_Bad, BadSignature, ValidationError, ValueError, TypeError, RLPException) as exc:
            fail(3, f"transaction {tx.tx_hash}: no valid signature ({type(exc).__name__})")
            tx.ok = False
            continue
        if tx_chain != chain_id:
            fail(3, f"transaction {tx.tx_hash} is signed for chain {tx_chain}, not {chain_id}")
        elif to is None:
            created = bytes(keccak(rlp.encode([bytes.fromhex(tx.signer[2:]), nonce])))[12:]
            if "0x" + created.hex() != ledger:
                fail(3, f"transaction {tx.tx_hash} created another contract, not the ledger")
            elif identity and (
                tx.tx_hash != str(identity.get("deploy_tx", "")).lower()
                or tx.signer.lower() != str(identity.get("admin", "")).lower()
                or tx.block != identity.get("deploy_block")
            ):
                fail(3, f"the deployment {tx.tx_hash} is not the one the pinned identity names")
        elif "0x" + to.hex() != ledger:
            fail(3, f"transaction {tx.tx_hash} calls {to_checksum_address(to)}, not the ledger")
    if identity and (
        identity.get("chain_id") != chain_id or str(identity.get("ledger", "")).lower() != ledger
    ):
        fail(3, "the pinned identity names another chain or ledger")
    if identity and not any(t.tx_hash == str(identity.get("deploy_tx", "")).lower() for t in txs):
        fail(3, "the pinned deployment transaction is not in the bundle")
    pinned = identity.get("deploy_block")
    pinned_hash = str(identity.get("deploy_block_hash", "")).lower()
    if isinstance(pinned, int) and pinned in hashes and "0x" + hashes[pinned].hex() != pinned_hash:
        fail(3, f"block {pinned} is not the deployment block the pinned identity names")
    genesis = str(identity.get("genesis_hash", "")).lower()
    if identity and 0 in hashes and "0x" + hashes[0].hex() != genesis:
        fail(3, "block 0 is not the genesis block the pinned identity names")
    verdict.checked.append("3 signatures")

    # 4. events ----------------------------------------------------------------------------
    from eth_abi.exceptions import DecodingError

    table = _event_table()
    events: list[tuple[ChainEvent, _Tx]] = []
    for tx in txs:
        if not tx.ok:
            continue
        body = tx.receipt if tx.receipt[0] >= 0xC0 else tx.receipt[1:]
        try:
            status, _, _, logs = rlp.decode(body)
        except (RLPException, ValueError) as exc:
            fail(4, f"receipt of {tx.tx_hash} is not a receipt ({type(exc).__name__})")
            continue
        if bytes(status) != b"\x01":
            fail(4, f"transaction {tx.tx_hash} failed on-chain")
            continue
        for log_index, log in enumerate(logs):
            try:
                address, topics, data = log
                topics = [bytes(t) for t in topics]
            except (ValueError, TypeError):
                fail(4, f"a log of {tx.tx_hash} is not a log")
                continue
            if "0x" + bytes(address).hex() != ledger:
                continue
            spec = table.get(bytes(topics[0])) if topics else None
            if spec is None:
                continue
            try:
                args, values = spec.decode([bytes(t) for t in topics], bytes(data))
            except (DecodingError, ProMLError, ValueError, TypeError) as exc:
                fail(4, f"an event of {tx.tx_hash} does not decode ({type(exc).__name__})")
                continue
            # Order within a block: transaction index, then the log's place in its receipt.
            position = tx.index * 100_000 + log_index
            event = ChainEvent(spec.name, tx.block, 0, tx.tx_hash, position, args, values)
            actor = args.get("actor") or args.get("by")
            if actor is not None and str(actor).lower() != tx.signer.lower():
                fail(4, f"{spec.name} in {tx.tx_hash} names actor {actor}, signer {tx.signer}")
            events.append((event, tx))

    events.sort(key=lambda item: (item[0].block, item[0].log_index))
    role_bits: list[str] = []
    kinds: dict[str, _Kind] = {}
    kind_order: list[str] = []
    bindings: dict[str, str] = {}
    for event, _ in events:
        a, r = event.args, event.raw
        if event.name == "RoleDefined":
            role_bits.append(str(a["role"]))
        elif event.name == "KindDefined":
            name = str(a["kind"])
            if name not in kind_order:
                kind_order.append(name)
            kinds[name] = _Kind(
                [str(s) for s in a["states"]],  # type: ignore[attr-defined]
                int(r["initial"]),  # type: ignore[call-overload]
                [str(s) for s in a["registerRoles"]],  # type: ignore[attr-defined]
                [str(s) for s in a["consumable"]],  # type: ignore[attr-defined]
            )
        elif event.name == "TransitionDefined" and str(a["kind"]) in kinds:
            kinds[str(a["kind"])].transitions[str(a["transition"])] = (
                [str(s) for s in a["sources"]],  # type: ignore[attr-defined]
                str(a["target"]),
                [str(s) for s in a["roles"]],  # type: ignore[attr-defined]
            )
        elif event.name == "ArtefactDefined":
            bindings[str(a["artefact"])] = str(a["kind"])
    # Kinds are fixed once used: the definition in force is the last one before registration.
    # A kind redefined after the version's registration would be refused by the contract.

    bundled = {(str(v["artefact"]), str(v["digest"])) for v in state.get("versions", [])}
    if (verdict.artefact, verdict.digest) not in bundled:
        fail(2, "the subject's storage proof is not in the bundle")
    grants: list[tuple[tuple[int, int], str, str, bool]] = [
        ((e.block, e.log_index), str(e.args["account"]).lower(), str(e.args["role"]), grant)
        for e, _ in events
        for grant in (e.name == "RoleGranted",)
        if e.name in ("RoleGranted", "RoleRevoked")
    ]
    records_wanted: dict[str, set[tuple[str, str]]] = {}
    inputs_of: dict[tuple[str, str], list[bytes]] = {}
    for ref in sorted(bundled):
        steps = [
            (e, tx)
            for e, tx in events
            if e.name in ("Registered", "Transitioned")
            and (str(e.args["artefact"]), str(e.args["digest"])) == ref
        ]
        label = f"version sha256:{ref[1][:12]} of '{ref[0]}'"
        found_word = words.get(ref)
        if found_word is None:
            continue
        word = found_word
        kind_index = (word & 0xFFFF) - 1
        kind_name = kind_order[kind_index] if 0 <= kind_index < len(kind_order) else None
        kind = kinds.get(kind_name or "")
        if kind is None or kind_name is None:
            fail(6, f"{label}: its kind (#{kind_index}) is not defined by a bundled event")
            continue
        proven_steps = (word >> 24) & ((1 << 40) - 1)
        proven_head = "0x" + ((word >> 64) << 64).to_bytes(32, "big").hex()
        count, head = chain_head([e for e, _ in steps], kind.initial)
        if (count, head) != (proven_steps, proven_head):
            fail(
                4,
                f"{label}: the bundled events give {count} steps and head {head[:14]}…, "
                f"the proven storage {proven_steps} steps and head {proven_head[:14]}… "
                "(an event was dropped, added or altered)",
            )
        # 5 and 6: roles and the state machine, step by step.
        current: int | None = None
        for e, tx in steps:
            mask = int(e.raw["roles"])  # type: ignore[call-overload]
            names = [n for bit, n in enumerate(role_bits) if (mask >> bit) & 1]
            if mask >> len(role_bits):
                fail(5, f"{label}: a step names a role no bundled event defines")
            if e.name == "Registered":
                action, allowed = "register", kind.register_roles
                source, target = None, kind.initial
                if current is not None:
                    fail(6, f"{label}: registered twice")
                inputs_of[ref] = [bytes(k) for k in e.raw["inputs"]]  # type: ignore[attr-defined]
                if ref == (verdict.artefact, verdict.digest):
                    verdict.cid = cid_text(bytes(e.raw["cid"]))  # type: ignore[call-overload]
                if bindings.get(ref[0]) != kind_name:
                    fail(
                        6, f"{label}: artefact bound to {bindings.get(ref[0])!r}, not '{kind_name}'"
                    )
            else:
                action = text32(e.raw["transition"])  # type: ignore[arg-type]
                rule = kind.transitions.get(action)
                source, target = int(e.raw["source"]), int(e.raw["target"])  # type: ignore[call-overload]
                allowed = rule[2] if rule else []
                if rule is None:
                    fail(6, f"{label}: kind '{kind_name}' has no transition '{action}'")
                elif current is None or current != source:
                    fail(6, f"{label}: '{action}' fired from state #{source}, not the current one")
                elif kind.states[source] not in rule[0] or kind.states[target] != rule[1]:
                    fail(6, f"{label}: '{action}' does not lead from {kind.states[source]} there")
            if not names:
                fail(5, f"{label}: '{action}' names no role")
            for role in names:
                if role not in allowed:
                    fail(5, f"{label}: role '{role}' may not '{action}' on kind '{kind_name}'")
                held = False
                for at, account, granted_role, grant in grants:
                    if (
                        at < (e.block, e.log_index)
                        and account == tx.signer.lower()
                        and granted_role == role
                    ):
                        held = grant
                if not held:
                    fail(5, f"{label}: '{action}' by {tx.signer}, who did not hold role '{role}'")
            current = target
            record_cid = cid_text(e.raw["recordCid"])  # type: ignore[arg-type]
            records_wanted.setdefault(record_cid, set()).add(ref)
            if ref == (verdict.artefact, verdict.digest):
                verdict.steps.append(
                    {
                        "action": action,
                        "from": None if source is None else kind.states[source],
                        "to": kind.states[target] if target < len(kind.states) else f"#{target}",
                        "actor": tx.signer,
                        "roles": names,
                        "block": e.block,
                        "tx_hash": e.tx_hash,
                        "record_cid": cid_text(e.raw["recordCid"]),  # type: ignore[arg-type]
                    }
                )
        proven_state = (word >> 16) & 0xFF
        if current != proven_state:
            fail(6, f"{label}: the replayed state #{current} is not the proven #{proven_state}")
        state_name = kind.states[proven_state] if proven_state < len(kind.states) else None
        is_subject = ref == (verdict.artefact, verdict.digest)
        accepted = list(states) if is_subject and states else kind.consumable
        if state_name not in accepted:
            fail(
                6,
                f"{label} is in state '{state_name}', accepted: "
                f"{', '.join(accepted) or 'none configured'}",
            )
        if is_subject:
            verdict.kind = kind_name
            verdict.state = state_name
    verdict.checked += ["4 events", "5 roles", "6 state"]

    # 7. records ---------------------------------------------------------------------------
    from proml_cli.content import bytes_cid
    from proml_cli.record import parse_record, versions_in

    records = document["records"]
    from proml_cli.bundle.format import materials

    used: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for cid, owners in sorted(records_wanted.items()):
        if cid not in records:
            fail(7, f"record {cid} is not in the bundle")
            continue
        try:
            data = base64.b64decode(str(records[cid]), validate=True)
        except ValueError:
            fail(7, f"record {cid} is not base64")
            continue
        if bytes_cid(data) != cid:
            fail(7, f"record {cid}: its bytes hash to {bytes_cid(data)}")
            continue
        try:
            record = parse_record(data, cid=cid)
        except ProMLError as exc:
            fail(7, exc.diagnosis)
            continue
        named = versions_in(record)
        for owner in sorted(owners):
            if owner not in named:
                fail(7, f"record {cid} does not name sha256:{owner[1][:12]} of '{owner[0]}'")
            used.setdefault(owner, set()).update(m for m in materials(record) if m != owner)
    verdict.checked.append("7 records")

    # 8. content ---------------------------------------------------------------------------
    cid_version = 0 if verdict.cid.startswith("Qm") else 1
    if path is not None:
        if cid_of_path is None:
            from proml_cli.content import hash_path

            def cid_of_path(p: Path, version: int) -> tuple[str, str]:
                found = hash_path(p, cid_version=version)
                return found.sha256, found.cid

        sha, cid = cid_of_path(path, cid_version)
        if sha != verdict.digest:
            fail(8, f"{path}: sha256:{sha[:12]}… is not the version's {verdict.digest[:12]}…")
        elif cid != verdict.cid:
            fail(8, f"{path}: CID {cid} is not the recorded {verdict.cid}")
    content = document.get("content")
    if isinstance(content, dict):
        problem = _check_car(content, verdict.cid)
        if problem:
            fail(8, problem)
    verdict.checked.append("8 content")

    # 9. lineage ---------------------------------------------------------------------------
    if document.get("deep"):
        from proml_cli.ledger import VersionRef
        from proml_cli.ledger._client import version_key

        keys = {version_key(VersionRef(a, d)) for a, d in bundled}
        for ref, inputs in inputs_of.items():
            for key in inputs:
                if key not in keys:
                    fail(9, f"an input of sha256:{ref[1][:12]} of '{ref[0]}' is not bundled")
        for ref, material in sorted(used.items()):
            for artefact, digest in sorted(material - bundled):
                fail(
                    9,
                    f"{artefact}@sha256:{digest[:12]}, used by a step on sha256:{ref[1][:12]} "
                    f"of '{ref[0]}', is not bundled",
                )
        verdict.checked.append("9 lineage")
    return verdict


def _tx_fields(raw: bytes) -> tuple[bytes | None, int, int]:
    """A signed transaction's (to, nonce, chain id); ``to`` None for a contract creation."""
    if raw[0] >= 0xC0:
        nonce, _, _, to, _, _, v, _, _ = rlp.decode(raw)
        v_int = int.from_bytes(bytes(v), "big")
        if v_int < 35:
            raise _Bad("a transaction without a chain id (pre-EIP-155)")
        chain = (v_int - 35) // 2
    elif raw[0] in (1, 2):
        fields = rlp.decode(raw[1:])
        chain = int.from_bytes(bytes(fields[0]), "big")
        nonce = fields[1]
        to = fields[4] if raw[0] == 1 else fields[5]
    else:
        raise _Bad(f"unknown transaction type {raw[0]}")
    return (bytes(to) or None), int.from_bytes(bytes(nonce), "big"), chain


def _check_car(content: dict[str, Any], cid: str) -> str | None:
    """None when the bundled CAR's root is ``cid`` and every block hashes to its CID."""
    import tempfile

    from proml_cli.content._car import CarReader

    if content.get("cid") != cid:
        return f"the bundled content is {content.get('cid')}, not the recorded {cid}"
    try:
        data = base64.b64decode(str(content.get("car")), validate=True)
    except ValueError:
        return "the bundled CAR is not base64"
    with tempfile.TemporaryDirectory(prefix="proml-bundle-") as tmp:
        car = Path(tmp) / "content.car"
        car.write_bytes(data)
        try:
            with CarReader(car) as reader:
                roots = [str(r) for r in reader.roots]
                for _ in reader:  # the reader checks every block against its CID
                    pass
        except ProMLError as exc:
            return f"the bundled CAR is damaged: {exc.diagnosis}"
    if roots != [cid]:
        return f"the bundled CAR's root is {roots}, not {cid}"
    return None
