"""Checks of the graph texts by parsers that did not come from proml.

dot: pydot (pyparsing's grammar of the Graphviz language). JSON: the committed JSON Schema,
checked by jsonschema. Mermaid has no parser here (its CLI needs a browser of its own, which
cannot be installed on these machines): :func:`check_mermaid` is a structural check of the
subset proml writes, and docs/report.md carries a rendered example in a ```mermaid block.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

MERMAID_VERSION = re.compile(r'^  (v\d+)\["([^"\n]*)"\]:::(\w+)$')
MERMAID_ACTIVITY = re.compile(r'^  (a\d+)\(\["([^"\n]*)"\]\):::(\w+)$')
MERMAID_EDGE = re.compile(r'^  ([va]\d+) -->(?:\|"([^"\n]*)"\|)? ([va]\d+)$')
MERMAID_CLASSDEF = re.compile(
    r"^  classDef (\w+) fill:#[0-9a-f]{6},stroke:#[0-9a-f]{6},color:#000$"
)
#: Inside a label: text, entity codes (#35;) and line breaks, none of the characters the
#: flowchart grammar reads (quotes, brackets of tags, pipes, backticks, a bare #).
MERMAID_LABEL = re.compile(r"^(?:[^\"<>|`#&]|#\d+;|<br/>)*$")


def check_mermaid(text: str) -> dict[str, Any]:
    """Nodes, edges and classes of a ``proml graph --format mermaid`` text, or AssertionError."""
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "flowchart LR", lines[0]
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str, str | None]] = []
    classes: set[str] = set()
    for line in lines[1:]:
        if m := MERMAID_VERSION.match(line) or MERMAID_ACTIVITY.match(line):
            assert m.group(1) not in nodes, f"node {m.group(1)} defined twice"
            assert MERMAID_LABEL.match(m.group(2)), f"unescaped label: {line}"
            nodes[m.group(1)] = (m.group(2), m.group(3))
        elif m := MERMAID_EDGE.match(line):
            assert m.group(2) is None or MERMAID_LABEL.match(m.group(2)), line
            edges.append((m.group(1), m.group(3), m.group(2)))
        elif m := MERMAID_CLASSDEF.match(line):
            classes.add(m.group(1))
        else:
            raise AssertionError(f"not a line proml's mermaid subset has: {line!r}")
    for source, target, _ in edges:
        assert source in nodes, source
        assert target in nodes, target
    assert {cls for _, cls in nodes.values()} <= classes
    return {"nodes": nodes, "edges": edges, "classes": classes}


def check_dot(text: str) -> Any:
    """The one graph pydot parses from ``text``."""
    import warnings

    with warnings.catch_warnings():
        # pydot 4.0.1 calls pyparsing 3.3's camelCase names, which now warn: not our code.
        warnings.simplefilter("ignore", DeprecationWarning)
        import pydot

        graphs = pydot.graph_from_dot_data(text)
    assert graphs is not None, text[:500]
    assert len(graphs) == 1
    return graphs[0]


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        resources.files("proml_cli.graph").joinpath("graph.schema.json").read_text()
    )
    return loaded


def check_json(text: str) -> dict[str, Any]:
    """The document, validated against the committed schema (with date-time formats)."""
    import jsonschema

    document: dict[str, Any] = json.loads(text)
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(document)
    return document
