"""House rules for the command line that every command must keep."""

from __future__ import annotations

from typing import Any

from typer.main import get_command

from proml_cli._cli.app import app


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_walk(sub, (*path, name)))
    return found


def test_no_flag_contains_an_underscore() -> None:
    bad = [
        (" ".join(path), opt)
        for path, command in _walk(get_command(app))
        for param in command.params
        for opt in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ()))
        if opt.startswith("-") and "_" in opt
    ]
    assert bad == []


def test_every_envvar_is_proml_prefixed() -> None:
    envvars = [
        env
        for _, command in _walk(get_command(app))
        for param in command.params
        for env in ([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
    ]
    assert envvars, "the shared options declare environment variables"
    assert all(env.startswith("PROML_") for env in envvars), envvars
