"""The graph model, its text formats and the layout, on a history folded from hand-made events.

No chain here: :func:`proml_cli.history.build` folds events the tests write, and the records
are models built in memory. The integration tests run the same code on the real example.
"""

from __future__ import annotations

import pytest
from _checks import check_dot, check_json, check_mermaid
from _graph_history import NASTY, Chain

from proml_cli.graph import build_graph, select, to_dot, to_json, to_mermaid
from proml_cli.graph.layout import layout
from proml_cli.graph.svg import to_svg


@pytest.fixture
def chain() -> Chain:
    """data -> (validate) -> model trained from it, evaluated with a test set, a NASTY artefact."""
    c = Chain()
    c.kind("dataset", ["received", "validated"], {"validate": ("received", "validated")})
    c.kind("model", ["trained", "evaluated"], {"evaluate": ("trained", "evaluated")})
    for name, kind in (
        ("data", "dataset"),
        ("test", "dataset"),
        ("model", "model"),
        (NASTY, "dataset"),
    ):
        c.emit("ArtefactDefined", artefact=name, kind=kind)
    c.run("prepare", [("data", "d1"), ("test", "t1")])
    c.decide("data", "d1", "validate", 'ok "quoted" <note>')
    c.run("train", [("model", "m1")], materials=[("data", "d1")])
    c.run(
        "evaluate",
        [],
        materials=[("model", "m1"), ("test", "t1")],
        moves=[("model", "m1", "evaluate")],
    )
    c.run("other", [(NASTY, "x1")])
    return c


def test_versions_and_activities_in_chain_order(chain: Chain) -> None:
    graph = build_graph(chain.history(), chain.records)

    assert [(v.id, v.artefact, v.number, v.state, v.category) for v in graph.versions] == [
        ("v1", "data", 1, "validated", "consumable"),
        ("v2", "test", 1, "received", "initial"),
        ("v3", "model", 1, "evaluated", "consumable"),
        ("v4", NASTY, 1, "received", "initial"),
    ]
    assert [(a.id, a.type, a.name) for a in graph.activities] == [
        ("a1", "run", "prepare"),
        ("a2", "decision", "validate"),
        ("a3", "run", "train"),
        ("a4", "run", "evaluate"),
        ("a5", "run", "other"),
    ]
    edges = {(e.source, e.target, e.relation, e.label) for e in graph.edges}
    # evaluate read the model and the test set, but the model is what it moved: no cycle.
    assert edges == {
        ("a1", "v1", "generated", ""),
        ("a1", "v2", "generated", ""),
        ("a2", "v1", "transitioned", "validate: received → validated"),
        ("v1", "a3", "used", ""),
        ("a3", "v3", "generated", ""),
        ("v2", "a4", "used", ""),
        ("a4", "v3", "transitioned", "evaluate: trained → evaluated"),
        ("a5", "v4", "generated", ""),
    }


def test_unreadable_record_is_an_unknown_activity(chain: Chain) -> None:
    records = dict.fromkeys(chain.records)  # the store gave none of them
    graph = build_graph(chain.history(), records)

    assert {a.type for a in graph.activities} == {"unknown"}
    assert graph.activities[0].name == "register"


def test_selection_upstream_downstream_all(chain: Chain) -> None:
    graph = build_graph(chain.history(), chain.records)

    up = select(graph, ["v3"], "upstream")
    assert [v.id for v in up.versions] == ["v1", "v2", "v3"]
    assert [a.name for a in up.activities] == ["prepare", "validate", "train", "evaluate"]
    down = select(graph, ["v1"], "downstream")
    assert [v.id for v in down.versions] == ["v1", "v3"]
    assert [a.name for a in down.activities] == ["validate", "train", "evaluate"]
    both = select(graph, ["v1"], "all")
    assert {v.id for v in both.versions} == {"v1", "v3"}
    assert {a.name for a in both.activities} == {"prepare", "validate", "train", "evaluate"}
    assert ("v2", "a4") not in {(e.source, e.target) for e in both.edges}  # evaluate's input
    assert all(e.source in both.node_ids() and e.target in both.node_ids() for e in both.edges)
    assert "v4" not in select(graph, ["v2"], "all").node_ids()


def test_text_formats_parse_and_escape(chain: Chain) -> None:
    graph = build_graph(chain.history(), chain.records)

    mermaid = check_mermaid(to_mermaid(graph))
    assert set(mermaid["nodes"]) == set(graph.node_ids())
    assert len(mermaid["edges"]) == len(graph.edges)
    assert "#34;" in mermaid["nodes"]["v4"][0]  # the quote, as an entity

    dot = check_dot(to_dot(graph))
    names = {n.get_name() for n in dot.get_nodes()} - {"node", "edge"}
    assert names == set(graph.node_ids())
    assert len(dot.get_edges()) == len(graph.edges)
    label = dot.get_node("v4")[0].get_label()
    assert NASTY.replace("\\", "\\\\").replace('"', '\\"') in label

    document = check_json(to_json(graph))
    assert [n["id"] for n in document["nodes"]] == graph.node_ids()
    assert document["nodes"][3]["artefact"] == NASTY


def test_same_history_same_bytes(chain: Chain) -> None:
    first = build_graph(chain.history(), chain.records)
    again = build_graph(chain.history(), chain.records)

    for render in (to_mermaid, to_dot, to_json, to_svg):
        assert render(first) == render(again)


def test_layout_is_layered_and_does_not_overlap(chain: Chain) -> None:
    graph = build_graph(chain.history(), chain.records)
    sizes = dict.fromkeys(graph.node_ids(), (100.0, 40.0))
    placed = layout(graph.node_ids(), sizes, [(e.source, e.target) for e in graph.edges])

    for e, route in zip(graph.edges, placed.routes, strict=True):
        # Left to right: every edge ends to the right of where it starts.
        assert placed.centres[e.source][0] < placed.centres[e.target][0], e
        assert route[0][0] < route[-1][0]
    boxes = [(x - 50, y - 20, x + 50, y + 20) for x, y in placed.centres.values()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    assert all(
        0 <= x <= placed.width and 0 <= y <= placed.height for x, y in placed.centres.values()
    )


def test_layout_survives_a_cycle_and_packs_components() -> None:
    nodes = ["a", "b", "c", "x", "y"]
    sizes = dict.fromkeys(nodes, (50.0, 20.0))
    placed = layout(nodes, sizes, [("a", "b"), ("b", "c"), ("c", "a"), ("x", "y")])

    assert set(placed.centres) == set(nodes)
    assert len(placed.routes) == 4
    assert all(len(r) >= 2 for r in placed.routes)
    # The second component sits beside the first, not on top of it.
    assert min(placed.centres["x"][0], placed.centres["y"][0]) > max(
        placed.centres[n][0] for n in "abc"
    )


def test_svg_has_one_group_per_node_and_escapes_text(chain: Chain) -> None:
    graph = build_graph(chain.history(), chain.records)
    svg = to_svg(graph)

    assert svg.count('class="node version') == len(graph.versions)
    assert svg.count('class="node activity') == len(graph.activities)
    assert "<b>" not in svg
    assert "we&quot;ird|&lt;b&gt;#1`&amp;" in svg
    import xml.etree.ElementTree as ET

    ET.fromstring(svg)  # noqa: S314 - well-formed XML; our own output, not untrusted input
