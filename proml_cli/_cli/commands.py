"""Registers every command module's command on the application, in help order."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach every command to ``app``."""
    from proml_cli._cli import hash as hash_cmd

    hash_cmd.register(app)
