"""`proml export`: the history in the ecosystem's provenance formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import AccountOpt, PolicyOpt

HELP = """Write the history (or one version's lineage) in a standard format, to stdout or -o FILE.
FORMAT is one of: slsa (in-toto Statement v1 with a SLSA Provenance v1 predicate per version),
prov (W3C PROV-JSON), cyclonedx (CycloneDX 1.6 ML-BOM), spdx3 (SPDX 3.0.1 JSON-LD, AI and
Dataset profiles), openlineage (one RunEvent per run, JSON Lines). ARTEFACT[@VERSION] selects a
version (VERSION: a content CID, sha256:HEX or a unique hex prefix; default the latest) and its
direct inputs; --deep its whole upstream lineage; without it, the whole project. slsa gives one
document for one version, JSON Lines for several. The same history gives the same bytes. spdx3
and openlineage need the export extra: pip install -e 'PATH/TO/proml[export]'.

\b
Examples:
  proml export slsa model -o model.intoto.json
  proml export slsa model --sign -o model.dsse.json
  proml export prov model --deep
  proml export cyclonedx --model classifier-v2
  proml export openlineage > events.jsonl

\b
Exit codes: 0 written; 1 a record is missing from the store or the ledger's index was altered;
2 bad usage (unknown format, artefact or version, a missing extra); 3 chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "export",
        help=HELP,
        short_help="The history as SLSA/in-toto, PROV, CycloneDX, SPDX 3 or OpenLineage.",
    )(export)


def export(
    format_name: Annotated[
        str,
        typer.Argument(
            metavar="FORMAT",
            help="slsa, prov, cyclonedx, spdx3 or openlineage.",
            show_default=False,
        ),
    ],
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="[ARTEFACT[@VERSION]]",
            help="The version to export (default: the whole project).",
            show_default=False,
        ),
    ] = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Include the version's whole upstream lineage.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout."),
    ] = None,
    sign: Annotated[
        bool,
        typer.Option(
            "--sign", help="slsa only: wrap each statement in a DSSE envelope signed by --as."
        ),
    ] = False,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            metavar="ARTEFACT",
            help="Call this artefact a model (repeatable; default: named like one).",
        ),
    ] = None,
    account: AccountOpt = None,
    policy: PolicyOpt = None,
) -> None:
    """Export provenance."""
    from proml_cli._cli.project import open_cli_project
    from proml_cli.errors import InputError
    from proml_cli.export import builder, export, export_signed, gather, select

    builder(format_name)  # an unknown format or a missing extra fails before any chain read
    if sign and format_name != "slsa":
        raise InputError("--sign applies to the slsa format only (a DSSE-wrapped statement)")
    if out is not None and not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such directory (for --output)")
    project = open_cli_project(policy, account)
    facts = select(gather(project, models=models or None), ref, deep=deep)
    if sign:
        data = export_signed(facts, project.context.signer(account))
    else:
        data = export(facts, format_name)
    if out is None:
        output.emit_bytes(data)
        return
    output.write_file(out, data, "--output")
    output.info(f"wrote {format_name} to {out} ({len(data)} bytes)")
