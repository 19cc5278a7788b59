"""`proml transition`: a human decision (approve, reject, revoke ...) on one version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import (
    CHAIN_ENV,
    SIGNER_ENV,
    STORE_ENV,
    AccountOpt,
    JsonOpt,
    PolicyOpt,
    environment,
)

HELP = """Fire TRANSITION on the version of ARTEFACT whose bytes are at --path (default: the
artefact's own path in the policy). The contract checks the state and the signer's role.
With the chain unreachable the decision is journaled: `proml sync` anchors it later.

\b
Examples:
  proml transition train-set validate
  proml transition model approve --path models/model.pkl --note "meets the bar"

\b
Exit codes: 0 recorded; 1 refused (not a recorded version, wrong state, missing role);
2 bad usage; 3 chain unreachable (journaled: run `proml sync`)."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "transition",
        help=HELP + environment(*CHAIN_ENV, *STORE_ENV, *SIGNER_ENV),
        short_help="Record a human decision (validate, approve...) on a version.",
    )(transition)


def transition(
    artefact: Annotated[str, typer.Argument(metavar="ARTEFACT", help="Artefact name.")],
    name: Annotated[str, typer.Argument(metavar="TRANSITION", help="Transition to fire.")],
    path: Annotated[Path | None, typer.Option("--path", help="The version's file.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Why (kept in the record).")] = None,
    policy: PolicyOpt = None,
    account: AccountOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a decision on a version."""
    from proml_cli._cli.project import open_cli_project
    from proml_cli.errors import BackendUnavailable

    project = open_cli_project(policy, account)
    outcome = project.transition(artefact, name, path=path, note=note)
    if outcome.journaled and not outcome.recorded:
        raise BackendUnavailable(
            f"{outcome.unreachable or 'the chain is unreachable'}; the decision '{artefact}' "
            f"{name} is journaled as record {outcome.record_cid}",
            hint="run `proml sync` once the chain is reachable (it anchors it exactly once)",
        )
    if as_json:
        output.emit_json(outcome.to_json())
        return
    output.info(
        f"proml: '{artefact}' {name}: record {outcome.record_cid}, tx {outcome.tx_hash} "
        f"(block {outcome.block})"
    )
