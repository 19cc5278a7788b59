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
