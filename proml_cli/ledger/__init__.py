"""The ledger: the project's on-chain state machines, behind one small interface.

Two backends implement :class:`Ledger`: the embedded chain (an in-process EVM persisted under
``.proml/``, the default) and any Ethereum JSON-RPC endpoint. Both run the same compiled
``ProMLLedger`` contract; this module imports neither backend (nor web3) until one is opened.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, Protocol

from proml_cli.errors import InputError
from proml_cli.settings import LOCK_TIMEOUT

if TYPE_CHECKING:
    from proml_cli.ledger._index import HistoryIndex

__all__ = [
    "DEFAULT_TIMEOUT",
    "LOCK_TIMEOUT",
    "NO_HEAD",
    "ChainConfig",
    "ChainEvent",
    "Deployment",
    "Kind",
    "Ledger",
    "LedgerReader",
    "Move",
    "Receipt",
    "Registration",
    "Transition",
    "VersionRef",
    "VersionState",
    "open_ledger",
    "step_chain",
    "unpack_word",
]

#: The head of a version without steps.
NO_HEAD = "0x" + "00" * 32


@dataclass(frozen=True)
class Transition:
    """A named move of a version from one of ``sources`` to ``target``, allowed to ``roles``."""

    name: str
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Kind:
    """A state machine every version of an artefact of this kind follows.

    The one model of a kind: the policy resolves its kinds into it, the contract stores it and
    :meth:`LedgerReader.kind` reads it back.

    Attributes:
        name: the kind's name, e.g. ``dataset``.
        states: every state, in declaration order (the order fixes the on-chain state numbers).
        initial: the state a newly registered version enters.
        register: roles allowed to register a new version.
        consumable: states a consumer accepts when it names none (``verify``, a step's ``uses``).
        transitions: transition name to :class:`Transition`, in declaration order.
        in_use: read from the ledger: a version of the kind exists, so its rules can no longer
            change (not part of equality).
    """

    name: str
    states: tuple[str, ...]
    initial: str
    register: tuple[str, ...]
    consumable: tuple[str, ...]
    transitions: Mapping[str, Transition] = field(hash=False)
    in_use: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        # A read-only copy: no caller's dict is shared or mutated.
        object.__setattr__(self, "transitions", MappingProxyType(dict(self.transitions)))

    @classmethod
    def of(
        cls,
        name: str,
        states: Sequence[str],
        initial: str,
        register: Sequence[str],
        transitions: Iterable[Transition],
        consumable: Sequence[str] = (),
        *,
        in_use: bool = False,
    ) -> Kind:
        """A kind from plain sequences (transitions keyed by their names, in order)."""
        return cls(
            name=name,
            states=tuple(states),
            initial=initial,
            register=tuple(register),
            consumable=tuple(consumable),
            transitions={t.name: t for t in transitions},
            in_use=in_use,
        )


@dataclass(frozen=True)
class VersionRef:
    """One version of one artefact: the artefact's name and the content's sha256 (hex)."""

    artefact: str
    digest: str


@dataclass(frozen=True)
class VersionState:
    """A version's kind and current state, as read from the contract.

    ``steps`` and ``head`` are the contract's commitment to the version's history: the number
    of steps (registration included) and the step-chain head (hex, 32 bytes, low 8 bytes zero);
    see :func:`step_chain`. Not part of equality.
    """

    artefact: str
    digest: str
    kind: str
    state: str
    steps: int = field(default=0, compare=False)
    head: str = field(default="", compare=False)


@dataclass(frozen=True)
class Registration:
    """Register ``version`` (content ``cid``), derived from ``inputs``."""

    version: VersionRef
    cid: str
    inputs: tuple[VersionRef, ...] = ()


@dataclass(frozen=True)
class Move:
    """Fire ``transition`` on ``version``."""

    version: VersionRef
    transition: str


@dataclass(frozen=True)
class Receipt:
    """A mined transaction: where, when and at what cost."""

    tx_hash: str
    block: int
    timestamp: int
    gas_used: int


@dataclass(frozen=True)
class ChainEvent:
    """One decoded contract event, in chain order.

    ``name`` is the event (``Registered``, ``Transitioned``, ``RoleGranted`` ...); ``args`` holds
    its fields with names decoded to text, digests to hex, CIDs to their string form, version
    keys to ``VersionRef`` where known.
    """

    name: str
    block: int
    timestamp: int
    tx_hash: str
    log_index: int
    args: dict[str, object] = field(default_factory=dict)
    #: The ABI-decoded values before conversion (bytes, ints), for checks that rehash them.
    raw: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Deployment:
    """The chain's own account of how a ledger contract came to be (what ``proml.lock`` pins).

    Read from the transaction's receipt and the canonical blocks, never from a local index:
    ``block_hash`` is the hash of the canonical block at ``block`` (a reset or reorganised chain
    has another one), ``genesis_hash`` that of block 0.
    """

    tx_hash: str
    block: int
    block_hash: str
    admin: str
    genesis_hash: str


class LedgerReader(Protocol):
    """What reading the ledger needs: contract storage, events and chain facts; no key."""

    @property
    def address(self) -> str:
        """The ledger contract's address (checksummed)."""
        ...

    @property
    def chain_id(self) -> int:
        """The chain's id (EIP-155)."""
        ...

    def artefact_kind(self, name: str) -> str | None:
        """The kind an artefact is bound to, or None."""
        ...

    def admin(self) -> str:
        """The current admin's address."""
        ...

    def version(self, ref: VersionRef) -> VersionState | None:
        """A version's current kind and state, or None if it was never registered."""
        ...

    def kind(self, name: str) -> Kind | None:
        """A kind's on-chain definition, or None if it is not defined."""
        ...

    def version_words(self, refs: Sequence[VersionRef]) -> list[int]:
        """Each version's packed storage word (0 if unknown); see :func:`unpack_word`."""
        ...

    def kind_names(self) -> tuple[str, ...]:
        """Every kind defined on-chain, in definition order (a version word's kind index - 1)."""
        ...

    def role_names(self) -> tuple[str, ...]:
        """Every role defined on-chain."""
        ...

    def kept_state(self) -> tuple[bytes, bytes] | None:
        """The contract's storage root and code hash, when this process keeps reads (the node).

        What the contract answers is a function of these two: a process that keeps results
        may reuse one computed from the same pair. None when nothing is kept, or the ledger
        cannot name them without a round trip (JSON-RPC).
        """
        ...

    def roles_of(self, account: str) -> tuple[str, ...]:
        """The roles ``account`` holds now."""
        ...

    def history(self, from_block: int = 0) -> list[ChainEvent]:
        """Every event of the ledger from ``from_block`` on, oldest first."""
        ...

    def history_index(self, *, rebuild: bool = False) -> HistoryIndex:
        """The decoded history index, up to the newest (confirmed) block.

        ``rebuild`` drops it and decodes every event again. Untrusted: :mod:`proml_cli.history`
        checks what it serves against contract storage.
        """
        ...

    def tx_status(self, tx_hash: str) -> Receipt | None:
        """The receipt of a mined transaction, or None if the chain does not know it."""
        ...

    def block_hash(self, number: int) -> str | None:
        """The hash of the canonical block ``number`` (``0x`` + hex), None if there is none yet."""
        ...

    def deployment(self, tx_hash: str | None = None) -> Deployment | None:
        """How this ledger was deployed, by ``tx_hash`` (else by its first event's transaction).

        None when the chain knows no such transaction, or it did not create this contract.
        """
        ...

    def close(self) -> None:
        """Release the chain (persist, unlock); the ledger is unusable afterwards."""
        ...


class Ledger(LedgerReader, Protocol):
    """The chain as proml needs it: one project's ledger contract and one signing account.

    A :class:`LedgerReader` that also writes (defines, grants, submits) as ``account``.
    """

    @property
    def account(self) -> str:
        """The address that signs this client's transactions."""
        ...

    def with_signer(self, signer: object) -> Ledger:
        """The same ledger, signing with ``signer`` (for tools that act as several accounts)."""
        ...

    def define_roles(self, names: Sequence[str]) -> Receipt | None:
        """Define roles not yet on-chain; return None when there was nothing to do."""
        ...

    def define_kind(self, kind: Kind) -> Receipt:
        """Define a kind, or redefine one no version of which exists yet.

        Raises:
            LedgerError: ``KindInUse`` when a version of the kind exists (its rules are fixed).
        """
        ...

    def rebind_artefact(self, name: str, kind: str) -> Receipt | None:
        """Bind a defined artefact to another kind (None when it is bound to ``kind`` already).

        Versions registered before keep their kind; new versions use ``kind``.
        """
        ...

    def define_artefacts(self, kinds: dict[str, str]) -> Receipt | None:
        """Bind artefacts (name → kind) not bound yet; None when there was nothing to do.

        Raises:
            LedgerError: an artefact is bound to another kind already.
        """
        ...

    def grant_role(self, role: str, account: str) -> Receipt:
        """Grant ``role`` to ``account`` (admin only, enforced by the contract)."""
        ...

    def revoke_role(self, role: str, account: str) -> Receipt:
        """Revoke ``role`` from ``account`` (admin only, enforced by the contract)."""
        ...

    def transfer_admin(self, account: str) -> Receipt:
        """Offer the admin role to ``account``; it takes effect when that account accepts."""
        ...

    def accept_admin(self) -> Receipt:
        """Accept a pending admin offer made to this client's account."""
        ...

    def submit(
        self, record_cid: str, registrations: Sequence[Registration], moves: Sequence[Move]
    ) -> Receipt:
        """Apply registrations then moves in one transaction, all or nothing."""
        ...


#: Seconds to wait for a network chain's answer to each call (``chain.timeout``).
DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True)
class ChainConfig:
    """Where the chain is and how to talk to it: the policy's ``chain:`` section, resolved.

    The policy gives the first four fields; the project adds where the embedded chain's state
    lives, and the environment (through :class:`proml_cli.settings.Settings`) may replace the
    backend and URL and bound the lock wait.

    Attributes:
        backend: ``embedded`` (an in-process EVM under ``state_dir``) or ``rpc`` (``url``).
        url: the JSON-RPC endpoint; set exactly when ``backend`` is ``rpc``.
        confirmations: blocks to wait for after a transaction (the embedded chain ignores it).
        timeout: seconds to wait for a network chain's answer before it counts as unreachable.
        state_dir: the embedded chain's directory (``.proml/chain``); an rpc chain caches block
            times there.
        receipt_timeout: seconds to wait for a sent transaction to be mined and confirmed.
        lock_timeout: seconds to wait for the embedded chain's lock held by another process.
        cache_dir: the user's cache directory, where a network chain's per-account nonce locks
            live (None: ``~/.cache``).
    """

    backend: Literal["embedded", "rpc"] = "embedded"
    url: str | None = None
    confirmations: int = 1
    timeout: float = DEFAULT_TIMEOUT
    state_dir: Path | None = None
    receipt_timeout: float = 120.0
    lock_timeout: float = LOCK_TIMEOUT
    cache_dir: Path | None = None


