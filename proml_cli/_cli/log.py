"""`proml log`: the history of the project's artefacts, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import CHAIN_ENV, STORE_ENV, JsonOpt, PolicyOpt, environment

#: Rows the table shows without --limit or --all.
PAGE = 50

HELP = """Show registrations and transitions, newest first: time, who (address and the role
that allowed it), artefact, version (short CID), from → to, step or decision, record CID.
The table shows the newest 50 rows (--limit N, or --all); --json gives every row unless
--limit is given. Only the rows shown are read and checked against the contract.

\b
Examples:
  proml log
  proml log fraud-model --limit 5 --json

\b
Exit codes: 0 ok; 2 bad usage or unknown artefact; 3 chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "log",
        help=HELP + environment(*CHAIN_ENV, *STORE_ENV),
        short_help="History of registrations and transitions, newest first.",
    )(log)


def log(
    artefact: Annotated[
        str | None, typer.Argument(metavar="[ARTEFACT]", help="Only this artefact.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help=f"At most N rows (the table: {PAGE} unless --all)."),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every row in the table (--json gives every row).")
    ] = False,
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the history."""
    from proml_cli._cli.project import open_cli_project

    if not as_json and limit is None and not every:
        limit = PAGE
    rows = open_cli_project(policy).log(artefact, limit=limit)
    if as_json:
        output.emit_json({"entries": [r.to_json() for r in rows]})
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("time", "who", "artefact", "version", "change", "by", "record"):
        table.add_column(column, overflow="fold")
    for r in rows:
        who = r.actor[:10] + "…" + (f" ({', '.join(r.roles)})" if r.roles else "")
        change = f"{r.source or '∅'} → {r.target}"
        table.add_row(
            r.time[:19].replace("T", " "),
            who,
            r.artefact,
            _short(r.cid),
            f"{r.action}: {change}",
            r.by or "",
            _short(r.record_cid),
        )
    output.stdout_console().print(table)


def _short(cid: str) -> str:
    return cid if len(cid) <= 16 else f"{cid[:8]}…{cid[-6:]}"
