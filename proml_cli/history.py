"""History rebuilt from the ledger's events, checked against the contract's storage.

The events come from wherever the backend keeps them: a JSON-RPC node's ``eth_getLogs``, or on
the embedded chain a local index (the ``logs`` table of ``.proml/chain/chain.sqlite``), decoded
once into the history index (:mod:`proml_cli.ledger._index`: tables ``hist_*`` beside it, or
``.proml/chain/history.sqlite`` for a JSON-RPC chain), which is fast to read but which anyone
with write access to ``.proml/`` can edit without a key. So no answer is taken from the events
alone:

* a version's kind, current state, step count and step-chain head are read from contract
  storage (``versionWords`` / ``versionOf``); the version's events must recompute the same head
  (:func:`proml_cli.ledger.step_chain`), otherwise the version is marked ``problem`` (rows were
  added, removed or edited) and nothing about it is believed;
* kinds (states, transitions, roles, consumable states) are read from contract storage;
* the roles that authorised each step are the ones its event carries, which the head covers:
  role grant/revoke events are never replayed to decide anything.

:func:`build` is the plain fold (tests, tools); :func:`read` is the checked whole history;
:func:`view` loads and checks only the versions a question needs (``log --limit``, ``show``,
``status``, ``verify``, a write's anchor lookup), so their cost does not grow with the history.
When what the history index served disagrees with the contract, it is rebuilt from the chain
once; what still disagrees is the chain's own event record, and is refused as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from proml_cli.digest import prefixed
from proml_cli.errors import LedgerError
from proml_cli.ledger import ChainEvent, Kind, Transition

if TYPE_CHECKING:
    from proml_cli.ledger import Ledger, VersionState

ZERO = "0x0000000000000000000000000000000000000000"

#: What a disagreement between the local index and the contract means, for messages.
TAMPERED = "rows were added, removed or edited in the local event index"
#: Why steps that agree with the contract's head but not with each other are refused.
REWRITTEN = "the version's state was changed outside the contract (the chain's state was edited)"


@dataclass
class HistoryStep:
    """One state change of a version: its registration or a transition.

    ``roles``: the actor's roles that allowed the step, as the contract checked them then.
    """

    event: ChainEvent
    action: str  # "register" or the transition's name
    source: str | None
    target: str
    actor: str
    record_cid: str
    roles: tuple[str, ...] = ()


@dataclass
class VersionHistory:
    """Everything the chain says about one version.

    ``problem`` is set when the events read for it do not match the contract (see the module
    docstring): such a version must not be believed.
    """

    artefact: str
    digest: str
    kind: str
    cid: str
    inputs: list[tuple[str, str]]
    steps: list[HistoryStep] = field(default_factory=list)
    problem: str | None = None

    @property
    def state(self) -> str:
        """The state after the last step."""
        return self.steps[-1].target

    @property
    def registered(self) -> HistoryStep:
        """The registration step."""
        return self.steps[0]


@dataclass
class History:
    """The project's history in chain order: all of it, or (from :func:`view`) what is asked.

    A history from :func:`read` holds every version. One from :func:`view` starts empty and
    loads the versions a question needs from the ledger's decoded history index, each checked
    against contract storage as it is loaded; its ``events`` stay empty.
    """

    events: list[ChainEvent]
    kinds: dict[str, Kind]
    artefact_kinds: dict[str, str]
    versions: dict[tuple[str, str], VersionHistory]
    admins: list[tuple[ChainEvent, str]]
    #: True once :func:`read` checked every version against contract storage.
    checked: bool = False
    source: _IndexSource | None = field(default=None, repr=False, compare=False)

    def _want(self, keys: Iterable[tuple[str, str]]) -> None:
        if self.source is None:
            return
        missing = [k for k in dict.fromkeys(keys) if k not in self.versions]
        if missing:
            self.versions.update(self.source.load(missing))

    def get(self, artefact: str, digest: str) -> VersionHistory | None:
        """The version of ``artefact`` with content ``digest`` (hex), if recorded."""
        self._want([(artefact, digest)])
        return self.versions.get((artefact, digest))

    def by_cid(self, cid: str) -> VersionHistory | None:
        """The version whose content CID is ``cid``."""
        if self.source is not None:
            self._want(self.source.index.keys(cid=cid))
        return next((v for v in self.versions.values() if v.cid == cid), None)

    def of_artefact(self, artefact: str) -> list[VersionHistory]:
        """An artefact's versions in registration order."""
        if self.source is not None:
            self._want(self.source.index.keys(artefact=artefact))
        return _in_order(v for v in self.versions.values() if v.artefact == artefact)

    def latest(self, artefact: str) -> VersionHistory | None:
        """An artefact's newest version (by registration), None without one."""
        if self.source is not None:
            self._want(self.source.index.keys(artefact=artefact, newest=1))
        found = _in_order(v for v in self.versions.values() if v.artefact == artefact)
        return found[-1] if found else None

    def count(self, artefact: str) -> int:
        """How many versions of ``artefact`` are recorded."""
        if self.source is not None:
            return self.source.index.count(artefact)
        return sum(1 for v in self.versions.values() if v.artefact == artefact)

    def with_digest(self, digest: str) -> list[VersionHistory]:
        """Every version (of any artefact) whose content has ``digest``."""
        if self.source is not None:
            self._want(self.source.index.keys(digest=digest))
        return _in_order(v for v in self.versions.values() if v.digest == digest)

    def by_record(self, record_cid: str) -> list[VersionHistory]:
        """Every version with a step anchored with the record ``record_cid``."""
        if self.source is not None:
            self._want(self.source.index.keys(record_cid=record_cid))
        return _in_order(
            v for v in self.versions.values() if any(s.record_cid == record_cid for s in v.steps)
        )

    def used_by(self, artefact: str, digest: str) -> list[VersionHistory]:
        """The versions registered with this one among their inputs."""
        if self.source is not None:
            from proml_cli.ledger._index import version_key_of

            self._want(
                self.source.index.users(version_key_of(_name32(artefact), _digest32(digest)))
            )
        return _in_order(v for v in self.versions.values() if (artefact, digest) in v.inputs)

    def problems(self) -> list[VersionHistory]:
        """Versions whose events disagree with the contract."""
        return [v for v in self.versions.values() if v.problem]


