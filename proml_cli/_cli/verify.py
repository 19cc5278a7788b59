"""`proml verify`: the gate before anyone consumes an asset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import JsonOpt, PolicyOpt

HELP = """Verify that the bytes at PATH are a recorded version (of --artefact, if given), that its
current state is accepted (--state, else the kind's consumable states), that every step on it
was made by an account holding an allowed role, and that every provenance record is intact.
--deep repeats the checks for the whole upstream lineage.

Examples:
  proml verify models/model.pkl
  proml verify models/model.pkl --artefact fraud-model --state approved --deep --json

Exit codes: 0 verified; 1 not verified (reasons on stderr, or in the JSON); 2 bad usage or
missing path; 3 chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command("verify", help=HELP)(verify)


def verify(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="File or directory to verify.")],
    artefact: Annotated[
        str | None, typer.Option("--artefact", help="It must be a version of this artefact.")
    ] = None,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Accepted state (repeatable).")
    ] = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Verify the whole upstream lineage.")
    ] = False,
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify an asset."""
    from proml_cli import history
    from proml_cli.content import hash_path
    from proml_cli.errors import InputError
    from proml_cli.project import load_project
    from proml_cli.verify import local_path_label, verify_content

    project = load_project(policy)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if artefact is None:
        # A path the policy names identifies its artefact (for the report and the checks).
        target = path.resolve()
        artefact = next(
            (n for n in project.policy.artefacts if project.policy.artefact_path(n) == target),
            None,
        )
    cid_version = project.policy.storage.cid_version
    hashed = hash_path(path, cid_version=cid_version)
    verdict = verify_content(
        path=local_path_label(path, project.root),
        sha256=hashed.sha256,
        cid=hashed.cid,
        cid_version=cid_version,
        history=history.load(project),
        store=project.store(),
        policy=project.policy,
        artefact=artefact,
        states=state or (),
        deep=deep,
    )
    if as_json:
        output.emit_json(verdict.to_json())
    elif verdict.verified:
        output.info(
            f"verified: {verdict.path} is '{verdict.artefact}' {verdict.cid} in state "
            f"'{verdict.state}' ({len(verdict.checked)} checks)"
        )
    else:
        output.err.print(f"NOT verified: {verdict.path}", markup=False)
        for reason in verdict.reasons:
            output.err.print(f"  - {reason}", markup=False)
    if not verdict.verified:
        raise typer.Exit(1)
