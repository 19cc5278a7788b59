"""The self-contained HTML report: lineage, timelines, the gate's verdicts, a filter box.

One file, no request: every style and script is inline, no font or image is referenced, and the
page carries a Content-Security-Policy (``default-src 'none'``) so a browser refuses any request
it would make anyway. The data the page's script renders (the tables are paged, so a history of
10,000 events opens quickly) is one JSON document inside the page. The same history gives the
same bytes: nothing in it depends on when or where it was built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from proml_cli.errors import ProMLError

if TYPE_CHECKING:
    from proml_cli.api import Project
    from proml_cli.content import ContentStore
    from proml_cli.graph.model import Graph, VersionNode
    from proml_cli.history import History, VersionHistory
    from proml_cli.ledger import Ledger
    from proml_cli.policy import Policy
    from proml_cli.record import Record

#: Captured params/metrics files up to this size are shown in the page (larger: by CID only).
INLINE_LIMIT = 16 * 1024
REPORT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Report:
    """The page, and what it holds."""

    html: str
    versions: int
    activities: int
    events: int


def build_report(project: Project) -> Report:
    """The report of ``project``'s whole history (read-only; no key needed).

    Raises:
        LedgerError: the event index disagrees with the contract.
        BackendUnavailable: the chain is unreachable.
    """
    from proml_cli.graph.model import build_graph, read_records
    from proml_cli.history import read, require_consistent

    store = project.store()
    with project.context.ledger() as ledger:
        history = require_consistent(read(ledger))
        cids = [s.record_cid for v in history.versions.values() for s in v.steps]
        records = read_records(store, cids)
        graph = build_graph(history, records)
        verdicts = _verdicts(project.policy, ledger, history, store)
    data = report_data(
        project.policy.project, history, graph, records, verdicts, _blobs(store, records)
    )
    return Report(
        html=render_html(data, graph),
        versions=len(graph.versions),
        activities=len(graph.activities),
        events=sum(len(v.steps) for v in history.versions.values()),
    )


def _verdicts(
    policy: Policy, ledger: Ledger, history: History, store: ContentStore
) -> dict[tuple[str, str], dict[str, Any]]:
    """The gate (checks 1 to 5) on every version's recorded content, as ``proml verify`` runs it."""
    from typing import cast

    from proml_cli.verify import verify_content

    gate = cast("Ledger", _Prefetched(ledger, history))
    found = {}
    for version in history.versions.values():
        label = f"{version.artefact}@{version.cid}"
        try:
            verdict = verify_content(
                path=label,
                sha256=version.digest,
                cid=version.cid,
                cid_version=0 if version.cid.startswith("Qm") else 1,
                artefact=version.artefact,
                ledger=gate,
                history=history,
                store=store,
                policy=policy,
            )
        except ProMLError as exc:  # e.g. the policy defines the kind differently
            found[(version.artefact, version.digest)] = {
                "verified": False,
                "checked": [],
                "reasons": [exc.diagnosis],
            }
            continue
        found[(version.artefact, version.digest)] = {
            "verified": verdict.verified,
            "checked": verdict.checked,
            "reasons": verdict.reasons,
        }
    return found


