"""`proml verify`: the gate before anyone consumes an asset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import JsonOpt, PolicyOpt

if TYPE_CHECKING:
    from proml_cli.policy import Policy

HELP = """Verify that the bytes at PATH are a recorded version of the artefact (--artefact, else
the artefact whose path in the policy PATH is), that its current state is accepted (--state,
else the kind's consumable states on the ledger), that every step on it was made by an account
holding an allowed role, and that every provenance record is intact. Every answer comes from the
ledger contract. --deep repeats the checks for every input of every record in its history.

\b
Examples:
  proml verify models/model.pkl
  proml verify models/model.pkl --artefact fraud-model --state approved --deep --json

\b
Exit codes: 0 verified; 1 not verified (reasons on stderr, or in the JSON); 2 bad usage, a
missing path, a PATH no artefact declares without --artefact, or a policy whose kind differs
from the ledger's; 3 chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command("verify", help=HELP)(verify)


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
    artefact = _which_artefact(project.policy, path, artefact)
    cid_version = project.policy.storage.cid_version
    hashed = hash_path(path, cid_version=cid_version)
    store = project.store()
    with project.ledger() as ledger:
        verdict = verify_content(
            path=local_path_label(path, project.root),
            sha256=hashed.sha256,
            cid=hashed.cid,
            cid_version=cid_version,
            artefact=artefact,
            ledger=ledger,
            history=history.read(ledger),
            store=store,
            policy=project.policy,
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


def _which_artefact(policy: Policy, path: Path, named: str | None) -> str:
    """The artefact PATH is checked as: ``--artefact``, else the one whose declared path it is.

    Never a guess from the bytes: a recorded version of another artefact copied to PATH must
    not pass as this one.

    Raises:
        InputError: an unknown ``--artefact``, or no artefact declares PATH.
    """
    from proml_cli.errors import InputError

    names = ", ".join(policy.artefacts) or "(none declared)"
    if named is not None:
        if named not in policy.artefacts:
            raise InputError(
                f"unknown artefact '{named}' in {policy.source}", hint=f"artefacts: {names}"
            )
        return named
    target = path.resolve()
    for name in policy.artefacts:
        if policy.artefact_path(name).resolve() == target:
            return name
    raise InputError(
        f"{path} is not the path of an artefact in {policy.source}: which artefact should it be?",
        hint=f"name it: proml verify {path} --artefact NAME (artefacts: {names})",
    )
