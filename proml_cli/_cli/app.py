"""The Typer application: the command group and the one place errors become exit codes."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from proml_cli.errors import ExitCode, ProMLError
from proml_cli.settings import VARIABLES

#: Variables only the command line and its node read (the library's are in proml_cli.settings).
_CLI_VARIABLES = {
    "PROML_NODE=off": "run chain commands in this process, not the project's node",
    "PROML_NODE_IDLE": "seconds the project's node stays without a command (default 600)",
    "PROML_LEDGER": "ledger contract to join (= init --ledger)",
    "PROML_REQUIRE_ANCHOR=1": "a record only journaled fails the run (= run --require-anchor)",
    "PROML_DEBUG=1": "tracebacks and debug logging (= --verbose)",
}
_ENVIRONMENT = "\n".join(
    f"  {name:<24} {text}"
    for name, text in {**VARIABLES, **_CLI_VARIABLES}.items()
    if name.startswith("PROML_")
)

EXIT_CODES_EPILOG = f"""\b
Getting started:
  proml init                     # writes proml.yaml from the template; edit it
  proml init                     # deploys the ledger, defines roles, kinds, artefacts
  proml run -- python prepare.py

\b
Environment (a flag, when there is one, wins over its variable):
{_ENVIRONMENT}

\b
Exit codes: 0 success; 1 negative answer (not verified, refused); 2 bad usage or input;
3 backend unavailable (work journaled, run `proml sync`); 130 interrupted."""


def _is_debug() -> bool:
    return os.environ.get("PROML_DEBUG", "") not in ("", "0")


class ProMLGroup(TyperGroup):
    """A command group that turns the project's errors into one stderr line and an exit code.

    Doing this in ``invoke`` (not around ``main``) makes it work for the installed command and
    under ``CliRunner`` alike.
    """

    def invoke(self, ctx: Any) -> Any:
        """Run the command; map :class:`ProMLError` to ``proml: error: ...`` and its exit code."""
        try:
            return super().invoke(ctx)
        except ProMLError as exc:
            if _is_debug() or ctx.params.get("verbose"):
                raise
            from rich.markup import escape

            from proml_cli._cli.output import err

            err.print(f"proml: error: {escape(exc.diagnosis)}", soft_wrap=True)
            if exc.hint:
                err.print(f"hint: {escape(exc.hint)}", soft_wrap=True)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


app = typer.Typer(
    name="proml",
    cls=ProMLGroup,
    help="Tamper-evident, shared provenance for ML datasets and models.",
    epilog=EXIT_CODES_EPILOG,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from proml_cli import __version__
        from proml_cli._cli.output import emit_line

        emit_line(f"proml {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Debug logging and tracebacks on stderr (PROML_DEBUG=1)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Tamper-evident, shared provenance for ML datasets and models."""
    _setup_logging(verbose)


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    from proml_cli._cli.output import err

    logger = logging.getLogger("proml_cli")
    if not logger.handlers:
        handler = RichHandler(console=err, show_path=False, show_time=False)
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose or _is_debug() else logging.WARNING)


def _register_commands() -> None:
    # Each command module imports only what its own command needs at call time (web3 lazily).
    from proml_cli._cli import commands

    commands.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
