"""`proml graph`: the lineage as Mermaid, Graphviz dot or JSON text on stdout."""

from __future__ import annotations

from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import PolicyOpt
from proml_cli.errors import InputError

HELP = """Print the lineage graph: every version (artefact, short CID, current state) and the
runs and decisions that made or moved it, inputs → outputs. Without ARTEFACT, the whole
history; with it, the graph around its latest version (or ARTEFACT@VERSION: a CID or a
sha256 prefix): --upstream (what it came from), --downstream (what came from it) or --all
(both, the default). The same history always gives the same text.

\b
mermaid renders on GitHub inside a mermaid code block; dot is Graphviz input
(dot -Tsvg); json is one document with schema_version, nodes and edges.

\b
Examples:
  proml graph
  proml graph model --upstream --format dot | dot -Tsvg > lineage.svg
  proml graph train-set@bafkrei... --downstream --format json

\b
Exit codes: 0 ok; 2 bad usage, unknown artefact or version; 3 chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command("graph", help=HELP, short_help="Lineage graph as Mermaid, Graphviz dot or JSON.")(
        graph
    )


def graph(
    spec: Annotated[
        str | None,
        typer.Argument(
            metavar="[ARTEFACT[@VERSION]]", help="Around this version (default: everything)."
        ),
    ] = None,
    upstream: Annotated[
        bool, typer.Option("--upstream", help="Only what the version came from.")
    ] = False,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Only what came from the version.")
    ] = False,
    both: Annotated[
        bool, typer.Option("--all", help="Both directions (the default with ARTEFACT).")
    ] = False,
    fmt: Annotated[
        str,
        typer.Option("--format", metavar="mermaid|dot|json", help="Output format."),
    ] = "mermaid",
    policy: PolicyOpt = None,
) -> None:
    """Print the lineage graph."""
    from proml_cli import graph as lineage_graph
    from proml_cli._cli.project import open_cli_project

    if fmt not in lineage_graph.FORMATS:
        raise InputError(
            f"--format {fmt}: choose one of {', '.join(lineage_graph.FORMATS)}",
            hint="proml graph --format dot",
        )
    chosen = [
        name
        for name, on in (("--upstream", upstream), ("--downstream", downstream), ("--all", both))
        if on
    ]
    if len(chosen) > 1:
        raise InputError(f"{' and '.join(chosen)} exclude each other: choose one")
    if chosen and spec is None:
        raise InputError(f"{chosen[0]} needs an ARTEFACT[@VERSION] to start from")
    direction: lineage_graph.Direction = (
        "upstream" if upstream else "downstream" if downstream else "all"
    )
    found = lineage_graph.lineage(open_cli_project(policy), spec, direction)
    text = lineage_graph.render(found, fmt)
    output.emit_line(text.rstrip("\n"))
