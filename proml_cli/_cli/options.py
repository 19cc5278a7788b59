"""Shared option aliases, so every command spells its flags and environment variables alike."""

from __future__ import annotations

from typing import Annotated

import typer

PolicyOpt = Annotated[
    str | None,
    typer.Option(
        "--policy",
        envvar="PROML_POLICY",
        help="Policy file (default: proml.yaml here or in a parent directory).",
        show_default=False,
    ),
]
AccountOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        envvar="PROML_ACCOUNT",
        help="Local account that signs (default: 'default').",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")
]

#: The variables each kind of command reads (declared, with their meaning, in proml_cli.settings).
CHAIN_ENV = ("PROML_CHAIN_URL", "PROML_LOCK_TIMEOUT")
STORE_ENV = ("PROML_IPFS_URL",)
SIGNER_ENV = ("PROML_PRIVATE_KEY", "PROML_KEYSTORE_PASSWORD")


def environment(*names: str) -> str:
    """The ``Environment:`` block ending a command's help: ``names``, as settings declares them."""
    from proml_cli.settings import VARIABLES

    lines = "\n".join(f"  {name:<24} {VARIABLES[name]}" for name in dict.fromkeys(names))
    return f"\n\n\b\nEnvironment:\n{lines}"
