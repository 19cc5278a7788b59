"""Lineage graphs and the HTML report: pictures of the shared history that need no server.

:func:`lineage` gives the project's history (or the part reachable from one version) as a
:class:`Graph`; :func:`to_mermaid`, :func:`to_dot` and :func:`to_json` write it as text
(the same history gives the same bytes); :func:`build_report` writes the self-contained HTML
page (``proml report``). Nothing here imports a chain library until a ledger is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proml_cli.errors import InputError
from proml_cli.graph.model import (
    ActivityNode,
    Direction,
    Edge,
    Graph,
    VersionNode,
    build_graph,
    read_records,
    select,
)
from proml_cli.graph.render import to_document, to_dot, to_json, to_mermaid
from proml_cli.graph.report import Report, build_report

if TYPE_CHECKING:
    from proml_cli.api import Project

__all__ = [
    "FORMATS",
    "ActivityNode",
    "Direction",
    "Edge",
    "Graph",
    "Report",
    "VersionNode",
    "build_graph",
    "build_report",
    "lineage",
    "render",
    "select",
    "to_document",
    "to_dot",
    "to_json",
    "to_mermaid",
]

FORMATS = ("mermaid", "dot", "json")


def lineage(project: Project, spec: str | None = None, direction: Direction = "all") -> Graph:
    """The lineage graph of ``project``: all of it, or what is linked to one version.

    ``spec`` is ``ARTEFACT`` (its latest version) or ``ARTEFACT@VERSION`` (a CID or a sha256
    prefix); ``direction`` keeps what it came from (``upstream``), what came from it
    (``downstream``) or both (``all``).

    Raises:
        InputError: no such artefact or version.
        LedgerError: the event index disagrees with the contract.
    """
    from proml_cli.graph.model import seed_of
    from proml_cli.transfer import resolve_version

    history = project.history()
    cids = [s.record_cid for v in history.versions.values() for s in v.steps]
    graph = build_graph(history, read_records(project.store(), cids))
    if spec is None:
        return graph
    if spec.partition("@")[0] not in project.policy.artefacts:
        from proml_cli.suggest import did_you_mean

        name = spec.partition("@")[0]
        raise InputError(f"unknown artefact '{name}'{did_you_mean(name, project.policy.artefacts)}")
    return select(graph, [seed_of(graph, resolve_version(history, spec))], direction)


def render(graph: Graph, fmt: str) -> str:
    """``graph`` as ``mermaid``, ``dot`` or ``json`` text.

    Raises:
        InputError: an unknown format.
    """
    renderers = {"mermaid": to_mermaid, "dot": to_dot, "json": to_json}
    if fmt not in renderers:
        raise InputError(f"unknown graph format '{fmt}': choose one of {', '.join(FORMATS)}")
    return renderers[fmt](graph)
