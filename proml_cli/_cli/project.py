"""The CLI's way into the library: the public project, opened from ``--policy``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proml_cli._cli import output

if TYPE_CHECKING:
    from proml_cli.api import Project


def open_cli_project(policy: str | None, account: str | None = None) -> Project:
    """The project for a command: ``--policy`` (or ``PROML_POLICY``), else found upwards.

    The signer, whenever one is chosen, is announced on stderr.
    """
    from proml_cli.api import Project
    from proml_cli.project import load_project

    return Project(load_project(policy, announce=output.info), account=account)
