"""Broken policies through the CLI: exit 2, nothing on stdout, one located line on stderr.

Each case copies a policy from the bad-policy corpus (``tests/data/policies/bad/``) to
``proml.yaml`` in an empty directory and runs ``proml status`` there. The corpus's
``expected.json`` holds each file's exact message, located as ``bad/<file>:LINE:COL``; through
the CLI the same message must name the policy file proml found instead. Nothing here reaches
the chain: the policy is checked before anything else.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from proml_cli._cli.app import app

BAD = Path(__file__).resolve().parents[1] / "data" / "policies" / "bad"
EXPECTED: dict[str, str] = json.loads((BAD / "expected.json").read_text())

#: A spread over the four stages of the checks (file, version, schema, references).
CASES = [
    "control_character.yaml",  # file: YAML syntax
    "duplicate_key.yaml",  # file: a key given twice
    "alias_bomb.yaml",  # file: alias expansion (the message holds [n] that is not markup)
    "multiple_documents.yaml",  # file: more than one document
    "missing_version.yaml",  # version
    "bad_chain_backend.yaml",  # schema: a value
    "command_unclosed_quote.yaml",  # schema: a command that cannot be split
    "absolute_artefact_path.yaml",  # schema: a path rule
    "consumable_not_in_states.yaml",  # references: a state
    "fires_unknown_transition.yaml",  # references: a transition
]


def run_status(directory: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.chdir(directory)
    result = CliRunner().invoke(app, ["status"], env={"PROML_POLICY": None, "PROML_DEBUG": None})
    return result.exit_code, result.stdout, result.stderr


def expected_tail(name: str) -> str:
    """The corpus message without its ``bad/<file>`` prefix: ``:LINE:COL: key: reason``."""
    message = EXPECTED[name]
    prefix = f"bad/{name}"
    assert message.startswith(prefix), message
    return message[len(prefix) :]


def test_the_cases_exist() -> None:
    assert len(CASES) >= 6
    for name in CASES:
        assert (BAD / name).is_file(), name
        assert re.match(r"^:\d+:\d+: ", expected_tail(name)), EXPECTED[name]


@pytest.mark.parametrize("name", CASES)
def test_broken_policy_is_one_located_line(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(BAD / name, tmp_path / "proml.yaml")

    code, stdout, stderr = run_status(tmp_path, monkeypatch)

    assert code == 2, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    head = "proml: error: "
    tail = expected_tail(name)
    assert lines[0].startswith(head), lines[0]
    assert lines[0].endswith(tail), (lines[0], tail)
    assert lines[0][len(head) : -len(tail)].endswith("proml.yaml"), lines[0]
    assert not (tmp_path / ".proml").exists()  # nothing was changed


@pytest.mark.parametrize("name", CASES[:2])
def test_policy_found_in_cwd_is_named_proml_yaml(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(BAD / name, tmp_path / "proml.yaml")

    _, _, stderr = run_status(tmp_path, monkeypatch)

    assert stderr.splitlines() == [f"proml: error: proml.yaml{expected_tail(name)}"]
