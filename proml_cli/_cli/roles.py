"""`proml roles`: grant, revoke and list on-chain roles (the contract allows only the admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import (
    CHAIN_ENV,
    SIGNER_ENV,
    AccountOpt,
    JsonOpt,
    PolicyOpt,
    environment,
)

CHANGE_EPILOG = (
    "Exit codes: 0 done; 1 the ledger refused (only the admin may grant or revoke; unknown "
    "role); 2 bad usage or unknown account; 3 chain unreachable."
)
LIST_EPILOG = "Exit codes: 0 ok; 2 bad usage or policy; 3 chain unreachable."

RoleArg = Annotated[str, typer.Argument(metavar="ROLE", help="Role name.")]
WhoArg = Annotated[str, typer.Argument(metavar="ADDRESS|ACCOUNT", help="Address or local account.")]

roles_app = typer.Typer(
    help="On-chain roles: grant, revoke (admin only), list.",
    epilog=CHANGE_EPILOG,
)


def register(app: typer.Typer) -> None:
    """Attach the command group to ``app``."""
    app.add_typer(roles_app, name="roles")


@roles_app.command("grant", epilog=CHANGE_EPILOG + environment(*CHAIN_ENV, *SIGNER_ENV))
def grant(
    role: RoleArg,
    who: WhoArg,
    policy: PolicyOpt = None,
    account: AccountOpt = None,
) -> None:
    """Grant ROLE to an account (admin only)."""
    _change(role, who, policy, account, grant=True)


@roles_app.command("revoke", epilog=CHANGE_EPILOG + environment(*CHAIN_ENV, *SIGNER_ENV))
def revoke(
    role: RoleArg,
    who: WhoArg,
    policy: PolicyOpt = None,
    account: AccountOpt = None,
) -> None:
    """Revoke ROLE from an account (admin only)."""
    _change(role, who, policy, account, grant=False)


def _change(role: str, who: str, policy: str | None, account: str | None, *, grant: bool) -> None:
    from proml_cli._cli.project import open_cli_project

    project = open_cli_project(policy, account)
    address, receipt = project.set_role(role, who, granted=grant)
    verb = "granted" if grant else "revoked"
    output.info(f"{verb} '{role}' {'to' if grant else 'from'} {address} (tx {receipt.tx_hash})")


@roles_app.command("list", epilog=LIST_EPILOG + environment(*CHAIN_ENV))
def list_(policy: PolicyOpt = None, as_json: JsonOpt = False) -> None:
    """List every role holder, as the ledger contract holds them."""
    from proml_cli._cli.project import open_cli_project

    holders = open_cli_project(policy).roles()
    if as_json:
        output.emit_json(holders.to_json())
        return
    output.emit_line(f"admin {holders.admin}")
    for role, members in sorted(holders.roles.items()):
        output.emit_line(f"{role}: {', '.join(members) or '—'}")
