"""`proml sync`: anchor every record left in the journal, each exactly once."""

from __future__ import annotations

import typer

from proml_cli._cli import output
from proml_cli._cli.options import AccountOpt, JsonOpt, PolicyOpt

HELP = """Send content kept locally while the IPFS node was unreachable, then submit every
pending journal entry. An entry whose record is already anchored on the ledger is marked done
without a second transaction.

An entry that cannot be read back (damaged, truncated, wrong shape) is moved to
.proml/journal/quarantine/ and reported; the other entries are still anchored.

Exit codes: 0 nothing left pending; 1 the ledger refused an entry; 2 an entry was damaged and
set aside; 3 still unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command("sync", help=HELP)(sync)


def sync(policy: PolicyOpt = None, account: AccountOpt = None, as_json: JsonOpt = False) -> None:
    """Finish journaled work."""
    from proml_cli.capture import sync as sync_journal
    from proml_cli.project import load_project

    project = load_project(policy)
    pushed = project.store().flush()
    results = sync_journal(project, account=account)
    if as_json:
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
    set_aside = [r for r in results if r["status"] == "quarantined"]
    if set_aside:
        from proml_cli.errors import InputError

        more = f" (and {len(set_aside) - 1} more)" if len(set_aside) > 1 else ""
        raise InputError(f"{set_aside[0]['reason']}{more}", hint="proml fsck")
    if any(r["status"] == "refused" for r in results):
        raise typer.Exit(1)
