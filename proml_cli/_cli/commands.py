"""Registers every command module's command on the application, in help order."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach every command to ``app``."""
    from proml_cli._cli import (
        account,
        bundle,
        export,
        fsck,
        graph,
        hash,
        init,
        log,
        push,
        report,
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
        graph,
        report,
        verify,
        export,
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
