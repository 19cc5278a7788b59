"""The ProMLLedger contract client over any web3 provider: encoding, signing, errors, events."""

from __future__ import annotations

import copy
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from eth_abi.exceptions import DecodingError
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    TimeExhausted,
    Web3RPCError,
)
from web3.types import RPCEndpoint

from proml_cli.digest import bare
from proml_cli.errors import BackendUnavailable, InputError, LedgerError, ProMLError
from proml_cli.ledger import (
    ChainEvent,
    Deployment,
    Kind,
    Move,
    Receipt,
    Registration,
    Transition,
    VersionRef,
    VersionState,
)
from proml_cli.ledger._storage import EMPTY_CODE_HASH
from proml_cli.ledger._storage import keccak as fast_keccak

if TYPE_CHECKING:
    from proml_cli.ledger._index import HistoryIndex

logger = logging.getLogger(__name__)

#: Version keys per ``versionWords`` call (an eth_call has a gas cap; 2,100 gas per key).
WORDS_PER_CALL = 1000
#: A version word's head bits, and its step count (see the contract's notes).
HEAD_MASK = ((1 << 256) - 1) ^ ((1 << 64) - 1)
STEPS_MASK = (1 << 40) - 1
#: ``source`` of a registration step.
NO_STATE = 255

#: Multiplier on the node's gas estimate: estimates are exact on these chains, but a block's
#: state can move between estimate and inclusion.
GAS_MARGIN = 1.25