def _in_order(versions: Iterable[VersionHistory]) -> list[VersionHistory]:
    return sorted(versions, key=lambda v: (v.registered.event.block, v.registered.event.log_index))


def _name32(name: str) -> bytes:
    from proml_cli.ledger._client import name32

    return name32(name)


def _digest32(digest: str) -> bytes:
    from proml_cli.ledger._client import digest32

    return digest32(digest)


class _IndexSource:
    """Loads versions from the ledger's decoded history index, each checked on the way.

    A version whose rows do not recompute the contract's step-chain head (or that the contract
    has but the index lacks) makes the index be rebuilt from the chain once; what still
    disagrees afterwards is the chain's own event record, and is marked (or, ``strict``,
    refused) as :func:`read` does.
    """

    def __init__(self, ledger: Ledger, kinds: dict[str, Kind], *, strict: bool) -> None:
        self.ledger = ledger
        self.index = ledger.history_index()
        self.strict = strict
        self._kinds = kinds
        self._kind_names: tuple[str, ...] | None = None
        self._role_names: tuple[str, ...] | None = None
        self._rebuilt = False

    def _prepare(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self._kind_names is None or self._role_names is None:
            self._kind_names = self.ledger.kind_names()
            self._role_names = self.ledger.role_names()
            for name in self._kind_names:
                spec = self.ledger.kind(name)
                if spec is not None:
                    self._kinds[name] = spec
        return self._kind_names, self._role_names

    def load(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], VersionHistory]:
        from proml_cli.errors import InputError
        from proml_cli.ledger import VersionRef

        refs = []
        vkeys = []
        for artefact, digest in keys:
            try:
                vkeys.append(_version_key(artefact, digest))
            except InputError:
                continue  # not a name or digest the chain could hold: no such version
            refs.append(VersionRef(artefact, digest))
        kind_names, role_names = self._prepare()
        found = build(self.index.events(vkeys), role_names).versions
        versions = {
            (r.artefact, r.digest): found[(r.artefact, r.digest)]
            for r in refs
            if (r.artefact, r.digest) in found
        }
        _check(self.ledger, list(versions.values()), self._kinds, kind_names)
        bad = any(v.problem for v in versions.values())
        absent = [r for r in refs if (r.artefact, r.digest) not in versions]
        if not bad and absent:
            bad = any(self.ledger.version_words(absent))
        if bad and not self._rebuilt:
            self._rebuilt = True
            self.index = self.ledger.history_index(rebuild=True)
            return self.load(keys)
        if self.strict:
            require_consistent(History([], self._kinds, {}, dict(versions), [], checked=True))
        return versions


