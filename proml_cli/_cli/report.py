"""`proml report`: one self-contained HTML page of the project's history."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import PolicyOpt
from proml_cli.errors import InputError

HELP = """Write one HTML file that shows the whole history, to attach to a release or an
audit: the lineage drawn as a graph (nodes coloured by state), per artefact its versions and a
timeline of transitions (who, which role, when, transaction, note), per version the gate's
verdict with its numbered checks and the params and metrics of its records, and a filter box.
The page is self-contained: it opens offline in any browser and makes no request (every
style and script is inline, and its Content-Security-Policy forbids fetching anything).

\b
Examples:
  proml report
  proml report -o release-1.2-provenance.html
  proml report -o - > report.html

\b
Exit codes: 0 ok; 2 bad usage or an unwritable output path; 3 chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "report", help=HELP, short_help="Self-contained HTML report: lineage, timelines, gate."
    )(report)


def report(
    out: Annotated[
        str,
        typer.Option("-o", "--output", metavar="FILE", help="Where to write it ('-': stdout)."),
    ] = "report.html",
    policy: PolicyOpt = None,
) -> None:
    """Write the HTML report."""
    from proml_cli._cli.project import open_cli_project
    from proml_cli.graph import build_report

    built = build_report(open_cli_project(policy))
    data = built.html.encode("utf-8")
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    target = Path(out)
    if target.is_dir():
        raise InputError(f"{target}: is a directory", hint=f"proml report -o {target}/report.html")
    if not target.parent.is_dir():
        raise InputError(f"{target.parent}: no such directory")
    # Written beside the target, then renamed: a reader never sees half a report.
    staging: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=target.parent, prefix=f".{target.name}.", delete=False
        ) as handle:
            staging = handle.name
            handle.write(data)
        os.chmod(staging, 0o644)  # a page to share, not a secret (mkstemp makes it 0600)
        os.replace(staging, target)
    except OSError as exc:
        if staging is not None:
            Path(staging).unlink(missing_ok=True)
        raise InputError(f"{target}: cannot write the report ({exc.strerror})") from exc
    output.info(
        f"wrote {target} ({len(data) / 1024:.0f} KiB): {built.versions} versions, "
        f"{built.events} events, {built.activities} runs and decisions"
    )
