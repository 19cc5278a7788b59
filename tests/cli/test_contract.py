"""The CLI's output contract, command by command.

* every read command's ``--json``: the exit code, exactly one JSON object on stdout carrying
  ``schema_version`` and the keys the README documents, nothing JSON on stderr;
* every error: exit 2, empty stdout, one ``proml: error:`` line on stderr (a ``hint:`` line may
  follow it) and never a traceback;
* every command's ``--help``: exit 0 and the exit-code table.

The read commands run against one real project (embedded chain and store) built per module.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from proml_cli._cli.app import app

# The project builder is shared with the integration tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from _project import Result, build_project, one_error_line, proml

LOG_KEYS = {
    "time",
    "block",
    "tx_hash",
    "actor",
    "roles",
    "artefact",
    "sha256",
    "cid",
    "action",
    "from",
    "to",
    "record_cid",
    "by",
}
SHOW_KEYS = {"artefact", "kind", "sha256", "cid", "state", "inputs", "used_by", "steps", "record"}
VERIFY_KEYS = {
    "verified",
    "path",
    "artefact",
    "sha256",
    "cid",
    "kind",
    "state",
    "reasons",
    "checked",
    "lineage",
}
STATUS_KEYS = {
    "artefact",
    "path",
    "status",
    "sha256",
    "recorded_cid",
    "recorded_state",
    "versions",
}
HASH_KEYS = {"path", "type", "size", "sha256", "cid"}

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("contract") / "project")


def document(result: Result, code: int = 0) -> dict[str, object]:
    """Check the --json contract of one call and return its document."""
    assert result.code == code, str(result)
    assert result.stdout.count("\n") == 1, result.stdout  # one document, one line
    parsed = json.loads(result.stdout)
    assert isinstance(parsed, dict), result.stdout
    assert parsed["schema_version"] == 1
    assert "schema_version" not in result.stderr
    assert not any(line.lstrip().startswith(("{", "[")) for line in result.stderr.splitlines())
    return parsed


def has_keys(row: object, keys: set[str]) -> None:
    assert isinstance(row, dict), row
    assert keys <= set(row), sorted(keys - set(row))


# ------------------------------------------------------------------------- read commands


@pytest.mark.integration
def test_log_json(project: Path) -> None:
    doc = document(proml(project, "log", "--json"))
    entries = doc["entries"]
    assert isinstance(entries, list)
    assert len(entries) == 4  # dataset: register, validate; model: register, evaluate
    for entry in entries:
        has_keys(entry, LOG_KEYS)
        assert RFC3339_UTC.match(entry["time"]), entry["time"]
        assert DIGEST.match(entry["sha256"]), entry["sha256"]
        assert isinstance(entry["block"], int)
    blocks = [e["block"] for e in entries]
    assert blocks == sorted(blocks, reverse=True)  # newest first

    only = document(proml(project, "log", "model", "--limit", "1", "--json"))["entries"]
    assert isinstance(only, list)
    assert [(e["artefact"], e["action"]) for e in only] == [("model", "evaluate")]


@pytest.mark.integration
def test_show_json(project: Path) -> None:
    doc = document(proml(project, "show", "model", "--json"))
    has_keys(doc, SHOW_KEYS)
    assert DIGEST.match(str(doc["sha256"]))
    steps = doc["steps"]
    assert isinstance(steps, list)
    assert steps
    record_cid = steps[0]["record_cid"]
    record = document(proml(project, "show", record_cid, "--json"))
    assert record["record_cid"] == record_cid
    assert isinstance(record["record"], dict)


@pytest.mark.integration
def test_verify_json_answers_yes_and_no(project: Path) -> None:
    yes = document(proml(project, "verify", "out/model.bin", "--state", "evaluated", "--json"))
    has_keys(yes, VERIFY_KEYS)
    assert yes["verified"] is True
    assert yes["reasons"] == []

    # Not approved: a negative answer is data (exit 1 with the report on stdout).
    no = document(proml(project, "verify", "out/model.bin", "--json"), code=1)
    has_keys(no, VERIFY_KEYS)
    assert no["verified"] is False
    assert no["reasons"]


@pytest.mark.integration
def test_status_json(project: Path) -> None:
    rows = document(proml(project, "status", "--json"))["artefacts"]
    assert isinstance(rows, list)
    assert [r["artefact"] for r in rows] == ["dataset", "model", "report"]
    for row in rows:  # the missing report too: keys are never left out
        has_keys(row, STATUS_KEYS)


@pytest.mark.integration
def test_hash_json(project: Path) -> None:
    doc = document(proml(project, "hash", "data/data.csv", "--json"))
    has_keys(doc, HASH_KEYS)
    assert (doc["type"], doc["size"]) == ("file", len((project / "data/data.csv").read_bytes()))


@pytest.mark.integration
def test_sync_json(project: Path) -> None:
    assert document(proml(project, "sync", "--json"))["entries"] == []


@pytest.mark.integration
def test_roles_list_json(project: Path) -> None:
    doc = document(proml(project, "roles", "list", "--json"))
    roles = doc["roles"]
    assert isinstance(roles, dict)
    assert {"curator", "trainer", "verifier"} <= set(roles)
    assert all(doc["admin"] in holders for holders in roles.values())


@pytest.mark.integration
def test_account_list_json(project: Path) -> None:
    doc = document(proml(project, "account", "list", "--json"))
    accounts = doc["accounts"]
    assert isinstance(accounts, list)
    assert [a["name"] for a in accounts] == ["default"]
    has_keys(accounts[0], {"name", "address"})


# ------------------------------------------------------------------------- errors


def assert_usage_error(result: Result) -> str:
    assert result.code == 2, str(result)
    assert result.stdout == ""
    return one_error_line(result.stderr)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["log", "no-such-artefact", "--json"], "unknown artefact 'no-such-artefact'"),
        (["show", "no-such-artefact", "--json"], "'no-such-artefact'"),
        (["verify", "missing.bin", "--json"], "missing.bin"),
        (["hash", "missing.bin", "--json"], "missing.bin"),
        (["transition", "no-such-artefact", "validate"], "unknown artefact 'no-such-artefact'"),
        (["run", "--", "python", "unknown.py"], "no step"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_errors_are_one_line_on_stderr(project: Path, args: Sequence[str], fragment: str) -> None:
    line = assert_usage_error(proml(project, *args))
    assert fragment in line, line


@pytest.mark.parametrize(
    "args",
    [
        ["log", "--json"],
        ["show", "model", "--json"],
        ["verify", "model.bin", "--json"],
        ["status", "--json"],
        ["sync", "--json"],
        ["roles", "list", "--json"],
        ["account", "list", "--json"],
        ["run", "--", "python", "train.py"],
    ],
    ids=lambda args: "-".join(a for a in args if not a.startswith("-")),
)
def test_no_policy_in_cwd(tmp_path: Path, args: Sequence[str]) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    line = assert_usage_error(proml(tmp_path, *args))
    assert "no proml.yaml" in line, line


# ------------------------------------------------------------------------- help


def command_paths() -> list[list[str]]:
    """Every command and subcommand of the application, from its click tree."""
    import typer

    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        # A group (Typer vendors click: duck-type it rather than import click).
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


COMMANDS = command_paths()


def test_the_command_tree_is_complete() -> None:
    expected = {"init", "run", "transition", "log", "show", "verify", "status", "sync", "hash"}
    expected |= {"roles grant", "roles revoke", "roles list", "account new", "account list"}
    assert expected <= {" ".join(c) for c in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c) or "proml")
def test_help_shows_the_exit_codes(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.stderr
    assert "Exit codes" in result.stdout