def _version_key(artefact: str, digest: str) -> bytes:
    from proml_cli.ledger._index import version_key_of

    return version_key_of(_name32(artefact), _digest32(digest))


@lru_cache(maxsize=1024)
def _names(mask: int, role_names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for bit, name in enumerate(role_names) if (mask >> bit) & 1)


def _state(states: Sequence[str], index: object) -> str:
    i = int(index) if isinstance(index, int) else -1
    return states[i] if 0 <= i < len(states) else f"#{index}"


def build(events: Sequence[ChainEvent], role_names: Sequence[str] = ()) -> History:
    """Fold the ledger's events into a :class:`History` (nothing checked: see :func:`read`).

    A kind defined again (allowed while unused) replaces its rules; an artefact defined again
    (a rebind) gives new versions its new kind. Events that name something unknown (only a
    tampered index has them) are kept out of the fold rather than crashing it.
    """
    role_names = tuple(role_names)
    kinds: dict[str, Kind] = {}
    artefact_kinds: dict[str, str] = {}
    versions: dict[tuple[str, str], VersionHistory] = {}
    admins: list[tuple[ChainEvent, str]] = []
    for e in events:
        a = e.args
        if e.name == "KindDefined":
            states = tuple(str(s) for s in a["states"])  # type: ignore[attr-defined]
            kinds[str(a["kind"])] = Kind(
                name=str(a["kind"]),
                states=states,
                initial=_state(states, a["initial"]),
                register=tuple(str(r) for r in a["registerRoles"]),  # type: ignore[attr-defined]
                consumable=tuple(str(s) for s in a.get("consumable", ())),  # type: ignore[attr-defined]
                transitions={},
            )
        elif e.name == "TransitionDefined":
            kind = kinds.get(str(a["kind"]))
            if kind is None:
                continue
            spec = Transition(
                name=str(a["transition"]),
                sources=tuple(str(s) for s in a["sources"]),  # type: ignore[attr-defined]
                target=str(a["target"]),
                roles=tuple(str(r) for r in a["roles"]),  # type: ignore[attr-defined]
            )
            kinds[kind.name] = replace(kind, transitions={**kind.transitions, spec.name: spec})
        elif e.name == "ArtefactDefined":
            artefact_kinds[str(a["artefact"])] = str(a["kind"])
        elif e.name == "AdminTransferred":
            admins.append((e, str(a["admin"])))
        elif e.name == "Registered":
            artefact, digest = str(a["artefact"]), str(a["digest"])
            kind_name = artefact_kinds.get(artefact, "?")
            kind = kinds.get(kind_name)
            inputs = [
                (str(i["artefact"]), str(i["digest"])) if isinstance(i, dict) else ("?", "?")
                for i in a["inputs"]  # type: ignore[attr-defined]
            ]
            version = VersionHistory(artefact, digest, kind_name, str(a["cid"]), inputs)
            initial = kind.initial if kind else "?"
            version.steps.append(
                HistoryStep(
                    e,
                    "register",
                    None,
                    initial,
                    str(a["actor"]),
                    str(a["recordCid"]),
                    _names(int(a.get("roles", 0)), role_names),  # type: ignore[call-overload]
                )
            )
            if (artefact, digest) in versions:
                versions[(artefact, digest)].problem = f"registered twice: {TAMPERED}"
                continue
            versions[(artefact, digest)] = version
        elif e.name == "Transitioned":
            found = versions.get((str(a["artefact"]), str(a["digest"])))
            if found is None:
                continue
            states = kinds[found.kind].states if found.kind in kinds else ()
            found.steps.append(
                HistoryStep(
                    e,
                    str(a["transition"]),
                    _state(states, a["source"]),
                    _state(states, a["target"]),
                    str(a["actor"]),
                    str(a["recordCid"]),
                    _names(int(a.get("roles", 0)), role_names),  # type: ignore[call-overload]
                )
            )
    return History(list(events), kinds, artefact_kinds, versions, admins)


