"""A layered (Sugiyama-style) layout, left to right, in pure Python: no Graphviz binary.

Per weakly connected component: back edges of a depth-first walk are reversed (cycles cannot
come from the ledger, but the input is not trusted to be acyclic); layers by longest path, with
a source pulled up next to its first successor (a decision sits beside the version it moved);
edges longer than one layer get dummy points; the order inside each layer is improved by
alternating barycentre sweeps; each node is then pulled towards its neighbours' mean height
without overlapping its layer. Components are packed in rows, in the order of their first node,
so a history of thousands of unconnected pipelines stays a readable page rather than one
endless column. Everything is deterministic: the same graph gives the same coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

LAYER_GAP = 110.0
NODE_GAP = 18.0
COMPONENT_GAP = 40.0
ROW_WIDTH = 2400.0
SWEEPS = 4


@dataclass(frozen=True)
class Layout:
    """Node centres, one polyline per edge (same order as given), and the drawing's size."""

    centres: dict[str, tuple[float, float]]
    routes: list[list[tuple[float, float]]]
    width: float
    height: float


def _components(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[list[str]]:
    parent = {n: n for n in nodes}
    order = {n: i for i, n in enumerate(nodes)}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb, key=order.__getitem__)] = min(ra, rb, key=order.__getitem__)

    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(find(n), []).append(n)
    return sorted(groups.values(), key=lambda g: order[g[0]])


