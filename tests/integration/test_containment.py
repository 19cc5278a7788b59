"""Containment: what proml reads as an artefact, writes on ``pull`` or puts in a record is inside
the project, every parent and symlink resolved; otherwise exit 2 before anything is written.

The escape is a symlinked parent directory (``data -> /elsewhere``): the policy's path is
lexically inside the project, the file is not.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _project import build_project, fork, journal_files, log_entries, ok, one_error_line, proml

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("containment") / "project", train=False)


@pytest.fixture
def project(base: Path, tmp_path: Path) -> Path:
    return fork(base, tmp_path / "project")


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    return outside


def _refused(root: Path, *args: str) -> str:
    result = proml(root, *args)
    assert result.code == 2, str(result)
    assert result.stdout == ""
    return one_error_line(result.stderr)


def test_an_input_behind_a_symlinked_parent_is_refused_before_the_command(
    project: Path, elsewhere: Path
) -> None:
    # The validated bytes, moved out of the project and linked back: a lookup by content alone
    # would accept them.
    shutil.move(project / "data", elsewhere / "data")
    (project / "data").symlink_to(elsewhere / "data", target_is_directory=True)
    before = log_entries(project)

    line = _refused(project, "run", "--", "python", "train.py")

    assert "input 'dataset'" in line
    assert "outside the project" in line
    assert not (project / "train.started").exists(), "the command started"
    assert log_entries(project) == before


def test_an_output_behind_a_symlinked_parent_is_refused_before_the_command(
    project: Path, elsewhere: Path
) -> None:
    (project / "out").symlink_to(elsewhere, target_is_directory=True)
    journal = journal_files(project)

    line = _refused(project, "run", "--", "python", "train.py")

    assert "output 'model'" in line
    assert str(elsewhere) in line
    assert not (project / "train.started").exists(), "the command started"
    assert list(elsewhere.iterdir()) == [], "something was written outside the project"
    assert journal_files(project) == journal


def test_pull_through_a_symlinked_parent_writes_nothing_outside(
    project: Path, elsewhere: Path
) -> None:
    (project / "exports").symlink_to(elsewhere, target_is_directory=True)

    for target in ("exports/data.csv", str(elsewhere / "data.csv")):
        line = _refused(project, "pull", "dataset", "-o", target)
        assert "outside the project" in line
    assert list(elsewhere.iterdir()) == []
    # Inside the project, the same pull works.
    ok(proml(project, "pull", "dataset", "-o", "pulled/data.csv"))
    assert (project / "pulled" / "data.csv").read_bytes() == (
        project / "data" / "data.csv"
    ).read_bytes()


def test_a_decision_on_a_file_outside_the_project_is_refused(
    project: Path, elsewhere: Path
) -> None:
    copy = elsewhere / "data.csv"
    shutil.copy(project / "data" / "data.csv", copy)

    line = _refused(project, "transition", "dataset", "deprecate", "--path", str(copy))

    assert "outside the project" in line


def test_records_hold_project_relative_paths_only(base: Path) -> None:
    def paths(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [v for k, v in node.items() if k in ("path", "cwd") and isinstance(v, str)]
            return found + [p for v in node.values() for p in paths(v)]
        if isinstance(node, list):
            return [p for v in node for p in paths(v)]
        return []

    done = sorted((base / ".proml" / "journal" / "done").glob("*.json"))
    assert done
    for entry in done:
        record = json.loads(entry.read_text())["record"]
        for path in paths(record):
            assert not path.startswith("/"), (entry.name, path)
            assert ".." not in path.split("/"), (entry.name, path)
