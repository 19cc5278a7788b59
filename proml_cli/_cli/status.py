"""`proml status`: each artefact's files against its last recorded version."""

from __future__ import annotations

import typer

from proml_cli._cli import output
from proml_cli._cli.options import JsonOpt, PolicyOpt

HELP = """For each artefact in the policy: is its current file the last recorded version
(unchanged), a different one (modified), never recorded (new), or absent (missing); and the
recorded version's state.

\b
Exit codes: 0 ok; 2 bad policy; 3 chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "status", help=HELP, short_help="Each artefact's files against its last recorded version."
    )(status)


def status(policy: PolicyOpt = None, as_json: JsonOpt = False) -> None:
    """Compare working files with the ledger."""
    from proml_cli import history
    from proml_cli.content import hash_path
    from proml_cli.project import load_project

    project = load_project(policy)
    hist = history.load(project)
    rows = []
    for name in project.policy.artefacts:
        path = project.policy.artefact_path(name)
        versions = hist.of_artefact(name)
        last = versions[-1] if versions else None
        row: dict[str, object] = {
            "artefact": name,
            "path": project.policy.artefacts[name].path,
            "recorded_cid": last.cid if last else None,
            "recorded_state": last.state if last else None,
            "versions": len(versions),
        }
        if not path.exists():
            row["status"] = "missing"
            row["sha256"] = None  # the key is always there: a JSON consumer need not probe it
        else:
            digest = hash_path(path, cid_version=project.policy.storage.cid_version).sha256
            if last is None:
                row["status"] = "new"
            elif digest == last.digest:
                row["status"] = "unchanged"
            else:
                older = any(v.digest == digest for v in versions)
                row["status"] = "older-version" if older else "modified"
            row["sha256"] = f"sha256:{digest}"
        rows.append(row)
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
