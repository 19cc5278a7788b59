"""`proml sync`: anchor every record left in the journal, each exactly once."""

from __future__ import annotations

import typer

from proml_cli._cli import output
from proml_cli._cli.options import AccountOpt, JsonOpt, PolicyOpt

HELP = """Submit every pending journal entry, then send content kept locally while the IPFS
node was unreachable. An entry whose record is already anchored on the ledger is marked done
without a second transaction, so running sync twice anchors nothing twice.

\b
Exit codes: 0 nothing left pending; 1 the ledger refused an entry; 3 the chain or the IPFS
node is still unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "sync", help=HELP, short_help="Anchor journaled records (each once), send deferred content."
    )(sync)


def sync(policy: PolicyOpt = None, account: AccountOpt = None, as_json: JsonOpt = False) -> None:
    """Finish journaled work."""
    from proml_cli.capture import sync as sync_journal
    from proml_cli.errors import BackendUnavailable
    from proml_cli.project import load_project

    project = load_project(policy)
    # The chain first: an IPFS node that is still down must not keep records off the chain.
    results = sync_journal(project, account=account)
    pushed: list[str] = []
    node_down: BackendUnavailable | None = None
    try:
        pushed = project.store().flush()
    except BackendUnavailable as exc:
        node_down = exc
    if as_json and node_down is None:
        output.emit_json({"entries": results, "pushed": pushed})
    else:
        if pushed:
            output.info(f"sent {len(pushed)} item(s) to the IPFS node")
        if not results:
            output.info("journal: nothing pending")
        for r in results:
            output.info(
                f"{r['record_cid']}: {r['status']} {r.get('tx_hash') or r.get('reason', '')}"
            )
    if node_down is not None:
        raise node_down
    if any(r["status"] == "refused" for r in results):
        raise typer.Exit(1)
