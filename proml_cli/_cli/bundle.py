"""`proml bundle`: evidence that travels with an artefact, checked with no chain or project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from proml_cli._cli import output
from proml_cli._cli.options import CHAIN_ENV, STORE_ENV, JsonOpt, PolicyOpt, environment

CREATE_EPILOG = (
    "Exit codes: 0 written; 1 the chain's answers do not match their roots or the contract; "
    "2 bad usage, unknown artefact or version; 3 chain or content node unreachable."
)
VERIFY_EPILOG = (
    "Exit codes: 0 verified; 1 not verified (failed checks on stderr, or in the JSON); "
    "2 bad usage, an unreadable or malformed bundle, a bad --trusted-block, a missing PATH."
)

bundle_app = typer.Typer(
    help="Offline evidence: a version's whole history with Merkle proofs, in one file.",
    epilog=VERIFY_EPILOG,
)


def register(app: typer.Typer) -> None:
    """Attach the command group to ``app``."""
    app.add_typer(bundle_app, name="bundle")


@bundle_app.command("create", epilog=CREATE_EPILOG + environment(*CHAIN_ENV, *STORE_ENV))
def create(
    what: Annotated[
        str,
        typer.Argument(
            metavar="ARTEFACT[@VERSION]",
            help="The artefact (its newest version), or @ a sha256 prefix or CID.",
        ),
    ],
    out: Annotated[Path, typer.Option("-o", "--output", help="Bundle file to write.")],
    deep: Annotated[
        bool, typer.Option("--deep", help="Include the version's whole upstream lineage.")
    ] = False,
    with_content: Annotated[
        bool, typer.Option("--with-content", help="Include the version's bytes as a CAR.")
    ] = False,
    policy: PolicyOpt = None,
) -> None:
    """Write one file holding what an offline verifier needs to check a version.

    Prints the anchor block (NUMBER:HASH) on stdout: the block to compare with a source you
    trust and to pass to `proml bundle verify --trusted-block`.
    """
    from proml_cli._cli.project import open_context
    from proml_cli.bundle.create import create_for_project
    from proml_cli.bundle.format import dump

    project = open_context(policy, announce=False)
    document = create_for_project(project, what, deep=deep, with_content=with_content)
    size = dump(document, out)
    anchor = document["anchor"]
    output.info(
        f"wrote {out} ({size} bytes, {len(document['transactions'])} transactions, "
        f"{len(document['headers'])} headers); verify with --trusted-block "
        f"{anchor['number']}:{anchor['hash']}"
    )
    output.emit_line(f"{anchor['number']}:{anchor['hash']}")


@bundle_app.command("verify", epilog=VERIFY_EPILOG)
def verify(
    bundle: Annotated[Path, typer.Argument(metavar="FILE", help="The bundle.")],
    path: Annotated[
        Path | None,
        typer.Argument(metavar="PATH", help="The artefact's bytes, checked against it."),
    ] = None,
    trusted: Annotated[
        str,
        typer.Option(
            "--trusted-block",
            metavar="NUMBER:HASH",
            help="A block you trust (from your own node or an explorer); the bundle must end "
            "at it.",
        ),
    ] = "",
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="Accepted state (repeatable; default: the consumable ones)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a bundle with no chain, no IPFS node and no project directory."""
    from proml_cli.bundle.format import load, parse_trusted
    from proml_cli.bundle.verify import verify_bundle
    from proml_cli.errors import InputError

    if not trusted:
        raise InputError(
            "--trusted-block NUMBER:HASH is required: the bundle is checked against it",
            hint="take it from a node or explorer you trust, not from the bundle",
        )
    anchor = parse_trusted(trusted)
    document = load(bundle)
    if path is not None and not path.exists():
        raise InputError(f"{path}: no such file or directory")
    verdict = verify_bundle(document, trusted=anchor, path=path, states=state or ())
    if as_json:
        output.emit_json({k: v for k, v in verdict.to_json().items() if k != "schema_version"})
    elif verdict.verified:
        output.info(
            f"verified: '{verdict.artefact}' {verdict.cid} in state '{verdict.state}' at block "
            f"{verdict.anchor} ({len(verdict.checked)} checks)"
        )
    else:
        output.not_verified(bundle, verdict.reasons)
    if not verdict.verified:
        raise typer.Exit(1)
