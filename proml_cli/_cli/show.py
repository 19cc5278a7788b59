"""`proml show`: one version (by artefact, path or CID) or one record, in full."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import JsonOpt, PolicyOpt

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
        "show", help=HELP, short_help="One version (or record) in full: lineage, users, steps."
    )(show)


def show(
    what: Annotated[str, typer.Argument(metavar="ARTEFACT|CID", help="What to show.")],
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a version or a record."""
    from proml_cli import history
    from proml_cli.errors import InputError
    from proml_cli.project import load_project
    from proml_cli.record import parse_record

    project = load_project(policy)
    store = project.store()
    hist = history.load(project)
    version = None
    if what in project.policy.artefacts or any(v.artefact == what for v in hist.versions.values()):
        versions = hist.of_artefact(what)
        if not versions:
            raise InputError(
                f"artefact '{what}' has no recorded version yet",
                hint="record one with `proml run -- ...` (the step that produces it)",
            )
        version = versions[-1]
    else:
        version = hist.by_cid(what)
    if version is not None:
        document = history.describe(hist, version, store)
    elif any(s.record_cid == what for v in hist.versions.values() for s in v.steps):
        document = {"record_cid": what, "record": parse_record(store.cat(what), cid=what)}
    else:
        from proml_cli.suggest import did_you_mean

        raise InputError(
            f"'{what}' is neither an artefact nor a recorded CID"
            f"{did_you_mean(what, project.policy.artefacts)}",
            hint="`proml log` lists every recorded version and record",
        )
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
