"""The lineage graph as text: Mermaid (renders on GitHub), Graphviz dot, and JSON.

Every renderer is a pure function of the graph, which is in chain order, so the same history
gives the same bytes. Labels are escaped for each format: names in a policy and notes are
free text.
"""

from __future__ import annotations

import json
from typing import Any

from proml_cli.graph.model import ActivityNode, Graph, VersionNode

GRAPH_SCHEMA_VERSION = 1

#: Fill colours by category (also the report's), readable in light and dark GitHub themes.
COLOURS: dict[str, tuple[str, str]] = {
    "consumable": ("#c8e6c9", "#2e7d32"),
    "initial": ("#eceff1", "#546e7a"),
    "intermediate": ("#fff3c4", "#b28704"),
    "refused": ("#ffcdd2", "#c62828"),
}
ACTIVITY_COLOURS = {"run": ("#e3f2fd", "#1565c0"), "decision": ("#f3e5f5", "#6a1b9a")}
UNKNOWN_COLOURS = ("#ffffff", "#757575")


def short_cid(cid: str) -> str:
    """A CID shortened for a label (its start and end, as ``proml log`` prints it)."""
    return cid if len(cid) <= 16 else f"{cid[:8]}…{cid[-6:]}"


def version_lines(node: VersionNode) -> list[str]:
    """A version's label: artefact and number, short CID, state."""
    return [f"{node.artefact} #{node.number}", short_cid(node.cid), node.state]


def activity_lines(node: ActivityNode) -> list[str]:
    """An activity's label: what it was and who did it."""
    what = {"run": "run", "decision": "decision", "unknown": "record"}[node.type]
    return [f"{what} {node.name}", f"{node.actor[:10]}…"]


# ------------------------------------------------------------------ mermaid


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label (entity codes for what the parser reads)."""
    out = []
    for char in text:
        if char in '"#<>&|`':
            out.append(f"#{ord(char)};")
        elif char in "\n\r\t":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def to_mermaid(graph: Graph) -> str:
    """A Mermaid ``flowchart LR`` (versions as boxes, activities as stadiums)."""
    lines = ["flowchart LR"]
    for v in graph.versions:
        label = "<br/>".join(_mermaid_text(line) for line in version_lines(v))
        lines.append(f'  {v.id}["{label}"]:::{v.category}')
    for a in graph.activities:
        label = "<br/>".join(_mermaid_text(line) for line in activity_lines(a))
        lines.append(f'  {a.id}(["{label}"]):::{a.type}')
    for e in graph.edges:
        if e.label:
            lines.append(f'  {e.source} -->|"{_mermaid_text(e.label)}"| {e.target}')
        else:
            lines.append(f"  {e.source} --> {e.target}")
    used = {v.category for v in graph.versions} | {a.type for a in graph.activities}
    palette: dict[str, tuple[str, str]] = {
        **COLOURS,
        **ACTIVITY_COLOURS,
        "unknown": UNKNOWN_COLOURS,
    }
    for name, (fill, stroke) in palette.items():
        if name in used:
            lines.append(f"  classDef {name} fill:{fill},stroke:{stroke},color:#000")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ dot


def _dot_text(text: str) -> str:
    """A double-quoted dot string (backslash and quote escaped, no raw newlines)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", " ").replace("\r", " ") + '"'


def to_dot(graph: Graph) -> str:
    """A Graphviz ``digraph`` (left to right), valid input for ``dot``."""
    lines = [
        "digraph proml {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for v in graph.versions:
        fill, stroke = COLOURS[v.category]
        label = "\\n".join(_dot_text(line)[1:-1] for line in version_lines(v))
        lines.append(
            f'  {v.id} [label="{label}", shape=box, style="rounded,filled", '
            f'fillcolor="{fill}", color="{stroke}", tooltip={_dot_text(v.cid)}];'
        )
    for a in graph.activities:
        fill, stroke = ACTIVITY_COLOURS.get(a.type, UNKNOWN_COLOURS)
        label = "\\n".join(_dot_text(line)[1:-1] for line in activity_lines(a))
        lines.append(
            f'  {a.id} [label="{label}", shape=ellipse, style=filled, '
            f'fillcolor="{fill}", color="{stroke}", tooltip={_dot_text(a.record_cid)}];'
        )
    for e in graph.edges:
        if e.label:
            attrs = f"label={_dot_text(e.label)}"
        else:
            attrs = 'style="dashed"' if e.relation == "used" else 'label=""'
        lines.append(f"  {e.source} -> {e.target} [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ json


def to_document(graph: Graph) -> dict[str, Any]:
    """The JSON document (see ``graph.schema.json`` beside this module)."""
    return {
        "schema_version": GRAPH_SCHEMA_VERSION,
        "seeds": list(graph.seeds),
        "direction": graph.direction,
        "nodes": [
            {
                "id": v.id,
                "type": "version",
                "artefact": v.artefact,
                "number": v.number,
                "kind": v.kind,
                "sha256": f"sha256:{v.sha256}",
                "cid": v.cid,
                "state": v.state,
                "category": v.category,
            }
            for v in graph.versions
        ]
        + [a.to_json() for a in graph.activities],
        "edges": [
            {"source": e.source, "target": e.target, "relation": e.relation, "label": e.label}
            for e in graph.edges
        ],
    }


def to_json(graph: Graph) -> str:
    """The JSON document as canonical text (sorted keys, one line, newline-terminated)."""
    return (
        json.dumps(to_document(graph), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        + "\n"
    )