def _acyclic(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[bool]:
    """For each edge, whether it is reversed to break a cycle (iterative depth-first walk)."""
    out: dict[str, list[tuple[str, int]]] = {n: [] for n in nodes}
    for i, (a, b) in enumerate(edges):
        out[a].append((b, i))
    reversed_ = [False] * len(edges)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for root in nodes:
        if root in state:
            continue
        stack = [(root, iter(out[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            step = next(it, None)
            if step is None:
                state[node] = 2
                stack.pop()
                continue
            target, index = step
            seen = state.get(target)
            if seen == 1:
                reversed_[index] = True
            elif seen is None:
                state[target] = 1
                stack.append((target, iter(out[target])))
    return reversed_


def _layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layers; a source sits one layer before its nearest successor."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    indegree = dict.fromkeys(nodes, 0)
    for a, b in edges:
        succ[a].append(b)
        indegree[b] += 1
    sources = [n for n in nodes if indegree[n] == 0]
    layer = dict.fromkeys(nodes, 0)
    pending = list(reversed(sources))
    remaining = dict(indegree)
    topo = []
    while pending:
        node = pending.pop()
        topo.append(node)
        for nxt in succ[node]:
            layer[nxt] = max(layer[nxt], layer[node] + 1)
            remaining[nxt] -= 1
            if remaining[nxt] == 0:
                pending.append(nxt)
    for node in sources:
        if succ[node]:
            layer[node] = max(0, min(layer[s] for s in succ[node]) - 1)
    return layer


def layout(
    nodes: Sequence[str],
    sizes: Mapping[str, tuple[float, float]],
    edges: Sequence[tuple[str, str]],
) -> Layout:
    """Lay out ``nodes`` (each ``sizes[id]`` = width, height) with ``edges`` between them."""
    centres: dict[str, tuple[float, float]] = {}
    routes: list[list[tuple[float, float]]] = [[] for _ in edges]
    by_node: dict[str, list[int]] = {}
    for i, (a, _) in enumerate(edges):
        by_node.setdefault(a, []).append(i)
    x0 = y0 = 0.0
    row_height = 0.0
    width = height = 0.0
    for component in _components(nodes, edges):
        members = set(component)
        indices = [i for n in component for i in by_node.get(n, []) if edges[i][1] in members]
        indices.sort()
        local, local_routes, w, h = _place(component, sizes, [edges[i] for i in indices])
        if x0 > 0 and x0 + w > ROW_WIDTH:
            x0, y0 = 0.0, y0 + row_height + COMPONENT_GAP
            row_height = 0.0
        for n, (x, y) in local.items():
            centres[n] = (x + x0, y + y0)
        for i, route in zip(indices, local_routes, strict=True):
            routes[i] = [(x + x0, y + y0) for x, y in route]
        width = max(width, x0 + w)
        height = max(height, y0 + h)
        row_height = max(row_height, h)
        x0 += w + COMPONENT_GAP
    return Layout(centres, routes, width, height)


def _place(
    nodes: Sequence[str],
    sizes: Mapping[str, tuple[float, float]],
    edges: Sequence[tuple[str, str]],
) -> tuple[dict[str, tuple[float, float]], list[list[tuple[float, float]]], float, float]:
    flipped = _acyclic(nodes, edges)
    forward = [(b, a) if f else (a, b) for (a, b), f in zip(edges, flipped, strict=True)]
    layer = _layers(nodes, forward)
    # Dummy points for edges spanning layers: chains of zero-size nodes.
    all_sizes = dict(sizes)
    layer_of = dict(layer)
    chains: list[list[str]] = []
    links: list[tuple[str, str]] = []
    for i, (a, b) in enumerate(forward):
        chain = [a]
        for k in range(layer[a] + 1, layer[b]):
            dummy = f"\0{i}.{k}"
            layer_of[dummy] = k
            all_sizes[dummy] = (0.0, 8.0)
            chain.append(dummy)
        chain.append(b)
        chains.append(chain)
        links.extend(pairwise(chain))
    depth = max(layer_of.values(), default=0) + 1
    rows: list[list[str]] = [[] for _ in range(depth)]
    for n in nodes:
        rows[layer_of[n]].append(n)
    for chain in chains:
        for dummy in chain[1:-1]:
            rows[layer_of[dummy]].append(dummy)
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for a, b in links:
        succs.setdefault(a, []).append(b)
        preds.setdefault(b, []).append(a)

    def sweep(rows: list[list[str]], neighbours: dict[str, list[str]], span: range) -> None:
        for k in span:
            position = {n: i for i, n in enumerate(rows[k - (span.step or 1)])}

            def centre(n: str, i: int, position: dict[str, int] = position) -> float:
                near = [position[m] for m in neighbours.get(n, ()) if m in position]
                return sum(near) / len(near) if near else float(i)

            keyed = [(centre(n, i), i, n) for i, n in enumerate(rows[k])]
            rows[k] = [n for _, _, n in sorted(keyed)]

    for _ in range(SWEEPS):
        sweep(rows, preds, range(1, depth))
        sweep(rows, succs, range(depth - 2, -1, -1))

    # x: layers side by side; y: stacked, then pulled towards the neighbours' mean.
    xs: list[float] = []
    x = 0.0
    for row in rows:
        widest = max((all_sizes[n][0] for n in row), default=0.0)
        xs.append(x + widest / 2)
        x += widest + LAYER_GAP
    y_of: dict[str, float] = {}
    for row in rows:
        top = 0.0
        for n in row:
            h = all_sizes[n][1]
            y_of[n] = top + h / 2
            top += h + NODE_GAP
    for _ in range(SWEEPS):
        for row in rows:
            top = 0.0
            for n in row:
                near = [y_of[m] for m in preds.get(n, []) + succs.get(n, [])]
                wanted = sum(near) / len(near) if near else y_of[n]
                h = all_sizes[n][1]
                y_of[n] = max(wanted, top + h / 2)
                top = y_of[n] + h / 2 + NODE_GAP
    low = min((y_of[n] - all_sizes[n][1] / 2 for n in y_of), default=0.0)
    centres = {n: (xs[layer_of[n]], y_of[n] - low) for n in nodes}
    routes = []
    for chain, was_flipped in zip(chains, flipped, strict=True):
        points = [(xs[layer_of[n]], y_of[n] - low) for n in chain]
        start, end = chain[0], chain[-1]
        points[0] = (points[0][0] + all_sizes[start][0] / 2, points[0][1])
        points[-1] = (points[-1][0] - all_sizes[end][0] / 2, points[-1][1])
        routes.append(list(reversed(points)) if was_flipped else points)
    bottom = max((y_of[n] - low + all_sizes[n][1] / 2 for n in y_of), default=0.0)
    return centres, routes, max(x - LAYER_GAP, 0.0), bottom
