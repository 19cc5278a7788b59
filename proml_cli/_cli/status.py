"""`proml status`: each artefact's files against its last recorded version."""

from __future__ import annotations

import typer

from proml_cli._cli import output
from proml_cli._cli.options import CHAIN_ENV, JsonOpt, PolicyOpt, environment

HELP = """For each artefact in the policy: is its current file the last recorded version
(unchanged), a different one (modified), never recorded (new), or absent (missing); and the
recorded version's state.

\b
Exit codes: 0 ok; 2 bad policy; 3 chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "status",
        help=HELP + environment(*CHAIN_ENV),
        short_help="Each artefact's files against its last recorded version.",
    )(status)


def status(policy: PolicyOpt = None, as_json: JsonOpt = False) -> None:
    """Compare working files with the ledger."""
    from proml_cli._cli.project import open_cli_project

    rows = [row.to_json() for row in open_cli_project(policy).status()]
    if as_json:
        output.emit_json({"artefacts": rows})
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("artefact", "path", "status", "recorded state", "versions"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["artefact"]),
            str(r["path"]),
            str(r["status"]),
            str(r["recorded_state"] or "—"),
            str(r["versions"]),
        )
    output.stdout_console().print(table)