@contextmanager
def open_ledger(
    config: ChainConfig, *, signer: object, address: str | None = None
) -> Iterator[Ledger]:
    """Open the ledger: attach to ``address``, or deploy a new contract when it is None.

    Args:
        config: which chain.
        signer: an ``eth_account`` ``LocalAccount`` that signs this client's transactions.
        address: the project's ledger contract, or None to deploy one.

    Yields:
        The ledger; it is closed (persisted, unlocked) when the block exits.

    Raises:
        InputError: an unknown backend or a missing setting.
        BackendUnavailable: the chain cannot be reached.
    """
    from proml_cli import _deferred

    _deferred.install()  # before web3 and py-evm: keeps py_ecc's BLS code out of the process
    ledger: Ledger
    if config.backend == "embedded":
        if config.state_dir is None:
            raise InputError("the embedded chain needs a state directory")
        from proml_cli.ledger._embedded import open_embedded

        ledger = open_embedded(
            config.state_dir, signer=signer, address=address, lock_timeout=config.lock_timeout
        )
    elif config.backend == "rpc":
        if not config.url:
            raise InputError("chain.backend is rpc but no chain URL is set", hint="set chain.url")
        from proml_cli.ledger._rpc import open_rpc

        ledger = open_rpc(config, signer=signer, address=address)
    else:
        raise InputError(f"unknown chain backend {config.backend!r} (expected embedded or rpc)")
    try:
        yield ledger
    finally:
        ledger.close()


def unpack_word(word: int) -> tuple[int, int, int, str]:
    """A version's storage word → (kind index + 1, state index, steps, head hex)."""
    head = (word >> 64 << 64).to_bytes(32, "big")
    return word & 0xFFFF, (word >> 16) & 0xFF, (word >> 24) & ((1 << 40) - 1), "0x" + head.hex()


def step_chain(events: Sequence[ChainEvent], initial: int) -> tuple[int, str]:
    """Recompute a version's (steps, head) from its Registered/Transitioned events, in order.

    ``initial``: the index of its kind's initial state (see the contract's notes).

    The contract keeps the same pair in storage (``versionOf``): equal values mean the events
    are exactly the ones the contract applied, none added, removed or altered.
    """
    from proml_cli.ledger._client import chain_head

    return chain_head(events, initial)
