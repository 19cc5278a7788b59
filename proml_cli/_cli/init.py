"""`proml init`: create the policy and local state, deploy or attach the ledger, sync kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import CHAIN_ENV, SIGNER_ENV, AccountOpt, JsonOpt, environment

HELP = """Set up a project in two steps.

\b
Without a policy file: write proml.yaml from the template (a complete, commented pipeline:
prepare -> validate -> train -> evaluate -> approve) and stop. Nothing is deployed and no
.proml/ is created, so you can edit it freely; then run `proml init` again.

\b
With a policy file: create .proml/ and the local account, deploy the project's ledger
contract (or attach to the recorded one, or to --ledger) and define the policy's roles,
kinds and artefacts on it. Safe to re-run: only what is missing or changed is applied.
A changed kind is redefined while no version of it is recorded; once versions exist it is
refused: add a successor kind (e.g. dataset-v2) and point the artefacts at it, and init
rebinds them (recorded versions keep their kind). See docs/policy.md. The ledger's identity
is pinned in proml.lock beside the policy (commit it): a checkout with a lock attaches to the
pinned ledger, and a project without one is pinned on first use.

\b
Examples:
  proml init                          # writes proml.yaml; edit it
  proml init                          # deploys the ledger
  proml init --policy team.yaml --no-grant
  proml init --ledger 0x5FbDB2315678afecb367f032d93F642f64180aa3   # join another's project

\b
Exit codes: 0 ok; 1 the ledger refused; 2 bad policy or usage; 3 chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "init",
        help=HELP + environment(*CHAIN_ENV, *SIGNER_ENV),
        short_help="Write the template, or deploy the ledger and define the policy.",
    )(init)


def init(
    policy: Annotated[
        Path, typer.Option("--policy", envvar="PROML_POLICY", help="Policy file to create or use.")
    ] = Path("proml.yaml"),
    grant: Annotated[
        bool,
        typer.Option(
            "--grant/--no-grant",
            help="Grant every policy role to the admin (one person on the embedded default).",
        ),
    ] = True,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            envvar="PROML_LEDGER",
            help="Join an existing project: attach to this ledger contract instead of deploying.",
            show_default=False,
        ),
    ] = None,
    account: AccountOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Initialise a project."""
    from proml_cli._cli.project import settings
    from proml_cli.project import initialise, write_template

    if not policy.exists():
        project = write_template(policy)
        again = "proml init" if policy == Path("proml.yaml") else f"proml init --policy {policy}"
        if as_json:
            output.emit_json({"policy": str(policy), "policy_created": True, "project": project})
        output.info(
            f"created {policy} from the template (project '{project}'); nothing is deployed yet"
        )
        output.info(
            "next: edit its artefacts (paths), steps (commands) and kinds (states) to match "
            f"your project, then run `{again}` to deploy the ledger"
        )
        return
    result = initialise(
        policy,
        account=account,
        grant_admin=grant,
        attach=ledger,
        announce=output.info,
        settings=settings(),
    )
    result["policy_created"] = False
    if as_json:
        output.emit_json(result)
        return
    output.info(
        f"ledger {result['ledger']} on chain {result['chain_id']} ({result['backend']}); "
        f"admin {result['admin']}"
    )
    for line in result["actions"]:
        output.info(f"  {line}")
    first = _first_step(policy)
    if first:
        output.info(f"next: proml run -- {first}")


def _first_step(policy: Path) -> str | None:
    """The command of the policy's first step that needs no recorded input, if any."""
    import shlex

    from proml_cli.policy import load_policy

    steps = load_policy(policy.resolve()).steps.values()
    return next((shlex.join(s.command) for s in steps if not s.uses and s.produces), None)
