"""In-memory fakes of the ledger and content-store protocols, and a project using them."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsIndex

from proml_cli.content import StoredContent, bytes_cid
from proml_cli.errors import ContentNotFoundError
from proml_cli.ledger import (
    ChainEvent,
    Deployment,
    Kind,
    Move,
    Receipt,
    Registration,
    VersionRef,
    VersionState,
)
from proml_cli.project import Project

if TYPE_CHECKING:
    from proml_cli.ledger._index import HistoryIndex


class EventIndex(list[ChainEvent]):
    """A ledger's event index: a list that counts every change made to it.

    The embedded chain's triggers count each row inserted into, edited in or deleted from its
    event-index table, and the decoded history index compares that count with the rows it
    appended (see :mod:`proml_cli.ledger._index`): this list counts the same way, so a test
    that edits a fake's events (``events.remove(...)``) is caught as such an edit is.
    """

    def __init__(self, events: Iterable[ChainEvent] = ()) -> None:
        super().__init__(events)
        self.changes = len(self)

    def append(self, event: ChainEvent) -> None:
        super().append(event)
        self.changes += 1

    def extend(self, events: Iterable[ChainEvent]) -> None:
        before = len(self)
        super().extend(events)
        self.changes += len(self) - before

    def __iadd__(self, events: Iterable[ChainEvent]) -> EventIndex:  # type: ignore[override,misc]
        self.extend(events)
        return self

    def insert(self, index: SupportsIndex, event: ChainEvent) -> None:
        super().insert(index, event)
        self.changes += 1

    def remove(self, event: ChainEvent) -> None:
        super().remove(event)
        self.changes += 1

    def pop(self, index: SupportsIndex = -1) -> ChainEvent:
        self.changes += 1
        return super().pop(index)

    def clear(self) -> None:
        self.changes += len(self)
        super().clear()

    def __setitem__(self, index: Any, value: Any) -> None:
        super().__setitem__(index, value)
        self.changes += 1

    def __delitem__(self, index: Any) -> None:
        super().__delitem__(index)
        self.changes += 1

    def sort(self, *args: Any, **kwargs: Any) -> None:
        super().sort(*args, **kwargs)
        self.changes += 1

    def reverse(self) -> None:
        super().reverse()
        self.changes += 1


@dataclass
class FakeReader:
    """A :class:`proml_cli.ledger.LedgerReader` holding its answers in dictionaries."""

    address: str = "0x" + "11" * 20
    chain_id: int = 1337
    admin_address: str = "0x" + "aa" * 20
    versions: dict[tuple[str, str], VersionState] = field(default_factory=dict)
    kinds: dict[str, Kind] = field(default_factory=dict)
    artefacts: dict[str, str] = field(default_factory=dict)
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    role_list: tuple[str, ...] = ()
    events: list[ChainEvent] = field(default_factory=EventIndex)
    #: The newest block mined (the head is never below the newest event's block).
    block: int = 0
    closed: bool = False
    _hindex: HistoryIndex | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.events, EventIndex):
            self.events = EventIndex(self.events)

    def artefact_kind(self, name: str) -> str | None:
        return self.artefacts.get(name)

    def admin(self) -> str:
        return self.admin_address

    def version(self, ref: VersionRef) -> VersionState | None:
        return self.versions.get((ref.artefact, ref.digest))

    def kind(self, name: str) -> Kind | None:
        return self.kinds.get(name)

    def version_words(self, refs: Sequence[VersionRef]) -> list[int]:
        return [0 for _ in refs]

    def kind_names(self) -> tuple[str, ...]:
        return tuple(self.kinds)

    def role_names(self) -> tuple[str, ...]:
        return self.role_list

    def roles_of(self, account: str) -> tuple[str, ...]:
        return self.roles.get(account, ())

    def kept_state(self) -> tuple[bytes, bytes] | None:
        return None

    def history(self, from_block: int = 0) -> list[ChainEvent]:
        """Every event from ``from_block`` on, read from the decoded history index."""
        return [e for e in self.history_index().events() if e.block >= from_block]

    def history_index(self, *, rebuild: bool = False) -> HistoryIndex:
        """The real decoded history index, in memory, synced from :meth:`events_between`."""
        from proml_cli.ledger._index import HistoryIndex

        if self._hindex is None:
            self._hindex = HistoryIndex(sqlite3.connect(":memory:"), commit=lambda: None)
        self._hindex.sync(self, rebuild=rebuild)  # type: ignore[arg-type]
        return self._hindex

    def events_between(self, first: int, last: int) -> list[ChainEvent]:
        """The events of blocks ``first`` to ``last``, oldest first (as decoded from logs)."""
        found = [e for e in self.events if first <= e.block <= last]
        return sorted(found, key=lambda e: (e.block, e.log_index))

    def head_block(self) -> tuple[int, str, str]:
        """The newest block: its number, hash and parent's hash."""
        head = max([self.block, *(e.block for e in self.events)])
        return head, self._hash(head), self._hash(head - 1)

    def _index_changes(self, after_block: int) -> tuple[int, int] | None:
        """How often the event index changed, and its events above ``after_block``."""
        events = self.events
        changes = events.changes if isinstance(events, EventIndex) else len(events)
        return changes, sum(1 for e in events if e.block > after_block)

    def _hash(self, number: int) -> str:
        if number < 0:
            return "0x" + "00" * 32
        return "0x" + sha256(f"{self.chain_id}:{self.address}:block {number}".encode())

    def tx_status(self, tx_hash: str) -> Receipt | None:
        return None

    def block_hash(self, number: int) -> str | None:
        if not 0 <= number <= self.head_block()[0]:
            return None
        return self._hash(number)

    def deployment(self, tx_hash: str | None = None) -> Deployment | None:
        return None

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeStore:
    """A content store holding raw bytes by CID (single blocks; paths are only hashed)."""

    blocks: dict[str, bytes] = field(default_factory=dict)

    def put_path(self, path: Path, *, cid_version: int = 1, **_: object) -> StoredContent:
        """Hash ``path`` for real; its bytes stay where they are."""
        from proml_cli.content import hash_path

        found = hash_path(path, cid_version=cid_version)
        return StoredContent(path, found.type, found.size, found.sha256, found.cid, 0, 0)

    def put_bytes(self, data: bytes) -> str:
        cid = bytes_cid(data)
        self.blocks[cid] = data
        return cid

    def cat(self, cid: str, *, limit: int = 1 << 26) -> bytes:
        if cid not in self.blocks:
            raise ContentNotFoundError(f"{cid} is not in the store")
        return self.blocks[cid][:limit]

    def has(self, cid: str) -> bool:
        return cid in self.blocks

    def check(self, cid: str) -> None:
        if bytes_cid(self.cat(cid)) != cid:
            raise ContentNotFoundError(f"{cid} does not hash to its CID")

    def get(self, cid: str, dest: Path) -> None:
        dest.write_bytes(self.cat(cid))

    def unpushed(self) -> list[str]:
        return []

    def flush(self) -> list[str]:
        return []


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FakeLedger(FakeReader):
    """A :class:`proml_cli.ledger.Ledger` that applies submissions as the contract would.

    Each registration and move becomes a ``Registered`` / ``Transitioned`` event, and each
    version's storage word commits to its events with the contract's step chain, so
    :func:`proml_cli.history.read` (and every check built on it) accepts what it wrote.
    ``submitted`` lists each submission's record CID; ``opens`` counts how often a command
    opened it (see :class:`FakeProject`).
    """

    account: str = "0x" + "cc" * 20
    submitted: list[str] = field(default_factory=list)
    opens: int = 0
    #: While True, opening it fails as an unreachable chain does.
    down: bool = False

    def with_signer(self, signer: object) -> FakeLedger:
        return self

    def version_words(self, refs: Sequence[VersionRef]) -> list[int]:
        words = []
        for ref in refs:
            state = self.versions.get((ref.artefact, ref.digest))
            if state is None or not state.head:
                words.append(0)
                continue
            kind = self.kinds[state.kind]
            index = list(self.kinds).index(state.kind) + 1
            head = int(state.head, 16)
            words.append(head | state.steps << 24 | kind.states.index(state.state) << 16 | index)
        return words

    def submit(
        self, record_cid: str, registrations: Sequence[Registration], moves: Sequence[Move]
    ) -> Receipt:
        from proml_cli.ledger._client import cid_bytes, name32, version_key

        self.block += 1
        receipt = Receipt("0x" + f"{self.block:064x}", self.block, 0, 21000)
        for r in registrations:
            kind = self.kinds[self.artefacts[r.version.artefact]]
            roles = self._mask(kind.register)
            keys = [version_key(i) for i in r.inputs]
            cid = (r.cid, cid_bytes(r.cid))
            args, raw = self._step_fields(r.version, roles, record_cid, cid=cid)
            args["input_keys"], raw["inputs"] = keys, keys
            self._emit(receipt, "Registered", r.version, args, raw, kind.name, kind.initial)
        for m in moves:
            current = self.versions[(m.version.artefact, m.version.digest)]
            kind = self.kinds[current.kind]
            rule = kind.transitions[m.transition]
            source, target = kind.states.index(current.state), kind.states.index(rule.target)
            args, raw = self._step_fields(
                m.version,
                self._mask(rule.roles),
                record_cid,
                transition=(m.transition, name32(m.transition)),
                source=(source, source),
                target=(target, target),
            )
            self._emit(receipt, "Transitioned", m.version, args, raw, kind.name, rule.target)
        self.submitted.append(record_cid)
        return receipt

    def _step_fields(
        self, version: VersionRef, roles: int, record_cid: str, **pairs: tuple[object, object]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A step event's ``args`` and ``raw``: the common fields, then ``pairs`` (shown, raw).

        What decoding the contract's log gives: ``args`` as ContractLedger._decoded makes them
        (names as text, digests as hex, CIDs as text, an address checksummed), ``raw`` as
        eth_abi decodes them (bytes32 words, binary CIDs, version keys, a lowercase address).
        """
        from eth_utils.address import to_checksum_address

        from proml_cli.ledger._client import cid_bytes, digest32, name32

        args: dict[str, Any] = {
            "actor": to_checksum_address(self.account),
            "recordCid": record_cid,
            "artefact": version.artefact,
            "digest": version.digest,
            "roles": roles,
        }
        raw: dict[str, Any] = {
            "actor": self.account.lower(),
            "recordCid": cid_bytes(record_cid),
            "artefact": name32(version.artefact),
            "digest": digest32(version.digest),
            "roles": roles,
        }
        for name, (shown, word) in pairs.items():
            args[name], raw[name] = shown, word
        return args, raw

    def _mask(self, allowed: Sequence[str]) -> int:
        held = set(self.roles.get(self.account, ())) & set(allowed)
        return sum(1 << i for i, name in enumerate(self.role_list) if name in held)

    def _emit(
        self,
        receipt: Receipt,
        name: str,
        ref: VersionRef,
        args: dict[str, object],
        raw: dict[str, object],
        kind: str,
        state: str,
    ) -> None:
        from proml_cli.ledger import step_chain

        event = ChainEvent(name, receipt.block, 0, receipt.tx_hash, len(self.events), args, raw)
        self.events.append(event)
        mine = [
            e
            for e in self.events
            if (e.args.get("artefact"), e.args.get("digest")) == (ref.artefact, ref.digest)
        ]
        initial = self.kinds[kind].states.index(self.kinds[kind].initial)
        steps, head = step_chain(mine, initial)
        self.versions[(ref.artefact, ref.digest)] = VersionState(
            ref.artefact, ref.digest, kind, state, steps, head
        )


@dataclass(frozen=True)
class FakeSigner:
    address: str = "0x" + "cc" * 20


@dataclass(frozen=True)
class FakeProject(Project):
    """A real project (policy, state directory) whose ledger, store and signer are fakes.

    Each :meth:`ledger` call counts as one open of the chain.
    """

    fake_ledger: FakeLedger = field(default_factory=FakeLedger)
    fake_store: FakeStore = field(default_factory=FakeStore)

    @contextmanager
    def ledger(self, signer: Any = None, **_: Any) -> Iterator[Any]:
        from proml_cli.errors import BackendUnavailable

        self.fake_ledger.opens += 1
        if self.fake_ledger.down:
            raise BackendUnavailable("the chain at fake://chain is unreachable")
        yield self.fake_ledger

    def store(self) -> Any:
        return self.fake_store

    def signer(self, account: str | None = None) -> Any:
        return FakeSigner(self.fake_ledger.account)


def fake_project(root: Path, policy_text: str) -> FakeProject:
    """A project in ``root`` with ``policy_text``, its ledger defining what the policy does."""
    from proml_cli.policy import load_policy
    from proml_cli.settings import Settings

    (root / "proml.yaml").write_text(policy_text)
    policy = load_policy(root / "proml.yaml")
    ledger = FakeLedger(
        kinds=dict(policy.kinds),
        artefacts={name: a.kind for name, a in policy.artefacts.items()},
        role_list=policy.roles,
    )
    ledger.roles[ledger.account] = policy.roles
    return FakeProject(
        policy=policy,
        state_dir=root / ".proml",
        settings=Settings(user="tester"),
        fake_ledger=ledger,
    )
