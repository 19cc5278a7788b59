"""The git state in a record: looked up only inside a work tree, gitpython imported only then."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _git_state_in(directory: Path) -> list[str]:
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from proml_cli.capture import git_state
        state = git_state(Path(sys.argv[1]))
        print(json.dumps(state))
        print("git" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(directory)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_outside_a_work_tree_gitpython_is_not_imported(tmp_path: Path) -> None:
    assert _git_state_in(tmp_path) == ["null", "False"]


def test_inside_a_work_tree_the_commit_is_recorded(tmp_path: Path) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    try:
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    except FileNotFoundError:
        pytest.skip("no git binary")
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "commit", "-qm", "one"],
        check=True,
        env={**os.environ, **env},
    )
    (tmp_path / "sub").mkdir()
    state, imported = _git_state_in(tmp_path / "sub")
    assert '"dirty": false' in state
    assert '"commit": "' in state
    assert imported == "True"
