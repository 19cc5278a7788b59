"""`proml sync`: anchor every record left in the journal, each exactly once."""

from __future__ import annotations

import typer

from proml_cli._cli import output
from proml_cli._cli.options import (
    CHAIN_ENV,
    SIGNER_ENV,
    STORE_ENV,
    AccountOpt,
    JsonOpt,
    PolicyOpt,
    environment,
)

HELP = """Submit every pending journal entry, then send the content kept locally while the
IPFS node was unreachable or misbehaved. An entry whose record is already anchored on the
ledger is marked done without a second transaction.

An entry that cannot be read back (damaged, truncated, wrong shape) is moved to
.proml/journal/quarantine/ and reported; the other entries are still anchored.

\b
Exit codes: 0 nothing left pending; 1 the ledger refused an entry, or the IPFS node did not
take some content (it stays queued locally); 2 the ledger is not the one proml.lock pins,
or an entry was damaged and set aside; 3 still unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "sync",
        help=HELP + environment(*CHAIN_ENV, *STORE_ENV, *SIGNER_ENV),
        short_help="Anchor journaled records (each once), send deferred content.",
    )(sync)


def sync(policy: PolicyOpt = None, account: AccountOpt = None, as_json: JsonOpt = False) -> None:
    """Finish journaled work."""
    from proml_cli._cli.project import open_context
    from proml_cli.anchoring import sync_all

    report = sync_all(open_context(policy), account=account)
    results, pushed, problem = report.entries, report.pushed, report.problem
    if as_json:
        if problem is None:  # on error stdout stays empty; the anchored entries are in `log`
            output.emit_json({"entries": results, "pushed": pushed})
    else:
        if pushed:
            output.info(f"sent {len(pushed)} item(s) to the IPFS node")
        if not results:
            output.info("journal: nothing pending")
        for r in results:
            if r["status"] == "quarantined":
                continue  # reported as the error below
            output.info(
                f"{r['record_cid']}: {r['status']} {r.get('tx_hash') or r.get('reason', '')}"
            )
    error = report.error()
    if error is not None:
        if problem is not None and error is not problem:
            output.warn(problem.diagnosis)  # the error line names the quarantined entry
        raise error
    if report.refused:
        raise typer.Exit(1)
