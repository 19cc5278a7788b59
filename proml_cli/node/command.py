"""`proml node start|stop|status`: the project's node, by hand (it also starts on demand)."""

from __future__ import annotations

from pathlib import Path

import typer

from proml_cli._cli import output
from proml_cli._cli.options import JsonOpt, PolicyOpt

HELP = """The project's proml node: a local process that keeps the chain libraries loaded
and runs chain commands (run, transition, log, show, status, verify, roles, sync, push)
for this project, so that each costs no start-up. The first such command starts it; it
stops after PROML_NODE_IDLE seconds without a command (default 600), or when .proml/ is
removed. PROML_NODE=off runs every command in its own process instead. See docs/node.md.

\b
Examples:
  proml node status
  proml node stop

\b
Exit codes: 0 ok; 1 (status) no node runs; 2 bad usage (no initialised project); 3 the node
cannot be started or reached."""

START_HELP = """Start the project's node now (if it is not running).

\b
Exit codes: 0 running; 2 no initialised project; 3 it cannot be started (see .proml/node.log)."""

STOP_HELP = """Stop the project's node (the next chain command starts a new one).

\b
Exit codes: 0 stopped, or none was running; 2 no initialised project; 3 it cannot be reached."""

STATUS_HELP = """Whether the project's node runs: its pid, socket and idle time.

\b
Exit codes: 0 running; 1 not running; 2 no initialised project; 3 it cannot be reached."""

node_app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)


def register(app: typer.Typer) -> None:
    """Attach the group to ``app``."""
    app.add_typer(node_app, name="node", short_help="Start, stop or inspect the project's node.")


def _state_dir(policy: str | None) -> Path:
    from proml_cli._cli.project import settings
    from proml_cli.project import load_project

    project = load_project(policy, settings=settings())
    state_dir = project.state_dir
    if not state_dir.is_dir():
        from proml_cli.errors import InputError

        raise InputError(f"project not initialised ({state_dir} is missing)", hint="proml init")
    return state_dir


def _unavailable(exc: Exception) -> None:
    from proml_cli.errors import BackendUnavailable

    raise BackendUnavailable(f"the proml node is unavailable: {exc}", hint="see .proml/node.log")


@node_app.command("start", help=START_HELP)
def start(policy: PolicyOpt = None) -> None:
    """Start the node."""
    from proml_cli.node import client

    state_dir = _state_dir(policy)
    try:
        sock = client.connect_or_start(state_dir)
    except client.NodeUnavailableError as exc:
        _unavailable(exc)
        return
    sock.close()
    described = client.status(state_dir)
    output.info(f"proml node running (pid {(described or {}).get('pid')})")


@node_app.command("stop", help=STOP_HELP)
def stop(policy: PolicyOpt = None) -> None:
    """Stop the node."""
    from proml_cli.node import client

    try:
        pid = client.stop(_state_dir(policy))
    except client.NodeUnavailableError as exc:
        _unavailable(exc)
        return
    output.info(
        "no proml node was running"
        if pid is None
        else f"proml node {pid} stopped (commands in flight still finish)"
    )


@node_app.command("status", help=STATUS_HELP)
def status(policy: PolicyOpt = None, as_json: JsonOpt = False) -> None:
    """Describe the node; exit 1 when none runs."""
    from proml_cli.node import client

    try:
        described = client.status(_state_dir(policy))
    except client.NodeUnavailableError as exc:
        _unavailable(exc)
        return
    document = {"running": described is not None}
    if described is not None:
        document.update({k: v for k, v in described.items() if k not in ("op", "package")})
    if as_json:
        output.emit_json(document)
    elif described is None:
        output.emit_line("not running")
    else:
        output.emit_line(
            f"running: pid {described.get('pid')}, socket {described.get('socket')}, "
            f"idle {described.get('idle_for')} s of {described.get('idle_timeout')} s"
        )
    if described is None:
        raise typer.Exit(1)