@cache
def compiled_contract() -> dict[str, Any]:
    """The compiled contract (ABI and bytecode) committed in the package."""
    text = resources.files("proml_cli.ledger").joinpath("compiled/ProMLLedger.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


# ---------------------------------------------------------------------------- encoding


def name32(name: str) -> bytes:
    """Encode a short ASCII name as right-padded bytes32, the contract's name type."""
    raw = name.encode("ascii", errors="strict") if name.isascii() else b""
    if not raw or len(raw) > 32:
        raise InputError(f"name {name!r} must be 1 to 32 ASCII characters to be stored on-chain")
    return raw.ljust(32, b"\0")


def text32(raw: bytes) -> str:
    """Decode a bytes32 name back to text."""
    return bytes(raw).rstrip(b"\0").decode("ascii", errors="replace")


def digest32(digest: str) -> bytes:
    """Encode a sha256 hex digest (optionally ``sha256:``-prefixed) as bytes32."""
    hexpart = bare(digest)
    try:
        raw = bytes.fromhex(hexpart)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InputError(f"not a sha256 digest: {digest!r}")
    return raw


def cid_bytes(cid: str) -> bytes:
    """Encode a CID for the chain: its binary form (shorter calldata and logs than the text)."""
    from proml_cli.content import cid_to_bytes

    return cid_to_bytes(cid)


def cid_text(raw: bytes) -> str:
    """Decode a CID from its binary form."""
    from proml_cli.content import cid_from_bytes

    return cid_from_bytes(bytes(raw)) if raw else ""


def version_key(ref: VersionRef) -> bytes:
    """The contract's version key: keccak256(artefact32 ‖ digest32)."""
    return fast_keccak(name32(ref.artefact) + digest32(ref.digest))


def chain_head(events: Sequence[ChainEvent], initial: int) -> tuple[int, str]:
    """Fold Registered/Transitioned events into (steps, head) exactly as the contract does.

    ``initial`` is the index of the version's kind's initial state (a registration's target,
    which its event does not carry: the kind's rules are fixed once it has a version).
    """
    head = b"\0" * 32
    steps = 0
    zero = b"\0" * 32
    for event in events:
        r: dict[str, Any] = event.raw
        if event.name == "Registered":
            action = name32("register")
            source, target = NO_STATE, initial
            cid_hash = fast_keccak(bytes(r["cid"]))
            packed = b"".join(bytes(k) for k in r["inputs"])
            inputs_hash = fast_keccak(packed)
        elif event.name == "Transitioned":
            action = bytes(r["transition"])
            source, target = int(r["source"]), int(r["target"])
            cid_hash = inputs_hash = zero
        else:
            continue
        # abi.encode of nine static words, written out (eth_abi costs ~20x more per step).
        words = b"".join(
            (
                head,
                action,
                bytes.fromhex(str(r["actor"]).removeprefix("0x")).rjust(32, b"\0"),
                source.to_bytes(32, "big"),
                target.to_bytes(32, "big"),
                int(r["roles"]).to_bytes(32, "big"),
                fast_keccak(bytes(r["recordCid"])),
                cid_hash,
                inputs_hash,
            )
        )
        digest = fast_keccak(words)
        head = (int.from_bytes(digest, "big") & HEAD_MASK).to_bytes(32, "big")
        steps += 1
    return steps, "0x" + head.hex()


# ---------------------------------------------------------------------------- errors


def explain(error: str, args: dict[str, Any]) -> str:
    """Turn a decoded custom error into one human sentence."""
    a = {k: (text32(v) if isinstance(v, bytes) and len(v) == 32 else v) for k, v in args.items()}
    for key in ("caller", "account"):
        if isinstance(a.get(key), str):
            a[key] = to_checksum_address(a[key])  # as events and `proml account list` show it
    if error in ("DuplicateVersion", "UnknownVersion", "WrongState"):
        a["digest"] = bytes(args["digest"]).hex()[:12]
    messages = {
        "NotAdmin": "account {caller} is not the project's admin",
        "NotPendingAdmin": "account {caller} has no pending admin offer",
        "ZeroAddress": "the zero address cannot hold a role",
        "EmptyName": "an empty name cannot be stored",
        "RoleExists": "role '{role}' is already defined",
        "UnknownRole": "role '{role}' is not defined on the ledger",
        "TooManyRoles": "the ledger holds at most 128 roles",
        "KindInUse": "kind '{kind}' has recorded versions on the ledger: its rules are fixed",
        "UnknownKind": "kind '{kind}' is not defined on the ledger",
        "TooManyKinds": "the ledger holds no more kinds",
        "NoStates": "kind '{kind}' has no states",
        "TooManyStates": "kind '{kind}' has more than 64 states",
        "DuplicateState": "kind '{kind}' lists state '{state}' twice",
        "BadInitialState": "kind '{kind}' has no state number {initial}",
        "UnknownState": "kind '{kind}' has no state '{state}'",
        "NoRoles": "'{transition}' of kind '{kind}' names no role that may fire it",
        "NoSourceStates": "transition '{transition}' of kind '{kind}' has no source state",
        "DuplicateTransition": "kind '{kind}' defines transition '{transition}' twice",
        "UnknownTransition": "kind '{kind}' has no transition '{transition}'",
        "MissingRole": "account {account} holds no role allowed to '{action}' on kind '{kind}'",
        "WrongState": (
            "'{transition}' is not allowed from state '{state}' "
            "(artefact '{artefact}', version sha256:{digest})"
        ),
        "DuplicateVersion": "version sha256:{digest} of '{artefact}' is already registered",
        "UnknownVersion": "version sha256:{digest} of '{artefact}' is not registered",
        "UnknownArtefact": "artefact '{artefact}' is not defined on the ledger",
        "ArtefactExists": "artefact '{artefact}' is already defined (kind '{kind}')",
        "LengthMismatch": "names and kinds differ in length",
        "EmptyBatch": "nothing to submit",
    }
    template = messages.get(error)
    if template is None:
        return f"the ledger refused the transaction ({error})"
    return "the ledger refused: " + template.format(**a)


@cache
def _error_table() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table = {}
    for item in compiled_contract()["abi"]:
        if item["type"] != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        signature = f"{item['name']}({','.join(types)})"
        table[bytes(keccak(text=signature))[:4]] = (
            item["name"],
            [i["name"] for i in item["inputs"]],
            types,
        )
    return table


def decode_revert(data: str | bytes | None) -> LedgerError | None:
    """Decode custom-error revert data into a :class:`LedgerError`, or None if unknown."""
    if data is None:
        return None
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    entry = _error_table().get(raw[:4])
    if entry is None:
        return None
    from eth_abi.abi import decode

    name, names, types = entry
    values = decode(types, raw[4:])
    error = LedgerError(explain(name, dict(zip(names, values, strict=True))))
    error.contract_error = name
    return error


def _ledger_error(exc: Exception) -> LedgerError:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    decoded = decode_revert(data if isinstance(data, str | bytes) else None)
    if decoded is None and exc.args and isinstance(exc.args[0], str):
        first = exc.args[0].removeprefix("execution reverted: ")
        if first.startswith("0x"):
            decoded = decode_revert(first)
        elif first.startswith(("b'", 'b"')):
            # eth-tester reports custom-error data as the repr of the bytes.
            import ast

            raw = ast.literal_eval(first)
            decoded = decode_revert(raw) if isinstance(raw, bytes) else None
    return decoded or LedgerError(f"the ledger refused the transaction: {exc}")


# ---------------------------------------------------------------------------- client


class ContractLedger:
    """A :class:`proml_cli.ledger.Ledger` over a ``Web3`` instance and a local signing account."""

    #: Exceptions a provider raises for a reverted call or estimate.
    _revert_errors: tuple[type[Exception], ...] = (ContractCustomError, ContractLogicError)

    def __init__(self, w3: Web3, signer: Any, address: str | None) -> None:
        self._w3 = w3
        self._signer = signer
        self._is_view = False
        if signer is not None:
            self._prepare_signer(signer)
        self._block_times: dict[int, int] = {}
        self._hindex: HistoryIndex | None = None
        abi = compiled_contract()["abi"]
        if address is None:
            address = self._deploy(abi)
        else:
            code_hash = self._code_hash(to_checksum_address(address))
            if code_hash in (b"", EMPTY_CODE_HASH):
                raise InputError(
                    f"no contract at {address} on this chain", hint="check chain settings"
                )
            expected = bytes.fromhex(compiled_contract()["deployed_bytecode"].removeprefix("0x"))
            if code_hash != fast_keccak(expected):
                # A look-alike contract could answer every call and enforce nothing.
                raise InputError(
                    f"the contract at {address} is not this version of the ProMLLedger",
                    hint="check the ledger address, or upgrade proml to the project's version",
                )
        self._contract = self._contract_at(to_checksum_address(address), abi)

    def _code_hash(self, address: ChecksumAddress) -> bytes:
        """keccak256 of the code deployed at ``address`` (that of no code where there is none)."""
        return fast_keccak(bytes(self._w3.eth.get_code(address)))

    def _contract_at(self, address: ChecksumAddress, abi: list[dict[str, Any]]) -> Contract:
        """The web3 contract object of the ledger at ``address``."""
        return self._w3.eth.contract(address=address, abi=abi)

    # -- properties

    @property
    def address(self) -> str:
        """The ledger contract's address."""
        return str(self._contract.address)

    @property
    def account(self) -> str:
        """The signing account's address ("" for a read-only ledger)."""
        return "" if self._signer is None else str(self._signer.address)

    @property
    def chain_id(self) -> int:
        """The chain's id."""
        return int(self._w3.eth.chain_id)

    def with_signer(self, signer: Any) -> ContractLedger:
        """A view of the same ledger that signs with ``signer`` (closing it releases nothing)."""
        self._prepare_signer(signer)
        view = copy.copy(self)
        view._signer = signer
        view._is_view = True
        return view

    # -- writes

    def define_roles(self, names: Sequence[str]) -> Receipt | None:
        """Define the roles that are not defined yet."""
        existing = set(self.role_names())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if not missing:
            return None
        return self._transact(self._contract.functions.defineRoles([name32(n) for n in missing]))

    def define_kind(self, kind: Kind) -> Receipt:
        """Define ``kind`` on-chain."""
        if kind.initial not in kind.states:
            raise InputError(f"kind {kind.name!r}: initial state {kind.initial!r} is not a state")
        transitions = [
            (
                name32(t.name),
                [name32(s) for s in t.sources],
                name32(t.target),
                [name32(r) for r in t.roles],
            )
            for t in kind.transitions.values()
        ]
        call = self._contract.functions.defineKind(
            name32(kind.name),
            [name32(s) for s in kind.states],
            kind.states.index(kind.initial),
            [name32(r) for r in kind.register],
            [name32(s) for s in kind.consumable],
            transitions,
        )
        try:
            return self._transact(call)
        except LedgerError as exc:
            if exc.contract_error == "KindInUse":
                exc.hint = (
                    f"define a successor kind (e.g. '{kind.name}-v2') and rebind the artefacts "
                    "to it: recorded versions keep their kind"
                )
            raise

    def define_artefacts(self, kinds: dict[str, str]) -> Receipt | None:
        """Bind artefacts (name → kind) that are not bound yet; a bound one must match."""
        missing = {}
        for name, kind in kinds.items():
            bound = self.artefact_kind(name)
            if bound is None:
                missing[name] = kind
            elif bound != kind:
                raise LedgerError(
                    f"artefact '{name}' is of kind '{bound}' on the ledger, "
                    f"the policy says '{kind}'",
                    hint="the admin rebinds it to the new kind with `proml init`",
                )
        if not missing:
            return None
        fn = self._contract.functions.defineArtefacts(
            [name32(n) for n in missing], [name32(k) for k in missing.values()]
        )
        return self._transact(fn)

    def rebind_artefact(self, name: str, kind: str) -> Receipt | None:
        """Bind ``name`` to ``kind``; None when it is bound to it already."""
        if self.artefact_kind(name) == kind:
            return None
        return self._transact(self._contract.functions.rebindArtefact(name32(name), name32(kind)))

    def artefact_kind(self, name: str) -> str | None:
        """The kind ``name`` is bound to, or None."""
        raw = self._call(self._contract.functions.artefactKind(name32(name)))
        return text32(raw) or None

    def grant_role(self, role: str, account: str) -> Receipt:
        """Grant ``role`` to ``account``."""
        fn = self._contract.functions.grantRole(name32(role), _address(account))
        return self._transact(fn)

    def revoke_role(self, role: str, account: str) -> Receipt:
        """Revoke ``role`` from ``account``."""
        fn = self._contract.functions.revokeRole(name32(role), _address(account))
        return self._transact(fn)

    def transfer_admin(self, account: str) -> Receipt:
        """Offer the admin role to ``account``."""
        return self._transact(self._contract.functions.transferAdmin(_address(account)))

    def accept_admin(self) -> Receipt:
        """Accept a pending admin offer."""
        return self._transact(self._contract.functions.acceptAdmin())

    def submit(
        self, record_cid: str, registrations: Sequence[Registration], moves: Sequence[Move]
    ) -> Receipt:
        """Apply a batch in one transaction (a single operation uses the cheaper direct call)."""
        record = cid_bytes(record_cid)
        regs = [
            (
                name32(r.version.artefact),
                digest32(r.version.digest),
                cid_bytes(r.cid),
                [version_key(i) for i in r.inputs],
            )
            for r in registrations
        ]
        mvs = [
            (name32(m.version.artefact), digest32(m.version.digest), name32(m.transition))
            for m in moves
        ]
        fns = self._contract.functions
        if len(regs) == 1 and not mvs:
            a, d, c, inputs = regs[0]
            return self._transact(fns.register(a, d, c, record, inputs))
        if len(mvs) == 1 and not regs:
            a, d, t = mvs[0]
            return self._transact(fns.transition(a, d, t, record))
        return self._transact(fns.batch(record, regs, mvs))

    # -- reads

    def admin(self) -> str:
        """The admin's address."""
        return str(self._call(self._contract.functions.admin()))

    def version(self, ref: VersionRef) -> VersionState | None:
        """A version's current state."""
        fn = self._contract.functions.versionOf(name32(ref.artefact), digest32(ref.digest))
        exists, kind, state, steps, head = self._call(fn)
        if not exists:
            return None
        return VersionState(
            ref.artefact,
            ref.digest,
            text32(kind),
            text32(state),
            steps=int(steps),
            head="0x" + bytes(head).hex(),
        )

    def version_words(self, refs: Sequence[VersionRef]) -> list[int]:
        """The packed storage words of versions, ``WORDS_PER_CALL`` per eth_call."""
        found: list[int] = []
        keys = [version_key(r) for r in refs]
        for start in range(0, len(keys), WORDS_PER_CALL):
            chunk = keys[start : start + WORDS_PER_CALL]
            found.extend(int(w) for w in self._call(self._contract.functions.versionWords(chunk)))
        return found

    def kind_names(self) -> tuple[str, ...]:
        """Every kind defined on-chain, in definition order."""
        return tuple(text32(k) for k in self._call(self._contract.functions.kindNames()))

    def kind(self, name: str) -> Kind | None:
        """A kind's definition, read back from the contract."""
        fns = self._contract.functions
        try:
            states, initial, register_roles, transition_names, consumable, in_use = fns.kindOf(
                name32(name)
            ).call()
        except self._revert_errors as exc:
            error = _ledger_error(exc)
            if error.contract_error == "UnknownKind":
                return None
            raise error from exc
        transitions = []
        for tname in transition_names:
            sources, target, roles = fns.transitionOf(name32(name), tname).call()
            transitions.append(
                Transition(
                    text32(tname),
                    tuple(text32(s) for s in sources),
                    text32(target),
                    tuple(text32(r) for r in roles),
                )
            )
        return Kind.of(
            name,
            tuple(text32(s) for s in states),
            text32(states[initial]),
            tuple(text32(r) for r in register_roles),
            transitions,
            tuple(text32(s) for s in consumable),
            in_use=bool(in_use),
        )

    def role_names(self) -> tuple[str, ...]:
        """Every defined role."""
        return tuple(text32(r) for r in self._call(self._contract.functions.roleNames()))

    def kept_state(self) -> tuple[bytes, bytes] | None:
        """None: a chain read over JSON-RPC is not kept between commands."""
        return None

    def roles_of(self, account: str) -> tuple[str, ...]:
        """The roles ``account`` holds."""
        fn = self._contract.functions.rolesOf(_address(account))
        return tuple(text32(r) for r in self._call(fn))

    def history(self, from_block: int = 0) -> list[ChainEvent]:
        """Every ledger event, oldest first, decoded (read from the decoded history index)."""
        events = self.history_index().events()
        return [e for e in events if e.block >= from_block]

    def history_index(self, *, rebuild: bool = False, is_quiet: bool = False) -> HistoryIndex:
        """The decoded history index, brought up to the newest (confirmed) block.

        ``rebuild``: drop it and decode every event again (when what it served disagreed with
        the contract). ``is_quiet``: a rebuild the caller reports itself is not noted. See
        :mod:`proml_cli.ledger._index`.
        """
        from proml_cli.ledger._index import HistoryIndex

        if self._hindex is None:
            conn, commit = self._index_connection()
            self._hindex = HistoryIndex(conn, commit)
        self._hindex.sync(self, rebuild=rebuild, is_quiet=is_quiet)
        return self._hindex

    def events_between(self, first: int, last: int) -> list[ChainEvent]:
        """The ledger's events of blocks ``first`` to ``last``, decoded, oldest first.

        A registration's inputs stay version keys (``raw["inputs"]``): resolving them is the
        history index's work.
        """
        return self._decoded(self._logs(first, last))

    def head_block(self) -> tuple[int, str, str]:
        """The newest block history is read up to: its number, hash and parent's hash."""
        number = self.head_number()
        block = self._w3.eth.get_block(number)
        return number, _hash_text(block["hash"]), _hash_text(block["parentHash"])

    def _index_connection(self) -> tuple[sqlite3.Connection, Callable[[], None]]:
        """Where the decoded history index lives (backends keep it beside their chain data)."""
        conn = sqlite3.connect(":memory:")
        return conn, conn.commit

    def _index_changes(self, after_block: int) -> tuple[int, int] | None:
        """How often a local event index changed, and its rows above ``after_block``.

        None when the events come from the chain itself (see :mod:`proml_cli.ledger._index`).
        """
        return None

    def tx_status(self, tx_hash: str) -> Receipt | None:
        """A transaction's receipt, or None when the chain does not know it."""
        from web3.exceptions import TransactionNotFound

        try:
            receipt = self._w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        return self._receipt(receipt)

    def block_hash(self, number: int) -> str | None:
        """The hash of the canonical block ``number``, or None when the chain is shorter."""
        from web3.exceptions import BlockNotFound

        try:
            return _hash_text(self._w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    def deployment(self, tx_hash: str | None = None) -> Deployment | None:
        """How this ledger was deployed, as the chain's receipts and canonical blocks say.

        Without ``tx_hash`` the transaction of the contract's first event (the constructor's
        ``AdminTransferred``) is taken, found through the log index; it counts only if its
        receipt, read from the chain, says it created this contract.

        Raises:
            BackendUnavailable: the chain cannot be reached.
        """
        from web3.exceptions import TransactionNotFound

        if tx_hash is None:
            first = self._logs(0)[:1]
            if not first:
                return None
            tx_hash = "0x" + bytes(first[0]["transactionHash"]).hex().removeprefix("0x")
        try:
            receipt = self._w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except (TransactionNotFound, ValueError):
            return None
        created = receipt.get("contractAddress")
        if not created or to_checksum_address(str(created)) != self.address:
            return None
        number = int(receipt["blockNumber"])
        return Deployment(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex().removeprefix("0x"),
            block=number,
            # A node answers receipts of canonical transactions only: the receipt's block hash
            # is the canonical block's (one request fewer than asking for the block).
            block_hash=_hash_text(receipt["blockHash"]),
            admin=to_checksum_address(str(receipt["from"])),
            genesis_hash=_hash_text(self._w3.eth.get_block(0)["hash"]),
        )

    # -- raw chain data, for evidence that is checked without the chain (see proml_cli.bundle)

    def head_number(self) -> int:
        """The newest block whose state is read (the anchor of a bundle)."""
        return int(self._w3.eth.block_number)

    def raw_header(self, number: int) -> bytes:
        """Block ``number``'s RLP header (rebuilt from the node's JSON, checked by its hash).

        Raises:
            LedgerError: the node's answer does not hash to the block it names.
        """
        return self._header(number)[0]

    def _header(self, number: int) -> tuple[bytes, Any]:
        from proml_cli.ledger._raw import header_rlp

        block = self._w3.eth.get_block(number)
        header = header_rlp(dict(block))
        if bytes(keccak(header)) != bytes(block["hash"]):
            raise LedgerError(f"block {number}: the node's header does not hash to its hash")
        return header, block

    def raw_block(self, number: int) -> tuple[bytes, list[bytes], list[bytes]]:
        """Block ``number`` as its RLP header, its signed transactions and its receipts.

        The receipts are encoded as the block's receipts trie holds them (EIP-2718); the
        header is rebuilt from the node's JSON and must hash to the node's block hash.

        Raises:
            LedgerError: the node's answer does not hash to the block it names.
        """
        from proml_cli.ledger._raw import receipt_rlp

        header, block = self._header(number)
        txs = []
        receipts = []
        provider = self._w3.provider
        for tx_hash in block["transactions"]:
            text = _hash_text(tx_hash)
            raw = provider.make_request(RPCEndpoint("eth_getRawTransactionByHash"), [text])
            txs.append(bytes.fromhex(str(raw["result"]).removeprefix("0x")))
            receipts.append(receipt_rlp(dict(self._w3.eth.get_transaction_receipt(text))))  # type: ignore[arg-type]
        return header, txs, receipts

    def state_proof(
        self, slots: Sequence[bytes], number: int
    ) -> tuple[list[bytes], list[list[bytes]]]:
        """The ledger account's Merkle proof and each storage slot's, at block ``number``."""
        keys = [int.from_bytes(s, "big") for s in slots]
        proof = self._w3.eth.get_proof(self._contract.address, keys, number)  # type: ignore[call-arg, arg-type]
        account = [_raw_bytes(n) for n in proof["accountProof"]]
        storage = [[_raw_bytes(n) for n in item["proof"]] for item in proof["storageProof"]]
        return account, storage

    def close(self) -> None:
        """Nothing to release for a plain provider."""

    # -- internals for backends

    def _logs(self, from_block: int, to_block: int | None = None) -> list[dict[str, Any]]:
        """Raw logs of the contract from ``from_block`` to ``to_block`` (default: the head)."""
        last: Any = "latest" if to_block is None else to_block
        logs = self._w3.eth.get_logs(
            {"address": self._contract.address, "fromBlock": from_block, "toBlock": last}
        )
        return [dict(log) for log in logs]

    def _block_time(self, number: int) -> int:
        if number not in self._block_times:
            self._block_times[number] = int(self._w3.eth.get_block(number)["timestamp"])
        return self._block_times[number]

    def _decoded(self, logs: list[dict[str, Any]]) -> list[ChainEvent]:
        table = _event_table()
        events = []
        for log in logs:
            topics = [bytes(t) for t in log["topics"]]
            spec = table.get(topics[0]) if topics else None
            if spec is None:
                continue
            try:
                args, raw = spec.decode(topics, bytes(log["data"]))
            except (DecodingError, ValueError, TypeError, ProMLError) as exc:
                # The contract never emits such a log: only a damaged or forged row of the
                # event index reads like this. It is named, never skipped in silence.
                raise LedgerError(
                    f"the ledger's event index holds an undecodable {spec.name} row (block "
                    f"{int(log['blockNumber'])}, log {int(log['logIndex'])}): rows were added or "
                    f"edited ({exc})",
                    hint="nothing is believed from it; `proml fsck` compares the index with the "
                    "chain's receipts",
                ) from exc
            number = int(log["blockNumber"])
            stamp = log.get("timestamp")
            events.append(
                ChainEvent(
                    name=spec.name,
                    block=number,
                    timestamp=int(stamp) if stamp is not None else self._block_time(number),
                    tx_hash="0x" + bytes(log["transactionHash"]).hex().removeprefix("0x"),
                    log_index=int(log["logIndex"]),
                    args=args,
                    raw=raw,
                )
            )
        return events

    def _deploy(self, abi: list[dict[str, Any]]) -> str:
        factory = self._w3.eth.contract(abi=abi, bytecode=compiled_contract()["bytecode"])
        receipt = self._send(factory.constructor())
        address = receipt.get("contractAddress")
        if not address:
            raise LedgerError("deploying the ledger contract failed")
        logger.debug("deployed ledger at %s", address)
        return str(address)

    def _call(self, fn: Any) -> Any:
        try:
            return fn.call()
        except self._revert_errors as exc:
            raise _ledger_error(exc) from exc

    def _transact(self, fn: Any) -> Receipt:
        return self._receipt(self._send(fn))

    def _send(self, fn: Any) -> Any:
        if self._signer is None:
            raise InputError("this ledger was opened read-only: no account to sign with")
        w3 = self._w3
        sender = self._signer.address
        tx: dict[str, Any] = {"from": sender, "chainId": self.chain_id}
        try:
            tx["gas"] = self._gas(fn, sender)
        except self._revert_errors as exc:
            raise _ledger_error(exc) from exc
        tx.update(self._fees())
        tx["nonce"] = self._nonce()
        built = fn.build_transaction(tx)
        signed = self._signer.sign_transaction(built)
        try:
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        except Web3RPCError as exc:
            message = str(exc)
            if "insufficient funds" in message.lower():
                raise LedgerError(
                    f"account {sender} has not enough funds for gas on chain {self.chain_id}",
                    hint="fund the account, or sign with a funded one (--as / PROML_PRIVATE_KEY)",
                ) from exc
            raise LedgerError(f"the chain rejected the transaction: {message}") from exc
        try:
            receipt = self._wait(tx_hash)
        except TimeExhausted as exc:
            raise BackendUnavailable(
                f"transaction {tx_hash.hex()} was not mined in time", hint="run `proml sync` later"
            ) from exc
        if receipt["status"] != 1:
            raise LedgerError(f"transaction {tx_hash.hex()} reverted on-chain")
        self._after_receipt(receipt)
        return receipt

    def _gas(self, fn: Any, sender: str) -> int:
        """The gas limit of ``fn`` sent by ``sender``: the chain's estimate with a margin.

        Raises:
            ContractCustomError, ContractLogicError: the contract refuses the call.
        """
        return int(fn.estimate_gas({"from": sender}) * GAS_MARGIN)

    def _fees(self) -> dict[str, int]:
        latest = self._fee_block()
        base = latest.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(self._w3.eth.gas_price)}
        tip = int(self._w3.eth.max_priority_fee) if self._supports_tip() else 0
        return {"maxFeePerGas": int(base) * 2 + tip, "maxPriorityFeePerGas": tip}

    def _fee_block(self) -> Any:
        """The newest block, whose base fee a transaction's fees are derived from."""
        return self._w3.eth.get_block("latest")

    def _supports_tip(self) -> bool:
        return True

    def _nonce(self) -> int:
        return int(self._w3.eth.get_transaction_count(self._signer.address, "pending"))

    def _wait(self, tx_hash: Any) -> Any:
        return self._w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)

    def _prepare_signer(self, signer: Any) -> None:
        """Hook for backends (the embedded chain funds a new local account here)."""

    def _after_receipt(self, receipt: Any) -> None:
        """Hook for backends (the embedded chain indexes logs and persists here)."""

    def _receipt(self, receipt: Any) -> Receipt:
        number = int(receipt["blockNumber"])
        return Receipt(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex().removeprefix("0x"),
            block=number,
            timestamp=self._block_time(number),
            gas_used=int(receipt["gasUsed"]),
        )


