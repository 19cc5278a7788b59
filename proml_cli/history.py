"""History rebuilt from the ledger's events alone: kinds, role grants, versions and lineage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from proml_cli.ledger import ChainEvent, KindSpec, TransitionSpec

ZERO = "0x0000000000000000000000000000000000000000"


@dataclass
class Step:
    """One state change of a version: its registration or a transition."""

    event: ChainEvent
    action: str  # "register" or the transition's name
    source: str | None
    target: str
    actor: str
    record_cid: str


@dataclass
class VersionHistory:
    """Everything the chain says about one version."""

    artefact: str
    digest: str
    kind: str
    cid: str
    inputs: list[tuple[str, str]]
    steps: list[Step] = field(default_factory=list)

    @property
    def state(self) -> str:
        """The state after the last step."""
        return self.steps[-1].target

    @property
    def registered(self) -> Step:
        """The registration step."""
        return self.steps[0]


@dataclass
class History:
    """The project's whole history, in chain order."""

    events: list[ChainEvent]
    kinds: dict[str, KindSpec]
    artefact_kinds: dict[str, str]
    versions: dict[tuple[str, str], VersionHistory]
    admins: list[tuple[ChainEvent, str]]

    def roles_at(self, account: str, event: ChainEvent) -> set[str]:
        """The roles ``account`` held just before ``event`` (replaying grants and revokes)."""
        held: set[str] = set()
        position = (event.block, event.log_index)
        for e in self.events:
            if (e.block, e.log_index) >= position:
                break
            if e.name in ("RoleGranted", "RoleRevoked") and _same(str(e.args["account"]), account):
                role = str(e.args["role"])
                if e.name == "RoleGranted":
                    held.add(role)
                else:
                    held.discard(role)
        return held

    def by_cid(self, cid: str) -> VersionHistory | None:
        """The version whose content CID is ``cid``."""
        return next((v for v in self.versions.values() if v.cid == cid), None)

    def of_artefact(self, artefact: str) -> list[VersionHistory]:
        """An artefact's versions in registration order."""
        return [v for v in self.versions.values() if v.artefact == artefact]

    def with_digest(self, digest: str) -> list[VersionHistory]:
        """Every version (of any artefact) whose content has ``digest``."""
        return [v for v in self.versions.values() if v.digest == digest]


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def build(events: Sequence[ChainEvent]) -> History:
    """Fold the ledger's events into a :class:`History`."""
    kinds: dict[str, KindSpec] = {}
    artefact_kinds: dict[str, str] = {}
    versions: dict[tuple[str, str], VersionHistory] = {}
    admins: list[tuple[ChainEvent, str]] = []
    for e in events:
        a = e.args
        if e.name == "KindDefined":
            states = tuple(str(s) for s in a["states"])  # type: ignore[attr-defined]
            kinds[str(a["kind"])] = KindSpec(
                name=str(a["kind"]),
                states=states,
                initial=states[int(a["initial"])],  # type: ignore[call-overload]
                register_roles=tuple(str(r) for r in a["registerRoles"]),  # type: ignore[attr-defined]
                transitions=(),
            )
        elif e.name == "TransitionDefined":
            kind = kinds[str(a["kind"])]
            spec = TransitionSpec(
                name=str(a["transition"]),
                sources=tuple(str(s) for s in a["sources"]),  # type: ignore[attr-defined]
                target=str(a["target"]),
                roles=tuple(str(r) for r in a["roles"]),  # type: ignore[attr-defined]
            )
            kinds[kind.name] = KindSpec(
                kind.name, kind.states, kind.initial, kind.register_roles, (*kind.transitions, spec)
            )
        elif e.name == "ArtefactDefined":
            artefact_kinds[str(a["artefact"])] = str(a["kind"])
        elif e.name == "AdminTransferred":
            admins.append((e, str(a["admin"])))
        elif e.name == "Registered":
            artefact, digest = str(a["artefact"]), str(a["digest"])
            kind = kinds[artefact_kinds[artefact]]
            inputs = [
                (str(i["artefact"]), str(i["digest"])) if isinstance(i, dict) else ("?", "?")
                for i in a["inputs"]  # type: ignore[attr-defined]
            ]
            version = VersionHistory(artefact, digest, kind.name, str(a["cid"]), inputs)
            version.steps.append(
                Step(e, "register", None, kind.initial, str(a["actor"]), str(a["recordCid"]))
            )
            versions[(artefact, digest)] = version
        elif e.name == "Transitioned":
            version = versions[(str(a["artefact"]), str(a["digest"]))]
            states = kinds[version.kind].states
            version.steps.append(
                Step(
                    e,
                    str(a["transition"]),
                    states[int(a["source"])],  # type: ignore[call-overload]
                    states[int(a["target"])],  # type: ignore[call-overload]
                    str(a["actor"]),
                    str(a["recordCid"]),
                )
            )
    return History(list(events), kinds, artefact_kinds, versions, admins)


def load(project: Any) -> History:
    """Read the project's ledger (read-only, no key needed) and fold its events."""
    with project.ledger() as ledger:
        return build(ledger.history())


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
        kind = history.kinds[version.kind]
        allowed = {t.name: t.roles for t in kind.transitions}
        for step in version.steps:
            roles = kind.register_roles if step.action == "register" else allowed[step.action]
            held = history.roles_at(step.actor, step.event)
            rows.append(
                {
                    "time": from_timestamp(step.event.timestamp),
                    "block": step.event.block,
                    "log_index": step.event.log_index,
                    "tx_hash": step.event.tx_hash,
                    "actor": step.actor,
                    "roles": sorted(held.intersection(roles)),
                    "artefact": version.artefact,
                    "sha256": f"sha256:{version.digest}",
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
        {"artefact": v.artefact, "sha256": f"sha256:{v.digest}", "cid": v.cid}
        for v in history.versions.values()
        if (version.artefact, version.digest) in v.inputs
    ]
    inputs = []
    for artefact, digest in version.inputs:
        upstream = history.versions.get((artefact, digest))
        inputs.append(
            {
                "artefact": artefact,
                "sha256": f"sha256:{digest}",
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
        "sha256": f"sha256:{version.digest}",
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
            }
            for s in version.steps
        ],
        "record": record,
    }
