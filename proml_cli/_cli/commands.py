"""Registers every command module's command on the application, in help order."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach every command to ``app``."""
    from proml_cli._cli import (
        account,
        bundle,
        fsck,
        hash,
        init,
        log,
        push,
        roles,
        run,
        show,
        status,
        sync,
        transition,
        verify,
    )

    for module in (
        init,
        run,
        transition,
        log,
        show,
        verify,
        status,
        sync,
        push,
        hash,
        roles,
        account,
        bundle,
        fsck,
    ):
        module.register(app)
    from proml_cli.node import command as node

    node.register(app)
