"""`proml show`: one version (by artefact, path or CID) or one record, in full."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import CHAIN_ENV, STORE_ENV, JsonOpt, PolicyOpt, environment

HELP = """Show one version in full: kind, state, inputs (lineage, one level), the versions that
used it, every transition with who and when, and its provenance record. WHAT is an artefact
name (its latest version), a content CID, or a record CID.

\b
Examples:
  proml show fraud-model
  proml show bafkrei... --json

\b
Exit codes: 0 ok; 2 nothing matches WHAT; 3 chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "show",
        help=HELP + environment(*CHAIN_ENV, *STORE_ENV),
        short_help="One version (or record) in full: lineage, users, steps.",
    )(show)


def show(
    what: Annotated[str, typer.Argument(metavar="ARTEFACT|CID", help="What to show.")],
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a version or a record."""
    from proml_cli._cli.project import open_cli_project

    document = open_cli_project(policy).show(what).to_json()
    if as_json:
        output.emit_json(document)
        return
    _render(document)


def _render(doc: dict[str, object]) -> None:
    console = output.stdout_console()
    if "artefact" not in doc:
        console.print(json.dumps(doc["record"], indent=2), markup=False)
        return
    console.print(f"{doc['artefact']} ({doc['kind']}) — state: {doc['state']}", markup=False)
    console.print(f"  cid     {doc['cid']}\n  sha256  {doc['sha256']}", markup=False)
    inputs = doc["inputs"]
    assert isinstance(inputs, list)  # noqa: S101 - shape built above
    for i in inputs:
        console.print(f"  input   {i['artefact']} {i['cid']} ({i['state']})", markup=False)
    used = doc["used_by"]
    assert isinstance(used, list)  # noqa: S101 - shape built above
    for u in used:
        console.print(f"  used by {u['artefact']} {u['cid']}", markup=False)
    steps = doc["steps"]
    assert isinstance(steps, list)  # noqa: S101 - shape built above
    for s in steps:
        console.print(
            f"  {s['time'][:19]}  {s['action']}: {s['from'] or '∅'} → {s['to']}  by {s['actor']}"
            f"  record {s['record_cid']}",
            markup=False,
        )
