"""`proml hash`: placeholder until the content module lands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    _ = app