def _raw_bytes(value: Any) -> bytes:
    """A node's answer as bytes (web3 gives HexBytes, or hex text)."""
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _hash_text(value: Any) -> str:
    """A block or transaction hash as ``0x`` + lowercase hex."""
    return "0x" + bytes(value).hex().removeprefix("0x")


def _address(account: str) -> str:
    try:
        return str(to_checksum_address(account))
    except ValueError as exc:
        raise InputError(f"not an Ethereum address: {account!r}") from exc


def _ref_dict(event: ChainEvent) -> dict[str, str]:
    return {"artefact": str(event.args["artefact"]), "digest": str(event.args["digest"])}


class _EventSpec:
    """How to decode one event of the contract straight with eth_abi.

    web3's ``process_log`` validates and wraps every value and costs ~1 ms per event: a
    history of 10,000 events took over 10 s. Decoding the ABI directly is far cheaper.
    """

    def __init__(self, item: dict[str, Any]) -> None:
        self.name = str(item["name"])
        self.indexed = [(i["name"], i["type"]) for i in item["inputs"] if i["indexed"]]
        self.data = [(i["name"], i["type"]) for i in item["inputs"] if not i["indexed"]]
        self.data_types = [t for _, t in self.data]

    def decode(
        self, topics: list[bytes], data: bytes
    ) -> tuple[dict[str, object], dict[str, object]]:
        """The event's arguments as plain values, and as decoded (for rehashing)."""
        from eth_abi.abi import decode

        args: dict[str, object] = {}
        raw: dict[str, object] = {}
        for (name, kind), topic in zip(self.indexed, topics[1:], strict=False):
            raw[name] = value = decode([kind], topic)[0]
            args[name] = _plain(name, kind, value)
        for (name, kind), value in zip(self.data, decode(self.data_types, data), strict=True):
            raw[name] = value
            if self.name == "Registered" and name == "inputs":
                args["input_keys"] = [bytes(v) for v in value]
            else:
                args[name] = _plain(name, kind, value)
        return args, raw


@cache
def _event_table() -> dict[bytes, _EventSpec]:
    table = {}
    for item in compiled_contract()["abi"]:
        if item["type"] == "event":
            types = ",".join(i["type"] for i in item["inputs"])
            table[bytes(keccak(text=f"{item['name']}({types})"))] = _EventSpec(item)
    return table


def _plain(key: str, kind: str, value: Any) -> object:
    """Event argument → JSON-friendly value: names as text, digests as hex, CIDs as text."""
    if key in ("cid", "recordCid"):
        return cid_text(value)
    if key == "digest":
        return bytes(value).hex()
    if kind == "address":
        return str(to_checksum_address(value))
    if kind == "bytes32":
        return text32(value)
    if kind == "bytes32[]":
        return [text32(v) for v in value]
    return value
