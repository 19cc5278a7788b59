"""The CLI's way into the library: the environment read once, the project opened from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proml_cli._cli import output

if TYPE_CHECKING:
    from proml_cli.api import Project
    from proml_cli.project import Project as Context
    from proml_cli.settings import Settings


def settings() -> Settings:
    """This process's ``PROML_*`` variables, read once per command (the CLI is the boundary)."""
    from proml_cli.settings import Settings

    return Settings.from_environ()


def open_context(policy: str | None, *, announce: bool = True) -> Context:
    """The loaded project for a command: ``--policy`` (or ``PROML_POLICY``), else found upwards.

    With ``announce``, the signer is named on stderr whenever one is chosen.
    """
    from proml_cli.project import load_project

    return load_project(policy, announce=output.info if announce else None, settings=settings())


def open_cli_project(policy: str | None, account: str | None = None) -> Project:
    """The public project for a command (see :func:`open_context`)."""
    from proml_cli.api import Project

    return Project(open_context(policy), account=account)
