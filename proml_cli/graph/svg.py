"""The lineage graph drawn as SVG, laid out by :mod:`proml_cli.graph.layout`.

Versions are rounded boxes filled by their state's category, activities are pills; every node
is a ``<g class="node ..." data-id="...">`` the report's script can select and filter. Text is
escaped: artefact names, steps and notes are free text from a policy or a person.
"""

from __future__ import annotations

from html import escape

from proml_cli.graph.layout import layout
from proml_cli.graph.model import Graph
from proml_cli.graph.render import (
    ACTIVITY_COLOURS,
    COLOURS,
    UNKNOWN_COLOURS,
    activity_lines,
    version_lines,
)

VERSION_SIZE = (180.0, 58.0)
ACTIVITY_SIZE = (150.0, 36.0)
MARGIN = 20.0


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(lines: list[str], height: float, *, bold_first: bool) -> str:
    step = 14.0
    first = -height / 2 + (height - step * len(lines)) / 2 + 11
    spans = []
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if bold_first and i == 0 else ""
        spans.append(f'<tspan x="0" y="{_fmt(first + i * step)}"{weight}>{escape(line)}</tspan>')
    return f'<text text-anchor="middle">{"".join(spans)}</text>'


def to_svg(graph: Graph) -> str:
    """The whole graph as one ``<svg>`` element (no external reference of any kind)."""
    sizes = {v.id: VERSION_SIZE for v in graph.versions}
    sizes.update({a.id: ACTIVITY_SIZE for a in graph.activities})
    edges = [(e.source, e.target) for e in graph.edges]
    placed = layout(graph.node_ids(), sizes, edges)
    width = placed.width + 2 * MARGIN
    height = placed.height + 2 * MARGIN
    out = [
        f'<svg id="lineage" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_fmt(width)} '
        f'{_fmt(height)}" width="{_fmt(width)}" height="{_fmt(height)}" '
        f'data-width="{_fmt(width)}" data-height="{_fmt(height)}" role="img" '
        'aria-label="lineage graph" font-family="sans-serif" font-size="11">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L8,4L0,8z" fill="#607d8b"/>'
        "</marker></defs>",
        '<g class="edges" fill="none" stroke="#90a4ae" stroke-width="1.3">',
    ]
    labels = []
    for edge, route in zip(graph.edges, placed.routes, strict=True):
        points = [(x + MARGIN, y + MARGIN) for x, y in route]
        d = "M" + "L".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points)
        dash = ' stroke-dasharray="4 3"' if edge.relation == "used" else ""
        out.append(
            f'<path class="edge {edge.relation}" data-source="{edge.source}" '
            f'data-target="{edge.target}" d="{d}"{dash} marker-end="url(#arrow)">'
            f"<title>{escape(edge.label or 'used')}</title></path>"
        )
        if edge.label:
            (x1, y1), (x2, y2) = points[-2], points[-1]
            labels.append(
                f'<text class="edge-label" data-source="{edge.source}" '
                f'data-target="{edge.target}" x="{_fmt((x1 + x2) / 2)}" '
                f'y="{_fmt((y1 + y2) / 2 - 4)}" text-anchor="middle" font-size="9" '
                f'fill="#37474f">{escape(edge.label.split(": ", 1)[-1])}</text>'
            )
    out.append("</g>")
    out.append('<g class="edge-labels">' + "".join(labels) + "</g>")
    out.append('<g class="nodes">')
    w, h = VERSION_SIZE
    for v in graph.versions:
        x, y = placed.centres[v.id]
        fill, stroke = COLOURS[v.category]
        title = f"{v.artefact} #{v.number} ({v.kind}) {v.state}\n{v.cid}\nsha256:{v.sha256}"
        out.append(
            f'<g class="node version {v.category}" id="node-{v.id}" data-id="{v.id}" '
            f'tabindex="0" transform="translate({_fmt(x + MARGIN)},{_fmt(y + MARGIN)})">'
            f"<title>{escape(title)}</title>"
            f'<rect x="{_fmt(-w / 2)}" y="{_fmt(-h / 2)}" width="{_fmt(w)}" height="{_fmt(h)}" '
            f'rx="7" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
            f"{_text(version_lines(v), h, bold_first=True)}</g>"
        )
    w, h = ACTIVITY_SIZE
    for a in graph.activities:
        x, y = placed.centres[a.id]
        fill, stroke = ACTIVITY_COLOURS.get(a.type, UNKNOWN_COLOURS)
        title = f"{a.type} {a.name} by {a.actor}\nrecord {a.record_cid}\ntx {a.tx_hash}"
        out.append(
            f'<g class="node activity {a.type}" id="node-{a.id}" data-id="{a.id}" '
            f'tabindex="0" transform="translate({_fmt(x + MARGIN)},{_fmt(y + MARGIN)})">'
            f"<title>{escape(title)}</title>"
            f'<rect x="{_fmt(-w / 2)}" y="{_fmt(-h / 2)}" width="{_fmt(w)}" height="{_fmt(h)}" '
            f'rx="{_fmt(h / 2)}" fill="{fill}" stroke="{stroke}" stroke-width="1.2"/>'
            f"{_text(activity_lines(a), h, bold_first=False)}</g>"
        )
    out.append("</g></svg>")
    return "".join(out)