class _Prefetched:
    """The ledger, with each version's ``version()`` answered from the checked history.

    ``verify`` asks the contract for one version per call (``versionOf``); for thousands of
    versions that was most of a report's time (4,284 calls: 225 of 265 s at 10,000 events).
    :func:`proml_cli.history.read`, on the same ledger a moment before, read every version's
    storage word in a few batched calls and kept a version only when its kind, state, step
    count and step-chain head are the contract's: the same answers. A version it could not
    vouch for (``problem``) is asked of the contract itself.
    """

    def __init__(self, ledger: Ledger, history: History) -> None:
        from proml_cli.ledger import VersionState

        self._ledger = ledger
        self._states: dict[tuple[str, str], VersionState] = {}
        if not history.checked:
            return
        for key, version in history.versions.items():
            if version.problem is None:
                self._states[key] = VersionState(
                    version.artefact,
                    version.digest,
                    version.kind,
                    version.state,
                    steps=len(version.steps),
                )

    def version(self, ref: Any) -> Any:
        """The version's state, as checked against storage; else the contract's answer."""
        key = (ref.artefact, ref.digest)
        return self._states[key] if key in self._states else self._ledger.version(ref)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def _blobs(store: ContentStore, records: dict[str, Record | None]) -> dict[str, str]:
    """The text of every small captured params/metrics file, by CID (each stored once)."""
    from proml_cli.record import RunRecord

    blobs: dict[str, str] = {}
    for record in records.values():
        if not isinstance(record, RunRecord):
            continue
        for entry in (*record.params, *record.metrics):
            cid = entry.get("cid")
            size = entry.get("size")
            if not isinstance(cid, str) or cid in blobs or not isinstance(size, int):
                continue
            if entry.get("type") not in (None, "file") or size > INLINE_LIMIT:
                continue
            try:
                blobs[cid] = store.cat(cid, limit=INLINE_LIMIT).decode("utf-8")
            except (ProMLError, OSError, UnicodeDecodeError):
                continue
    return dict(sorted(blobs.items()))


def _files(record: Record | None, action: str) -> list[dict[str, Any]]:
    from proml_cli.record import RunRecord

    if not isinstance(record, RunRecord):
        return []
    found = []
    for what, entries in (("params", record.params), ("metrics", record.metrics)):
        for entry in entries:
            found.append(
                {
                    "what": what,
                    "step": record.step,
                    "via": action,
                    "path": str(entry.get("path", "")),
                    "cid": entry.get("cid"),
                    "missing": bool(entry.get("missing")),
                }
            )
    for what, values in (
        ("logged params", record.logged_params),
        ("logged metrics", record.logged_metrics),
    ):
        if values:
            found.append({"what": what, "step": record.step, "via": action, "values": values})
    return found


def _version_entry(
    node_id: str,
    version: VersionHistory,
    graph_links: tuple[list[str], list[str]],
    records: dict[str, Record | None],
    verdict: dict[str, Any],
    node: VersionNode,
) -> dict[str, Any]:
    from proml_cli.record import DecisionRecord, RunRecord, from_timestamp

    steps = []
    files: list[dict[str, Any]] = []
    seen_records: set[str] = set()
    for step in version.steps:
        record = records.get(step.record_cid)
        note = record.note if isinstance(record, DecisionRecord) else None
        if isinstance(record, RunRecord):
            by = f"step {record.step}"
        elif isinstance(record, DecisionRecord):
            by = f"decision {record.transition}"
        else:
            by = None
        steps.append(
            {
                "time": from_timestamp(step.event.timestamp),
                "block": step.event.block,
                "log_index": step.event.log_index,
                "tx_hash": step.event.tx_hash,
                "actor": step.actor,
                "roles": sorted(step.roles),
                "action": step.action,
                "from": step.source,
                "to": step.target,
                "record_cid": step.record_cid,
                "by": by,
                "note": note,
            }
        )
        if step.record_cid not in seen_records:
            seen_records.add(step.record_cid)
            files.extend(_files(record, step.action))
    inputs, used_by = graph_links
    return {
        "id": node_id,
        "artefact": version.artefact,
        "number": node.number,
        "kind": version.kind,
        "sha256": f"sha256:{version.digest}",
        "cid": version.cid,
        "state": version.state,
        "category": node.category,
        "inputs": inputs,
        "used_by": used_by,
        "steps": steps,
        "verdict": verdict,
        "files": files,
    }


