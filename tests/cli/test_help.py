"""`--help` is documentation: examples keep their lines, every PROML_* variable is shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from proml_cli._cli.app import app

PACKAGE = Path(__file__).resolve().parents[2] / "proml_cli"
#: Commands whose help is checked elsewhere (none today).
ELSEWHERE: set[tuple[str, ...]] = set()


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_walk(sub, (*path, name)))
    return found


COMMANDS = _walk(get_command(app))


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.stderr
    return result.stdout


def example_lines(command: Any) -> list[str]:
    """The lines under ``Examples:`` in a command's help source."""
    text = "\n".join(t for t in (command.help, command.epilog) if t)
    block = text.split("Examples:", 1)[1] if "Examples:" in text else ""
    lines = []
    for line in block.splitlines()[1:]:
        if not line.startswith("  "):
            break
        lines.append(line.strip())
    return lines


@pytest.mark.parametrize(
    ("path", "command"),
    [(p, c) for p, c in COMMANDS if example_lines(c) and p not in ELSEWHERE],
    ids=lambda value: "-".join(value) if isinstance(value, tuple) else "",
)
def test_examples_keep_their_line_breaks(path: tuple[str, ...], command: Any) -> None:
    shown = {line.strip() for line in help_text(path).splitlines()}
    for example in example_lines(command):
        assert example in shown, f"{example!r} was reflowed in `proml {' '.join(path)} --help`"


def test_every_option_shows_its_environment_variable() -> None:
    for path, command in COMMANDS:
        envvars = [
            env
            for param in command.params
            for env in ([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
        ]
        if envvars:
            text = re.sub(r"\s+", " ", help_text(path))
            for env in envvars:
                assert f"env var: {env}" in text, (path, env)


def test_the_top_level_help_lists_every_variable_proml_reads() -> None:
    used = {
        name
        for source in PACKAGE.rglob("*.py")
        for name in re.findall(r"PROML_[A-Z_]+[A-Z]", source.read_text(encoding="utf-8"))
    }
    assert {"PROML_DEBUG", "PROML_CHAIN_URL", "PROML_REQUIRE_ANCHOR"} <= used
    text = help_text(())
    assert "Environment" in text
    missing = sorted(name for name in used if name not in text)
    assert missing == []


def test_each_library_variable_is_shown_by_the_commands_that_read_it() -> None:
    from proml_cli.settings import VARIABLES

    shown = {
        name
        for path, _ in COMMANDS
        if path
        for name in re.findall(r"PROML_[A-Z_]+[A-Z]", help_text(path))
    }
    declared = {name for name in VARIABLES if name.startswith("PROML_")}
    assert declared <= shown, declared - shown
    for path in (("run",), ("transition",), ("sync",)):
        text = help_text(path)
        for name in ("PROML_CHAIN_URL", "PROML_IPFS_URL", "PROML_PRIVATE_KEY"):
            assert name in text, (path, name)