def read(ledger: Ledger) -> History:
    """The history, every version checked against contract storage (see the module docstring).

    Kinds are replaced by their on-chain definitions, each version's kind and step names come
    from storage, and a version whose events do not recompute the contract's step-chain head
    gets a ``problem``. Versions the contract has but whose registration is missing from the
    events cannot be listed here; checks that start from a version (``verify``, ``transition``)
    ask the contract directly and find them.

    The events come from the ledger's decoded history index; when a version disagrees with the
    contract the index is rebuilt from the chain once and read again.
    """
    with _no_cycle_collection():
        history = _read_kept(ledger, ledger.history())
        if history.problems():
            ledger.history_index(rebuild=True)
            history = _read(ledger, ledger.history())
    return history


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cycle collector while a whole history is built (tens of thousands of objects).

    The objects made form no reference cycles; without the pause the collector would walk
    every live object of the process several times over while they are made.
    """
    import gc

    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def view(ledger: Ledger, *, strict: bool = True) -> History:
    """A history that loads (and checks) only the versions asked of it, from the index.

    ``strict``: a version that still disagrees with the contract after one rebuild of the index
    raises (as :func:`require_consistent`); otherwise it is returned with its ``problem``.
    The ledger must stay open while the history is used.
    """
    kinds: dict[str, Kind] = {}
    history = History([], kinds, {}, {}, [], checked=True)
    history.source = _IndexSource(ledger, kinds, strict=strict)
    return history


def version_problem(ledger: Ledger, current: VersionState, kind: Kind) -> str | None:
    """What is wrong with one version's recorded events (None: nothing, or it has none).

    ``current`` is the contract's answer for the version (``versionOf``) and ``kind`` its
    kind as the contract defines it: the same checks as ``verify``'s first are made on the
    version's events from the history index, with no other call to the chain. ``transition``
    and ``run`` ask it before moving or consuming a version the contract accepts, so they
    refuse what the gate would refuse. A version with no events in the index is left to the
    contract, which the caller asked already.
    """
    key = _version_key(current.artefact, current.digest)
    versions = build(ledger.history_index().events([key])).versions
    version = versions.get((current.artefact, current.digest))
    if version is None:
        return None
    if current.state not in kind.states:  # pragma: no cover - the contract's own kind
        return f"the contract says state '{current.state}', not one of its kind's"
    return _problem(version, kind, kind.states.index(current.state), current.steps, current.head)


def _read_kept(ledger: Ledger, events: list[ChainEvent]) -> History:
    """:func:`_read`, reused by a process that keeps results while its inputs are the same.

    A checked history is a function of the events (compared whole; a process that keeps
    results gets the very same event objects while every index row is unchanged, so the
    comparison is by identity first) and of what the contract answers, which is a function
    of its storage root and code hash. Callers only read the history they are given.
    """
    from proml_cli.ledger._storage import remembered_last

    state = ledger.kept_state()
    if state is None:
        return _read(ledger, events)
    kept: list[History] = remembered_last(
        "checked_history", (state, events), lambda: [_read(ledger, events)]
    )
    return kept[0]


def _read(ledger: Ledger, events: Sequence[ChainEvent]) -> History:
    history = build(events, ledger.role_names())
    kind_names = ledger.kind_names()
    kinds = {}
    for name in kind_names:
        spec = ledger.kind(name)
        if spec is not None:
            kinds[name] = spec
    history.kinds = kinds
    _check(ledger, list(history.versions.values()), kinds, kind_names)
    history.checked = True
    return history


def _check(
    ledger: Ledger,
    versions: Sequence[VersionHistory],
    kinds: dict[str, Kind],
    kind_names: Sequence[str],
) -> None:
    """Compare each version with contract storage (one batched call); mark disagreements."""
    from proml_cli.ledger import VersionRef, unpack_word

    refs = [VersionRef(v.artefact, v.digest) for v in versions]
    for version, word in zip(versions, ledger.version_words(refs), strict=True):
        if word == 0:
            version.problem = f"the contract has no such version: {TAMPERED}"
            continue
        index1, state, steps, head = unpack_word(word)
        kind = kinds.get(kind_names[index1 - 1]) if 0 < index1 <= len(kind_names) else None
        if kind is None:  # pragma: no cover - the contract never stores an undefined kind
            version.problem = "the contract names a kind it does not define"
            continue
        version.kind = kind.name
        if version.problem is None:
            version.problem = _problem(version, kind, state, steps, head)
        else:
            _name_steps(version, kind)


def _problem(version: VersionHistory, kind: Kind, state: int, steps: int, head: str) -> str | None:
    """Why ``version``'s events are not what the contract applied (None: they are).

    ``state``, ``steps`` and ``head`` are the contract's (from the version's storage word).
    The events must recompute the step-chain head, follow on from each other and end in the
    contract's state. Names each step's source and target once the head matches.
    """
    found = _head([s.event for s in version.steps], kind.states.index(kind.initial))
    if found != (steps, head):
        return (
            f"the index holds {found[0]} step(s) for it, the contract committed to {steps}"
            + (" with another content" if found[0] == steps else "")
            + f": {TAMPERED}"
        )
    _name_steps(version, kind)
    broken = _discontinuity(version.steps)
    if broken is not None:
        return broken
    if version.state != kind.states[state]:
        # The events recompute the head and follow on: the word's state was set by other means.
        return f"the contract says state '{kind.states[state]}': {REWRITTEN}"
    return None


def _name_steps(version: VersionHistory, kind: Kind) -> None:
    """Each step's source and target state names, from its event's state numbers."""
    for step in version.steps:
        r = step.event.raw
        if step.action == "register":
            step.target = kind.initial
        else:
            step.source = _state(kind.states, r.get("source"))
            step.target = _state(kind.states, r.get("target"))


def _discontinuity(steps: Sequence[HistoryStep]) -> str | None:
    """Where the steps do not follow on from each other (None: each starts where the last ended).

    The contract moves a version only from the state its word holds, so every step it applied
    starts in the state the step before it ended in. The step-chain head commits to each
    step's source and target: steps that agree with the head but not with each other mean the
    version's storage word was rewritten between them, outside the contract (a chain database
    edited to bring a rejected version back, say).
    """
    for number, step in enumerate(steps, start=1):
        if step.action == "register":
            if number != 1:
                return f"step {number} registers it again: {REWRITTEN}"
            continue
        if number == 1:
            return f"step 1 ({step.action}) moves it before it was registered: {REWRITTEN}"
        before = steps[number - 2].target
        if step.source != before:
            return (
                f"step {number} ({step.action}) starts from '{step.source}', but step "
                f"{number - 1} ended in '{before}': {REWRITTEN}"
            )
    return None


def _head(events: Sequence[ChainEvent], initial: int) -> tuple[int, str]:
    """:func:`proml_cli.ledger.step_chain` of these events, remembered by every field it hashes.

    The head is a pure function of the fields below (all of them, as read now from the index):
    a process that keeps results (the node) recomputes it only for events it has not seen.
    """
    from proml_cli.ledger import step_chain
    from proml_cli.ledger._storage import remembered_pure

    fields: tuple[tuple[object, ...], ...] = tuple(
        (
            e.name,
            e.raw.get("actor"),
            e.raw.get("roles"),
            e.raw.get("recordCid"),
            e.raw.get("cid"),
            tuple(e.raw.get("inputs", ())),  # type: ignore[arg-type]
            e.raw.get("transition"),
            e.raw.get("source"),
            e.raw.get("target"),
        )
        for e in events
    )
    found: tuple[int, str] = remembered_pure(
        ("step_chain", initial, fields), lambda: step_chain(events, initial)
    )
    return found


def require_consistent(history: History) -> History:
    """``history`` if every version matches the contract, else a refusal naming them.

    Raises:
        LedgerError: (exit 1) the local index disagrees with the contract.
    """
    bad = history.problems()
    if not bad:
        return history
    named = "; ".join(f"'{v.artefact}' sha256:{v.digest[:12]}: {v.problem}" for v in bad[:5])
    more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
    raise LedgerError(
        f"the ledger's event index disagrees with the contract for {len(bad)} version(s): "
        f"{named}{more}",
        hint="nothing it says about them is used; either the event index (.proml/chain/"
        "chain.sqlite, table logs; rebuilt once already from it: the decoded tables hist_*) or "
        "the chain's state was altered; `proml fsck` compares both with the chain's blocks",
    )


def load(project: Any) -> History:
    """Read the project's ledger (read-only, no key needed), checked against the contract.

    Raises:
        LedgerError: (exit 1) the event index disagrees with the contract (see :func:`read`).
    """
    with project.ledger() as ledger:
        return require_consistent(read(ledger))


def _record_step(store: Any, record_cid: str) -> str | None:
    """The step (or decision) a record describes, for the log; None if it cannot be read.

    The store checks what it reads against the CID, so what a record says (or that its bytes
    are no record) is a function of the CID: a process that keeps results (the node) reads
    each record once. One the store could not give is asked for again next time.
    """
    from proml_cli.ledger._storage import recalled, remember

    question = ("record_step", record_cid)
    known = recalled(question)
    if known is not None:
        said: str | None = known[0]
        return said
    found, settled = _read_record_step(store, record_cid)
    if settled:
        remember(question, (found,))
    return found


def _read_record_step(store: Any, record_cid: str) -> tuple[str | None, bool]:
    """What the record says, and whether that is settled (its bytes were read and checked)."""
    from proml_cli.errors import ProMLError
    from proml_cli.record import parse_record

    try:
        data = store.cat(record_cid)
    except (ProMLError, OSError):
        return None, False
    try:
        document = parse_record(data, cid=record_cid)
    except ProMLError:
        return None, True
    if "step" in document:
        return f"step {document['step']}", True
    return f"decision {document.get('transition')}", True


@dataclass(frozen=True)
class LogEntry:
    """One row of the log: a registration or a transition, as the chain checked it.

    Attributes:
        time: the block's time (ISO 8601, UTC).
        block, log_index, tx_hash: where the chain holds the step's event.
        actor: the address that signed it; ``roles``: the roles that allowed it (sorted).
        artefact, sha256 (``sha256:<hex>``), cid: the version.
        action: ``register`` or the transition's name; ``source`` → ``target`` its states
            (``source`` None for a registration).
        record_cid: the provenance record anchored with it.
        by: the step or decision that record describes (None when it cannot be read).
    """

    time: str
    block: int
    log_index: int
    tx_hash: str
    actor: str
    roles: tuple[str, ...]
    artefact: str
    sha256: str
    cid: str
    action: str
    source: str | None
    target: str
    record_cid: str
    by: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The documented ``log --json`` entry."""
        return {
            "time": self.time,
            "block": self.block,
            "log_index": self.log_index,
            "tx_hash": self.tx_hash,
            "actor": self.actor,
            "roles": list(self.roles),
            "artefact": self.artefact,
            "sha256": self.sha256,
            "cid": self.cid,
            "action": self.action,
            "from": self.source,
            "to": self.target,
            "record_cid": self.record_cid,
            "by": self.by,
        }


