"""The lineage graph: versions and the activities (runs, decisions) that made and moved them.

A node is either a *version* (one content of one artefact, with its current state) or an
*activity*: one transaction's record, a step's run or a human decision. Edges go from inputs to
outputs: ``used`` (a version an activity read), ``generated`` (a version an activity
registered) and ``transitioned`` (a version whose state an activity changed, labelled
``name: from → to``). Everything is ordered by the chain (a version by its registration, an
activity by its first event), so the same history always gives the same graph, node ids
included (``v1``, ``v2`` ... and ``a1``, ``a2`` ... over the whole history, whatever is selected).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from proml_cli.digest import bare
from proml_cli.errors import InputError, ProMLError

if TYPE_CHECKING:
    from proml_cli.content import ContentStore
    from proml_cli.history import History, VersionHistory
    from proml_cli.ledger import Kind
    from proml_cli.record import Record

Direction = Literal["upstream", "downstream", "all"]
Relation = Literal["used", "generated", "transitioned"]
#: How a state is drawn: accepted by the gate, the kind's entry state, a refusal, or between.
Category = Literal["consumable", "initial", "refused", "intermediate"]

#: State names that read as a refusal, whatever the kind calls them.
_REFUSED = re.compile(r"reject|revok|fail|deprecat|retir|quarantin|block|invalid", re.IGNORECASE)


@dataclass(frozen=True)
class VersionNode:
    """One version: ``number`` counts the artefact's versions from 1 in registration order."""

    id: str
    artefact: str
    number: int
    kind: str
    sha256: str
    cid: str
    state: str
    category: Category


@dataclass(frozen=True)
class ActivityNode:
    """One transaction's record: a step's run, a human decision, or an unreadable record.

    ``name`` is the step (a run) or the transition (a decision); ``block`` and ``time`` are
    those of its first event.
    """

    id: str
    type: Literal["run", "decision", "unknown"]
    name: str
    record_cid: str
    tx_hash: str
    actor: str
    block: int
    time: str

    def to_json(self) -> dict[str, Any]:
        """Its fields as a JSON object (the graph's JSON and the report's data share it)."""
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "record_cid": self.record_cid,
            "tx_hash": self.tx_hash,
            "actor": self.actor,
            "block": self.block,
            "time": self.time,
        }


@dataclass(frozen=True)
class Edge:
    """From an input to an output; ``label`` is empty for ``used``."""

    source: str
    target: str
    relation: Relation
    label: str


@dataclass(frozen=True)
class Graph:
    """Versions, activities and edges, each in chain order."""

    versions: tuple[VersionNode, ...]
    activities: tuple[ActivityNode, ...]
    edges: tuple[Edge, ...]
    #: The node ids the selection started from (empty: the whole history).
    seeds: tuple[str, ...] = ()
    direction: Direction | None = None

    def node_ids(self) -> list[str]:
        """Every node id: versions first, then activities."""
        return [v.id for v in self.versions] + [a.id for a in self.activities]


def category(state: str, kind: Kind | None) -> Category:
    """How ``state`` is drawn for a version of ``kind``."""
    if kind is not None and state in kind.consumable:
        return "consumable"
    if _REFUSED.search(state):
        return "refused"
    if kind is not None and state == kind.initial:
        return "initial"
    return "intermediate"


def read_records(store: ContentStore | None, cids: Iterable[str]) -> dict[str, Record | None]:
    """Each record parsed into its model; None for one the store cannot give or parse."""
    from proml_cli.record import read_record

    found: dict[str, Record | None] = {}
    for cid in cids:
        if cid in found:
            continue
        if store is None:
            found[cid] = None
            continue
        try:
            found[cid] = read_record(store.cat(cid), cid=cid)
        except (ProMLError, OSError):
            found[cid] = None
    return found


