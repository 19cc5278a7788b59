"""History rebuilt from the ledger's events alone: kinds, role grants, versions and lineage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