@dataclass(frozen=True)
class InputVersion:
    """A version an artefact's version was derived from (one level of lineage).

    ``cid`` and ``state`` are None when no checked registration of it is known.
    """

    artefact: str
    sha256: str
    cid: str | None
    state: str | None

    def to_json(self) -> dict[str, Any]:
        """The ``show --json`` ``inputs`` item."""
        return {
            "artefact": self.artefact,
            "sha256": self.sha256,
            "cid": self.cid,
            "state": self.state,
        }


@dataclass(frozen=True)
class UsedBy:
    """A version registered with this one among its inputs."""

    artefact: str
    sha256: str
    cid: str

    def to_json(self) -> dict[str, Any]:
        """The ``show --json`` ``used_by`` item."""
        return {"artefact": self.artefact, "sha256": self.sha256, "cid": self.cid}


@dataclass(frozen=True)
class StepDetail:
    """One step of a shown version (see :class:`LogEntry` for the fields)."""

    time: str
    block: int
    tx_hash: str
    actor: str
    action: str
    source: str | None
    target: str
    record_cid: str
    roles: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``show --json`` ``steps`` item."""
        return {
            "time": self.time,
            "block": self.block,
            "tx_hash": self.tx_hash,
            "actor": self.actor,
            "action": self.action,
            "from": self.source,
            "to": self.target,
            "record_cid": self.record_cid,
            "roles": list(self.roles),
        }


@dataclass(frozen=True)
class VersionDetail:
    """One version in full: identity, state, lineage (one level), steps, downstream uses.

    ``record`` is the registration's record as a JSON document (None when the store cannot
    give it).
    """

    artefact: str
    kind: str
    sha256: str
    cid: str
    state: str
    inputs: tuple[InputVersion, ...]
    used_by: tuple[UsedBy, ...]
    steps: tuple[StepDetail, ...]
    record: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """The documented ``show --json`` document of a version."""
        return {
            "artefact": self.artefact,
            "kind": self.kind,
            "sha256": self.sha256,
            "cid": self.cid,
            "state": self.state,
            "inputs": [i.to_json() for i in self.inputs],
            "used_by": [u.to_json() for u in self.used_by],
            "steps": [s.to_json() for s in self.steps],
            "record": self.record,
        }


@dataclass(frozen=True)
class RecordDetail:
    """One provenance record, shown by its CID."""

    record_cid: str
    record: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The documented ``show --json`` document of a record."""
        return {"record_cid": self.record_cid, "record": self.record}


@lru_cache(maxsize=4096)
def _time_text(seconds: int) -> str:
    """A block's time as RFC 3339 UTC (many steps share a block: each is converted once)."""
    from proml_cli.record import from_timestamp

    return from_timestamp(seconds)


def log_entry(version: VersionHistory, step: HistoryStep, by: str | None = None) -> LogEntry:
    """The log row of one step of a (checked) version."""
    return LogEntry(
        time=_time_text(step.event.timestamp),
        block=step.event.block,
        log_index=step.event.log_index,
        tx_hash=step.event.tx_hash,
        actor=step.actor,
        roles=tuple(sorted(step.roles)),
        artefact=version.artefact,
        sha256=prefixed(version.digest),
        cid=version.cid,
        action=step.action,
        source=step.source,
        target=step.target,
        record_cid=step.record_cid,
        by=by,
    )


def log_rows(
    history: History, *, artefact: str | None = None, limit: int | None = None, store: Any = None
) -> list[LogEntry]:
    """The log, newest first: one row per registration or transition.

    Records are read (for ``by``) only for the rows returned.
    """
    from proml_cli.ledger._storage import forget_last, remembered_last

    with _no_cycle_collection():
        # A process that keeps results (the node) is given the same checked history while
        # nothing changed (see _read_kept); its rows are a function of it and of the records,
        # which are content-addressed. Rows missing a record's step are not kept: the record
        # may be readable next time.
        rows: list[LogEntry] = remembered_last(
            "log_rows",
            (history, artefact, limit),
            lambda: _log_rows(history, artefact, limit, store),
        )
        if store is None or any(r.by is None for r in rows):
            forget_last("log_rows")
        return rows


