"""Configuration is read once, at the boundary: no library module reads the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import proml_cli

PACKAGE = Path(proml_cli.__file__).parent

#: Where the environment may be read: the command line, the public API's entry, and the one
#: module that turns the environment into :class:`proml_cli.settings.Settings`; and the
#: project's node, a process boundary itself (its client forwards the caller's environment, its
#: server hands each command the environment of the process that sent it).
BOUNDARY = ("_cli/", "api.py", "settings.py", "node/")

_ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _reads(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in _ENV_NAMES:
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Attribute) and node.attr == "from_environ":
            found.append((node.lineno, "Settings.from_environ"))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found.extend(
                (node.lineno, f"from os import {a.name}")
                for a in node.names
                if a.name in _ENV_NAMES
            )
    return found


def test_no_module_below_the_boundary_reads_the_environment() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(BOUNDARY):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [f"{relative}:{line}: {what}" for line, what in _reads(tree)]
    assert offenders == [], "read the environment in proml_cli/settings.py instead"


def test_the_check_finds_each_way_of_reading_it() -> None:
    source = (
        "import os\n"
        "from os import getenv\n"
        "a = os.environ.get('X')\n"
        "b = os.getenv('Y')\n"
        "c = Settings.from_environ()\n"
    )
    found = [what for _, what in _reads(ast.parse(source))]
    assert sorted(found) == sorted(
        [".environ", ".getenv", "Settings.from_environ", "from os import getenv"]
    )


def test_every_library_variable_is_read_by_settings() -> None:
    from proml_cli.settings import VARIABLES, Settings

    unset = Settings.from_environ({})
    for name in VARIABLES:
        # Each declared variable lands in a field: none is declared but ignored.
        assert Settings.from_environ({name: "7"}) != unset, name


def test_a_bad_lock_timeout_is_named() -> None:
    import pytest

    from proml_cli.errors import InputError
    from proml_cli.settings import Settings

    with pytest.raises(InputError, match="PROML_LOCK_TIMEOUT is not a number of seconds"):
        Settings.from_environ({"PROML_LOCK_TIMEOUT": "soon"})


def test_secrets_stay_out_of_the_repr() -> None:
    from proml_cli.settings import Settings

    shown = repr(Settings(private_key="0x" + "ab" * 32, keystore_password="hunter2"))
    assert "abab" not in shown
    assert "hunter2" not in shown