def report_data(
    project_name: str,
    history: History,
    graph: Graph,
    records: dict[str, Record | None],
    verdicts: dict[tuple[str, str], dict[str, Any]],
    blobs: dict[str, str],
) -> dict[str, Any]:
    """The document the page renders (also useful on its own: every field is plain JSON)."""
    generated_by: dict[str, list[str]] = {}
    used_by_activity: dict[str, list[str]] = {}
    outputs: dict[str, list[str]] = {}
    for edge in graph.edges:
        if edge.relation == "used":
            used_by_activity.setdefault(edge.target, []).append(edge.source)
        else:
            generated_by.setdefault(edge.target, []).append(edge.source)
            outputs.setdefault(edge.source, []).append(edge.target)
    inputs_of: dict[str, list[str]] = {}
    users_of: dict[str, list[str]] = {}
    for node in graph.versions:
        seen: list[str] = []
        for activity in generated_by.get(node.id, []):
            for source in used_by_activity.get(activity, []):
                if source not in seen:
                    seen.append(source)
        inputs_of[node.id] = seen
        for source in seen:
            users_of.setdefault(source, []).append(node.id)
    versions = []
    for node in graph.versions:
        version = history.versions[(node.artefact, node.sha256)]
        versions.append(
            _version_entry(
                node.id,
                version,
                (inputs_of[node.id], users_of.get(node.id, [])),
                records,
                verdicts.get(
                    (node.artefact, node.sha256), {"verified": False, "checked": [], "reasons": []}
                ),
                node,
            )
        )
    artefacts: dict[str, dict[str, Any]] = {}
    for entry in versions:
        artefact = artefacts.setdefault(
            entry["artefact"], {"name": entry["artefact"], "kind": entry["kind"], "versions": []}
        )
        artefact["versions"].append(entry["id"])
        artefact["kind"] = entry["kind"]
    events = [(s["block"], s["log_index"]) for v in versions for s in v["steps"]]
    last = max(events, default=(0, 0))
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "project": project_name,
        "events": len(events),
        "last_block": last[0],
        "artefacts": sorted(artefacts.values(), key=lambda a: a["name"]),
        "versions": versions,
        "activities": [
            {
                **a.to_json(),
                "inputs": used_by_activity.get(a.id, []),
                "outputs": outputs.get(a.id, []),
            }
            for a in graph.activities
        ],
        "blobs": blobs,
    }


def _script_json(document: dict[str, Any]) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_html(data: dict[str, Any], graph: Graph) -> str:
    """The page: header, legend, SVG, details panel, artefact sections, inline data."""
    from proml_cli.graph._template import CSP, SCRIPT, STYLE
    from proml_cli.graph.svg import to_svg

    title = f"proml report: {data['project']}"
    summary = (
        f"{len(data['versions'])} versions of {len(data['artefacts'])} artefacts, "
        f"{data['events']} events, {len(data['activities'])} runs and decisions, "
        f"up to block {data['last_block']}"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><p id="summary">{escape(summary)}</p>'
        '<label class="filter">Filter <input id="filter" type="search" '
        'placeholder="artefact, CID, state, step, account…" autocomplete="off"></label>'
        '<span id="matches"></span></header>'
        '<main><section id="graph-pane"><div class="toolbar">'
        '<button type="button" id="zoom-out" title="zoom out">&minus;</button>'
        '<button type="button" id="zoom-fit" title="fit">fit</button>'
        '<button type="button" id="zoom-in" title="zoom in">+</button>'
        '<span class="legend"><i class="consumable"></i>accepted by the gate'
        '<i class="intermediate"></i>in progress<i class="initial"></i>entry state'
        '<i class="refused"></i>refused<i class="run"></i>run<i class="decision"></i>decision'
        "</span></div>"
        f'<div id="graph">{to_svg(graph)}</div></section>'
        '<aside id="details"><p class="hint">Click a version or a run to see its details.</p>'
        "</aside></main>"
        '<section id="artefacts"><h2>Artefacts</h2>'
        "<noscript><p>The tables below need JavaScript; the graph above does not.</p>"
        "</noscript></section>"
        f'<script type="application/json" id="report-data">{_script_json(data)}</script>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )
