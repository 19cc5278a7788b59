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