def _log_rows(
    history: History, artefact: str | None, limit: int | None, store: Any
) -> list[LogEntry]:
    found = [
        (version, step)
        for version in history.versions.values()
        if artefact is None or version.artefact == artefact
        for step in version.steps
    ]
    found.sort(key=lambda vs: (vs[1].event.block, vs[1].event.log_index), reverse=True)
    if limit:
        found = found[:limit]
    by: dict[str, str | None] = {}  # a record anchors many steps: read it once
    if store is not None:
        for _, s in found:
            if s.record_cid not in by:
                by[s.record_cid] = _record_step(store, s.record_cid)
    return [log_entry(v, s, by.get(s.record_cid)) for v, s in found]


def describe(history: History, version: VersionHistory, store: Any = None) -> VersionDetail:
    """One version in full: identity, state, lineage (one level), steps, downstream uses."""
    from proml_cli.record import from_timestamp

    downstream = tuple(
        UsedBy(v.artefact, prefixed(v.digest), v.cid)
        for v in history.used_by(version.artefact, version.digest)
    )
    inputs = []
    for artefact, digest in version.inputs:
        upstream = history.get(artefact, digest)
        inputs.append(
            InputVersion(
                artefact,
                prefixed(digest),
                upstream.cid if upstream else None,
                upstream.state if upstream else None,
            )
        )
    record = None
    if store is not None:
        from proml_cli.errors import ProMLError
        from proml_cli.record import parse_record

        cid = version.registered.record_cid
        try:
            record = parse_record(store.cat(cid), cid=cid)
        except (ProMLError, OSError):
            record = None
    return VersionDetail(
        artefact=version.artefact,
        kind=version.kind,
        sha256=prefixed(version.digest),
        cid=version.cid,
        state=version.state,
        inputs=tuple(inputs),
        used_by=downstream,
        steps=tuple(
            StepDetail(
                time=from_timestamp(s.event.timestamp),
                block=s.event.block,
                tx_hash=s.event.tx_hash,
                actor=s.actor,
                action=s.action,
                source=s.source,
                target=s.target,
                record_cid=s.record_cid,
                roles=tuple(s.roles),
            )
            for s in version.steps
        ),
        record=record,
    )
