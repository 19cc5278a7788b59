"""`proml verify`: the gate before anyone consumes an asset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import CHAIN_ENV, STORE_ENV, JsonOpt, PolicyOpt, environment

HELP = """Verify that the bytes at PATH are a recorded version of the artefact (--artefact, else
the artefact whose path in the policy PATH is), that its current state is accepted (--state,
else the kind's consumable states on the ledger), that every step on it was made by an account
holding an allowed role, and that every provenance record is intact. Every answer comes from the
ledger contract. --deep repeats the checks for every input of every record in its history.
--attest FILE also writes the verdict, PASSED or FAILED, as an in-toto Verification Summary
Attestation (VSA v1) for the next stage of a pipeline.

\b
Examples:
  proml verify models/model.pkl
  proml verify models/model.pkl --artefact fraud-model --state approved --deep --json
  proml verify models/model.pkl --deep --attest model.vsa.json

\b
Exit codes: 0 verified; 1 not verified (reasons on stderr, or in the JSON); 2 bad usage, a
missing path, a PATH no artefact declares without --artefact, or a policy whose kind differs
from the ledger's; 3 chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command("verify", help=HELP + environment(*CHAIN_ENV, *STORE_ENV))(verify)


def verify(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="File or directory to verify.")],
    artefact: Annotated[
        str | None,
        typer.Option(
            "--artefact",
            help="Check PATH as this artefact (needed when PATH is not its path in the policy).",
        ),
    ] = None,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Accepted state (repeatable).")
    ] = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Verify the whole upstream lineage.")
    ] = False,
    attest: Annotated[
        Path | None,
        typer.Option(
            "--attest",
            metavar="FILE",
            help="Also write the verdict as an in-toto VSA v1 statement to FILE.",
        ),
    ] = None,
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify an asset."""
    from proml_cli._cli.project import open_cli_project

    if attest is not None and not attest.parent.is_dir():
        from proml_cli.errors import InputError

        raise InputError(f"{attest.parent}: no such directory (for --attest)")
    project = open_cli_project(policy)
    verdict = project.verify(path, artefact=artefact, states=state or (), deep=deep)
    if attest is not None:
        from proml_cli.export import render
        from proml_cli.export.vsa import attest as summarise

        output.write_file(attest, render(summarise(project, verdict, deep=deep)), "--attest")
        output.info(f"wrote the verification summary to {attest}")
    if as_json:
        output.emit_json(verdict.to_json())
    elif verdict.verified:
        output.info(
            f"verified: {verdict.path} is '{verdict.artefact}' {verdict.cid} in state "
            f"'{verdict.state}' ({len(verdict.checked)} checks)"
        )
    else:
        output.not_verified(verdict.path, verdict.reasons)
    if not verdict.verified:
        raise typer.Exit(1)