def build_graph(history: History, records: Mapping[str, Record | None]) -> Graph:
    """The whole history as a graph (``records``: from :func:`read_records`)."""
    from proml_cli.record import RunRecord, from_timestamp

    version_ids: dict[tuple[str, str], str] = {}
    versions: list[VersionNode] = []
    numbers: dict[str, int] = {}
    ordered = sorted(
        history.versions.values(),
        key=lambda v: (v.registered.event.block, v.registered.event.log_index),
    )
    for version in ordered:
        numbers[version.artefact] = numbers.get(version.artefact, 0) + 1
        node_id = f"v{len(versions) + 1}"
        version_ids[(version.artefact, version.digest)] = node_id
        versions.append(
            VersionNode(
                id=node_id,
                artefact=version.artefact,
                number=numbers[version.artefact],
                kind=version.kind,
                sha256=version.digest,
                cid=version.cid,
                state=version.state,
                category=category(version.state, history.kinds.get(version.kind)),
            )
        )

    # One activity per (transaction, record): every step it made, in chain order.
    steps = sorted(
        ((step, version) for version in ordered for step in version.steps),
        key=lambda pair: (pair[0].event.block, pair[0].event.log_index),
    )
    activity_ids: dict[tuple[str, str], str] = {}
    activities: list[ActivityNode] = []
    touched: dict[str, set[str]] = {}
    edges: dict[tuple[str, str, str], Edge] = {}
    inputs: dict[str, list[str]] = {}
    for step, version in steps:
        key = (step.event.tx_hash, step.record_cid)
        target = version_ids[(version.artefact, version.digest)]
        if key not in activity_ids:
            record = records.get(step.record_cid)
            if record is None:
                kind_of: Literal["run", "decision", "unknown"] = "unknown"
                name = step.action
            elif isinstance(record, RunRecord):
                kind_of, name = "run", record.step
            else:
                kind_of, name = "decision", record.transition
            activity_ids[key] = f"a{len(activities) + 1}"
            activities.append(
                ActivityNode(
                    id=activity_ids[key],
                    type=kind_of,
                    name=name,
                    record_cid=step.record_cid,
                    tx_hash=step.event.tx_hash,
                    actor=step.actor,
                    block=step.event.block,
                    time=from_timestamp(step.event.timestamp),
                )
            )
            record_inputs: list[tuple[str, str]] = []
            if isinstance(record, RunRecord):
                record_inputs = [
                    (m.artefact, bare(m.sha256)) for m in record.materials if m.artefact
                ]
            inputs[activity_ids[key]] = [
                version_ids[ref] for ref in record_inputs if ref in version_ids
            ]
        activity = activity_ids[key]
        touched.setdefault(activity, set()).add(target)
        if step.action == "register":
            edges[(activity, target, "generated")] = Edge(activity, target, "generated", "")
            inputs[activity].extend(
                version_ids[ref] for ref in version.inputs if ref in version_ids
            )
        else:
            label = f"{step.action}: {step.source} → {step.target}"
            previous = edges.get((activity, target, "transitioned"))
            if previous is not None:  # two moves of one version in one transaction
                label = f"{previous.label}; {label}"
            edges[(activity, target, "transitioned")] = Edge(
                activity, target, "transitioned", label
            )
    for activity, sources in inputs.items():
        for source in sources:
            # A run that moves a version it read (evaluate: the model) draws the move only.
            if source not in touched.get(activity, set()):
                edges[(source, activity, "used")] = Edge(source, activity, "used", "")
    order = {
        node: i for i, node in enumerate([v.id for v in versions] + [a.id for a in activities])
    }
    ordered_edges = sorted(
        edges.values(), key=lambda e: (order[e.source], order[e.target], e.relation)
    )
    return Graph(tuple(versions), tuple(activities), tuple(ordered_edges))


def select(graph: Graph, seeds: Iterable[str], direction: Direction) -> Graph:
    """The part of ``graph`` reachable from ``seeds`` against (upstream) or along the edges.

    Every activity that moved a kept version is kept too (its timeline), without its inputs.
    """
    seeds = tuple(seeds)
    forward: dict[str, list[str]] = {}
    backward: dict[str, list[str]] = {}
    for edge in graph.edges:
        forward.setdefault(edge.source, []).append(edge.target)
        backward.setdefault(edge.target, []).append(edge.source)
    keep = set(seeds)
    walks = []
    if direction in ("upstream", "all"):
        walks.append(backward)
    if direction in ("downstream", "all"):
        walks.append(forward)
    for links in walks:
        pending = list(seeds)
        seen = set(seeds)
        while pending:
            node = pending.pop()
            for other in links.get(node, ()):
                if other not in seen:
                    seen.add(other)
                    pending.append(other)
        keep |= seen
    # A kept version keeps its own timeline: the runs and decisions that moved it.
    keep |= {e.source for e in graph.edges if e.relation == "transitioned" and e.target in keep}
    return Graph(
        tuple(v for v in graph.versions if v.id in keep),
        tuple(a for a in graph.activities if a.id in keep),
        tuple(e for e in graph.edges if e.source in keep and e.target in keep),
        seeds=seeds,
        direction=direction,
    )


def seed_of(graph: Graph, version: VersionHistory) -> str:
    """The node id of ``version``.

    Raises:
        InputError: the version is not in the graph.
    """
    for node in graph.versions:
        if node.artefact == version.artefact and node.sha256 == version.digest:
            return node.id
    raise InputError(f"'{version.artefact}' sha256:{version.digest[:12]} is not in the history")
