"""History rebuilt from the ledger's events, checked against the contract's storage.

The events come from wherever the backend keeps them: a JSON-RPC node's ``eth_getLogs``, or on
the embedded chain a local index (the ``logs`` table of ``.proml/chain/chain.sqlite``) that is
fast to read but that anyone with write access to ``.proml/`` can edit without a key. So no
answer is taken from the events alone:

* a version's kind, current state, step count and step-chain head are read from contract
  storage (``versionWords`` / ``versionOf``); the version's events must recompute the same head
  (:func:`proml_cli.ledger.step_chain`), otherwise the version is marked ``problem`` (rows were
  added, removed or edited) and nothing about it is believed;
* kinds (states, transitions, roles, consumable states) are read from contract storage;
* the roles that authorised each step are the ones its event carries, which the head covers:
  role grant/revoke events are never replayed to decide anything.

:func:`build` is the plain fold (tests, tools); :func:`read` is the checked one every command uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from proml_cli.digest import prefixed
from proml_cli.errors import LedgerError
from proml_cli.ledger import ChainEvent, Kind, Transition

if TYPE_CHECKING:
    from proml_cli.ledger import Ledger

ZERO = "0x0000000000000000000000000000000000000000"

#: What a disagreement between the local index and the contract means, for messages.
TAMPERED = "rows were added, removed or edited in the local event index"


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
    """The project's whole history, in chain order."""

    events: list[ChainEvent]
    kinds: dict[str, Kind]
    artefact_kinds: dict[str, str]
    versions: dict[tuple[str, str], VersionHistory]
    admins: list[tuple[ChainEvent, str]]
    #: True once :func:`read` checked every version against contract storage.
    checked: bool = False

    def by_cid(self, cid: str) -> VersionHistory | None:
        """The version whose content CID is ``cid``."""
        return next((v for v in self.versions.values() if v.cid == cid), None)

    def of_artefact(self, artefact: str) -> list[VersionHistory]:
        """An artefact's versions in registration order."""
        return [v for v in self.versions.values() if v.artefact == artefact]

    def with_digest(self, digest: str) -> list[VersionHistory]:
        """Every version (of any artefact) whose content has ``digest``."""
        return [v for v in self.versions.values() if v.digest == digest]

    def problems(self) -> list[VersionHistory]:
        """Versions whose events disagree with the contract."""
        return [v for v in self.versions.values() if v.problem]


def _names(mask: int, role_names: Sequence[str]) -> tuple[str, ...]:
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
    """
    from proml_cli.ledger import VersionRef, step_chain, unpack_word

    history = build(ledger.history(), ledger.role_names())
    kind_names = ledger.kind_names()
    kinds = {}
    for name in kind_names:
        spec = ledger.kind(name)
        if spec is not None:
            kinds[name] = spec
    history.kinds = kinds
    refs = [VersionRef(a, d) for a, d in history.versions]
    for ref, word in zip(refs, ledger.version_words(refs), strict=True):
        version = history.versions[(ref.artefact, ref.digest)]
        if word == 0:
            version.problem = f"the contract has no such version: {TAMPERED}"
            continue
        index1, state, steps, head = unpack_word(word)
        kind = kinds.get(kind_names[index1 - 1]) if 0 < index1 <= len(kind_names) else None
        if kind is None:  # pragma: no cover - the contract never stores an undefined kind
            version.problem = "the contract names a kind it does not define"
            continue
        version.kind = kind.name
        found = step_chain([s.event for s in version.steps], kind.states.index(kind.initial))
        if version.problem is None and found != (steps, head):
            version.problem = (
                f"the index holds {found[0]} step(s) for it, the contract committed to {steps}"
                + (" with another content" if found[0] == steps else "")
                + f": {TAMPERED}"
            )
            continue
        for step in version.steps:
            r = step.event.raw
            if step.action == "register":
                step.target = kind.initial
            else:
                step.source = _state(kind.states, r.get("source"))
                step.target = _state(kind.states, r.get("target"))
        if version.problem is None and version.state != kind.states[state]:  # pragma: no cover
            version.problem = f"the contract says state '{kind.states[state]}': {TAMPERED}"
    history.checked = True
    return history


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
        hint="nothing it says about them is used; the chain's storage is intact, the index "
        "(.proml/chain/chain.sqlite, table logs) was altered",
    )


def load(project: Any) -> History:
    """Read the project's ledger (read-only, no key needed), checked against the contract.

    Raises:
        LedgerError: (exit 1) the event index disagrees with the contract (see :func:`read`).
    """
    with project.ledger() as ledger:
        return require_consistent(read(ledger))


def _record_step(store: Any, record_cid: str) -> str | None:
    """The step (or decision) a record describes, for the log; None if it cannot be read."""
    from proml_cli.errors import ProMLError
    from proml_cli.record import parse_record

    try:
        document = parse_record(store.cat(record_cid), cid=record_cid)
    except (ProMLError, OSError):
        return None
    if "step" in document:
        return f"step {document['step']}"
    return f"decision {document.get('transition')}"


def log_rows(
    history: History, *, artefact: str | None = None, limit: int | None = None, store: Any = None
) -> list[dict[str, Any]]:
    """The log, newest first: one row per registration or transition."""
    from proml_cli.record import from_timestamp

    rows = []
    for version in history.versions.values():
        if artefact is not None and version.artefact != artefact:
            continue
        for step in version.steps:
            rows.append(
                {
                    "time": from_timestamp(step.event.timestamp),
                    "block": step.event.block,
                    "log_index": step.event.log_index,
                    "tx_hash": step.event.tx_hash,
                    "actor": step.actor,
                    "roles": sorted(step.roles),
                    "artefact": version.artefact,
                    "sha256": prefixed(version.digest),
                    "cid": version.cid,
                    "action": step.action,
                    "from": step.source,
                    "to": step.target,
                    "record_cid": step.record_cid,
                    "by": _record_step(store, step.record_cid) if store is not None else None,
                }
            )
    rows.sort(key=lambda r: (r["block"], r["log_index"]), reverse=True)
    return rows[:limit] if limit else rows


def describe(history: History, version: VersionHistory, store: Any = None) -> dict[str, Any]:
    """One version in full: identity, state, lineage (one level), steps, downstream uses."""
    from proml_cli.record import from_timestamp

    downstream = [
        {"artefact": v.artefact, "sha256": prefixed(v.digest), "cid": v.cid}
        for v in history.versions.values()
        if (version.artefact, version.digest) in v.inputs
    ]
    inputs = []
    for artefact, digest in version.inputs:
        upstream = history.versions.get((artefact, digest))
        inputs.append(
            {
                "artefact": artefact,
                "sha256": prefixed(digest),
                "cid": upstream.cid if upstream else None,
                "state": upstream.state if upstream else None,
            }
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
    return {
        "artefact": version.artefact,
        "kind": version.kind,
        "sha256": prefixed(version.digest),
        "cid": version.cid,
        "state": version.state,
        "inputs": inputs,
        "used_by": downstream,
        "steps": [
            {
                "time": from_timestamp(s.event.timestamp),
                "block": s.event.block,
                "tx_hash": s.event.tx_hash,
                "actor": s.actor,
                "action": s.action,
                "from": s.source,
                "to": s.target,
                "record_cid": s.record_cid,
                "roles": list(s.roles),
            }
            for s in version.steps
        ],
        "record": record,
    }
