"""`proml run -- CMD ...`: check inputs, run the command unchanged, record what it produced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import (
    CHAIN_ENV,
    SIGNER_ENV,
    STORE_ENV,
    AccountOpt,
    PolicyOpt,
    environment,
)

HELP = """Run CMD under the capture policy.

\b
Before: match the step (by --step or by the command) and check every input it uses: its
bytes must be a recorded version in an allowed state, or the command does not start.
After success: store the outputs, write the provenance record and anchor registrations
and transitions in one transaction. A failing command records nothing. stdout/stderr
belong to CMD; proml's summary goes to stderr (or --summary-json).

\b
Examples:
  proml run -- python prepare.py
  proml run --step train -- python train.py --epochs 3
  PROML_REQUIRE_ANCHOR=1 proml run -- python train.py      # in CI: journaled is a failure

\b
Exit codes: CMD's own exit code once it ran (128+N on signal N, 126 not executable, 127
not found); 1 an input was refused or the ledger refused the record; 2 bad usage or
policy; 3 the chain is unreachable before CMD starts, or (with --require-anchor) the
record could only be journaled; 125 the record could not even be journaled. Without
--require-anchor a record left in the journal is a warning: run `proml sync`."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "run",
        help=HELP + environment(*CHAIN_ENV, *STORE_ENV, *SIGNER_ENV),
        short_help="Run a command under the capture policy and record it.",
        context_settings={"ignore_unknown_options": True},
    )(run)


def run(
    command: Annotated[
        list[str], typer.Argument(metavar="CMD", help="The command to run, after `--`.")
    ],
    step: Annotated[str | None, typer.Option("--step", help="Step name in the policy.")] = None,
    summary_json: Annotated[
        Path | None, typer.Option("--summary-json", help="Also write the summary as JSON here.")
    ] = None,
    require_anchor: Annotated[
        bool,
        typer.Option(
            "--require-anchor",
            envvar="PROML_REQUIRE_ANCHOR",
            help="Exit 3 when the record could only be journaled, not anchored (for CI jobs).",
        ),
    ] = False,
    policy: PolicyOpt = None,
    account: AccountOpt = None,
) -> None:
    """Run a command under the capture policy."""
    from proml_cli._cli.project import open_context
    from proml_cli.capture import run_step

    if summary_json is not None:
        _check_writable(summary_json)  # before the command runs, not after its work is done
    project = open_context(policy)
    outcome = run_step(project, command, step_name=step, account=account)
    if summary_json is not None:
        try:
            summary_json.write_text(json.dumps(outcome.to_json(), indent=2) + "\n")
        except OSError as exc:
            # The command ran and its record is anchored or journaled: its exit code, not this
            # failure, is what the caller must get.
            output.warn(f"cannot write the summary to {summary_json}: {exc.strerror or exc}")
    for message in outcome.messages:
        (output.warn if outcome.journaled or outcome.deferred else output.info)(message)
    if outcome.recorded:
        output.info(
            f"proml: recorded step '{outcome.step}': record {outcome.record_cid}, "
            f"tx {outcome.tx_hash} (block {outcome.block}, gas {outcome.gas_used})"
        )
        for product in outcome.products:
            output.info(f"  {product['artefact']}: {product['path']} → {product['cid']}")
        for move in outcome.transitions:
            output.info(f"  {move['artefact']}: fired '{move['transition']}'")
    if require_anchor:
        outcome.require_anchored(
            why=", and --require-anchor is set",
            hint="run `proml sync` once the chain is reachable",
        )
    raise typer.Exit(outcome.exit_code)


def _check_writable(path: Path) -> None:
    """Refuse a --summary-json path that cannot be written (checked before anything runs).

    Raises:
        InputError: the path is a directory, or its directory is missing or not writable.
    """
    import os

    from proml_cli.errors import InputError

    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"--summary-json {path}: is a directory")
    if not parent.is_dir():
        raise InputError(
            f"--summary-json {path}: directory {parent} does not exist",
            hint=f"mkdir -p {parent}",
        )
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"--summary-json {path}: not writable")
