"""`proml push` / `proml pull`: share recorded content through an IPFS node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import CHAIN_ENV, STORE_ENV, JsonOpt, PolicyOpt, environment

PUSH_HELP = """Send every version and record the ledger anchors, from the local store to the
configured IPFS node (storage.ipfs / PROML_IPFS_URL), with the same CIDs. Content the node
already pins is skipped.

\b
Exit codes: 0 ok; 1 the node returned a different CID; 2 no node configured; 3 unreachable."""

PULL_HELP = """Fetch a recorded version (ARTEFACT for the latest, ARTEFACT@CID or
ARTEFACT@SHA256-PREFIX) from the store or IPFS node, check every block and the whole content
against the ledger, then write it to -o PATH (default: the artefact's path in the policy).

\b
Examples:
  proml pull model -o /srv/models/model.pkl
  proml pull train-set@bafkrei...

\b
Exit codes: 0 written; 1 the content does not match the ledger; 2 bad usage or PATH exists;
3 node or chain unreachable."""


def register(app: typer.Typer) -> None:
    """Attach the commands to ``app``."""
    env = environment(*CHAIN_ENV, *STORE_ENV)
    app.command("push", help=PUSH_HELP + env, short_help="Send recorded content to the IPFS node.")(
        push
    )
    app.command(
        "pull", help=PULL_HELP + env, short_help="Fetch a recorded version, verify it, write it."
    )(pull)


def push(policy: PolicyOpt = None, as_json: JsonOpt = False) -> None:
    """Push recorded content to the IPFS node."""
    from proml_cli import transfer
    from proml_cli._cli.project import open_context

    result = transfer.push(open_context(policy, announce=False))
    if as_json:
        output.emit_json(result)
        return
    output.info(
        f"pushed {len(result['pushed'])}, already pinned {len(result['already_pinned'])}, "
        f"not in the local store {len(result['not_local'])}"
    )


def pull(
    spec: Annotated[str, typer.Argument(metavar="ARTEFACT[@VERSION]", help="What to fetch.")],
    out: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write it.")] = None,
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch and verify a recorded version."""
    from proml_cli import transfer
    from proml_cli._cli.project import open_context
    from proml_cli.digest import prefixed

    pulled = transfer.pull(open_context(policy, announce=False), spec, out)
    if as_json:
        output.emit_json(
            {
                "artefact": pulled.artefact,
                "path": str(pulled.path),
                "cid": pulled.cid,
                "sha256": prefixed(pulled.sha256),
                "state": pulled.state,
            }
        )
        return
    output.info(
        f"pulled '{pulled.artefact}' {pulled.cid} (state '{pulled.state}') to {pulled.path}"
    )
