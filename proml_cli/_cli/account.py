"""`proml account`: local signing accounts (encrypted keystores; keys are never printed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import JsonOpt, PolicyOpt, environment

if TYPE_CHECKING:
    from proml_cli.project import Project

EPILOG = (
    "Exit codes: 0 ok; 2 bad usage (invalid or existing account name, no policy); 130 interrupted."
)

account_app = typer.Typer(
    help="Local signing accounts (encrypted V3 keystores, mode 0600).", epilog=EPILOG
)


def register(app: typer.Typer) -> None:
    """Attach the command group to ``app``."""
    app.add_typer(account_app, name="account")


def _project(policy: str | None) -> Project:
    from proml_cli._cli.project import open_context

    return open_context(policy, announce=False)


@account_app.command("new", epilog=EPILOG + environment("PROML_KEYSTORE_PASSWORD"))
def new(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Account name.")],
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an account (password: PROML_KEYSTORE_PASSWORD)."""
    from proml_cli.account import create_account

    project = _project(policy)
    info = create_account(
        project.state_dir,
        name,
        prompt=project.is_network(),
        password=project.settings.keystore_password,
    )
    if as_json:
        output.emit_json({"name": info.name, "address": info.address})
    else:
        output.emit_line(f"{info.name} {info.address}")


@account_app.command("list", epilog=EPILOG)
def list_(policy: PolicyOpt = None, as_json: JsonOpt = False) -> None:
    """List accounts (names and addresses)."""
    from proml_cli.account import list_accounts

    accounts = list_accounts(_project(policy).state_dir)
    if as_json:
        output.emit_json({"accounts": [{"name": a.name, "address": a.address} for a in accounts]})
        return
    for a in accounts:
        output.emit_line(f"{a.name} {a.address}")


@account_app.command("import", epilog=EPILOG + environment("PROML_KEYSTORE_PASSWORD"))
def import_(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Account name.")],
    keystore: Annotated[
        Path | None,
        typer.Option("--keystore", help="An existing V3 keystore file to import (copied)."),
    ] = None,
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a keystore file, or a private key typed at a hidden prompt (or piped on stdin)."""
    import sys

    from proml_cli.account import create_account, import_keystore, parse_private_key

    project = _project(policy)
    state_dir = project.state_dir
    if keystore is not None:
        info = import_keystore(state_dir, name, keystore)
    else:
        if sys.stdin.isatty():
            import getpass

            text = getpass.getpass("private key (hex, not echoed): ")
        else:
            text = sys.stdin.readline()
        info = create_account(
            state_dir,
            name,
            private_key=parse_private_key(text),
            prompt=project.is_network(),
            password=project.settings.keystore_password,
        )
    if as_json:
        output.emit_json({"name": info.name, "address": info.address})
    else:
        output.emit_line(f"{info.name} {info.address}")
