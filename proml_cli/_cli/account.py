"""`proml account`: local signing accounts (encrypted keystores; keys are never printed)."""

from __future__ import annotations

from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import JsonOpt, PolicyOpt

account_app = typer.Typer(help="Local signing accounts (encrypted V3 keystores, mode 0600).")


def register(app: typer.Typer) -> None:
    """Attach the command group to ``app``."""
    app.add_typer(account_app, name="account")


def _state_dir(policy: str | None):  # type: ignore[no-untyped-def]
    from proml_cli.project import STATE_NAME, find_policy

    return find_policy(None, policy).parent / STATE_NAME


@account_app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="Account name.")],
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an account (password: PROML_KEYSTORE_PASSWORD)."""
    from proml_cli.account import create_account

    info = create_account(_state_dir(policy), name)
    if as_json:
        output.emit_json({"name": info.name, "address": info.address})
    else:
        output.emit_line(f"{info.name} {info.address}")


@account_app.command("list")
def list_(policy: PolicyOpt = None, as_json: JsonOpt = False) -> None:
    """List accounts (names and addresses)."""
    from proml_cli.account import list_accounts

    accounts = list_accounts(_state_dir(policy))
    if as_json:
        output.emit_json({"accounts": [{"name": a.name, "address": a.address} for a in accounts]})
        return
    for a in accounts:
        output.emit_line(f"{a.name} {a.address}")
