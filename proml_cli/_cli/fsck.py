"""`proml fsck`: check everything under .proml/ and repair what is safe to repair."""

from __future__ import annotations

from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import JsonOpt, PolicyOpt, environment

HELP = """Check the project's local state: project.json, keystores (shape and mode), journal
entries, the content store (every block, every pack and its index, orphan packs left by an
interrupted import, temporary files) and the embedded chain's database (SQLite integrity,
genesis, head block and state, every block against its header, every block executed again
from genesis, the event index and the history index against the chain). Each problem is one
line on stdout: AREA PATH: PROBLEM, and what --repair does about it.

--repair does only what is safe: it moves unreadable journal entries to
.proml/journal/quarantine/ (never deletes them), removes temporary files and orphan packs
(never one an import holds open or changed in the last 10 minutes), sets keystores to mode
0600, and rebuilds the chain's event and history indexes from its blocks, then checks them
again. Damage to the chain's blocks, project.json, keystores or stored blocks needs a backup.

\b
Examples:
  proml fsck
  proml fsck --repair
  proml fsck --json

\b
Exit codes: 0 nothing wrong (or everything found was repaired); 1 problems found; 2 bad usage
(no project here)."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command("fsck", help=HELP + environment("PROML_LOCK_TIMEOUT"))(fsck)


def fsck(
    repair: Annotated[
        bool, typer.Option("--repair", help="Repair what is safe (see above).")
    ] = False,
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check (and repair) the project's local state."""
    from proml_cli._cli.project import settings as read_settings
    from proml_cli.errors import ProMLError
    from proml_cli.fsck import check
    from proml_cli.project import Project, find_policy, load_project

    settings = read_settings()
    path = find_policy(None, policy)
    project: Project | None
    try:
        project = load_project(str(path), settings=settings)
    except ProMLError as exc:
        # A broken policy must not stop a check of .proml/ (only the ledger needs it).
        output.warn(f"{exc.diagnosis}: the ledger is not read")
        project = None
    report = check(path.parent, project, repair=repair, lock_timeout=settings.lock_timeout)
    if as_json:
        output.emit_json(report.to_json())
    else:
        for finding in report.findings:
            done = " (repaired)" if finding.repaired else ""
            fix = f" [--repair: {finding.repair}]" if finding.repair and not done else ""
            output.emit_line(f"{finding.area} {finding.path}: {finding.problem}{fix}{done}")
        for note in report.notes:
            output.info(f"note: {note}")
        counts = ", ".join(f"{n} {area}" for area, n in sorted(report.checked.items()))
        found = len(report.findings)
        if not report.is_clean:
            verdict = f"{found} problem(s)"
        else:
            verdict = f"clean: {found} problem(s) repaired" if found else "clean"
        output.info(f"fsck: {verdict} (checked {counts or 'nothing'})")
    if not report.is_clean:
        raise typer.Exit(1)
