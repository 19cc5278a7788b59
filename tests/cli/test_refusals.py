"""Every refusal says what would make it pass: close names, allowed transitions and roles, and
the next command to run. One real project (embedded chain and store) per module.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from _project import Result, build_project, fork, ok, one_error_line, proml

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("refusals") / "project")


def refusal(result: Result, code: int) -> tuple[str, str]:
    """The error line and the hint line (empty when there is none) of a refused command."""
    assert result.code == code, str(result)
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    hints = [h for h in result.stderr.splitlines() if h.startswith("hint: ")]
    return line, hints[0] if hints else ""


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["transition", "datset", "validate"], "did you mean 'dataset'?"),
        (["transition", "dataset", "valdate"], "did you mean 'validate'?"),
        (["run", "--step", "trian", "--", "python", "train.py"], "did you mean 'train'?"),
        (["log", "modle"], "did you mean 'model'?"),
        (["show", "modl"], "did you mean 'model'?"),
        (["transition", "dataset", "deprecate", "--as", "defualt"], "did you mean 'default'?"),
        (["roles", "grant", "verifier", "defualt"], "did you mean 'default'?"),
    ],
    ids=lambda value: "-".join(value[:2]) if isinstance(value, list) else None,
)
def test_unknown_names_get_a_did_you_mean(project: Path, args: list[str], fragment: str) -> None:
    line, _ = refusal(proml(project, *args), 2)
    assert fragment in line, line


def test_a_wrong_state_names_the_transitions_the_state_allows(project: Path) -> None:
    # The model is 'evaluated'; 'evaluate' fires only from 'trained'.
    line, hint = refusal(proml(project, "transition", "model", "evaluate"), 1)
    assert "is in state 'evaluated'" in line
    assert "fires only from 'trained'" in line
    assert "approve, reject" in hint
    assert "proml transition model approve" in hint


def test_a_refused_input_names_the_transition_that_would_admit_it(
    project: Path, tmp_path: Path
) -> None:
    work = fork(project, tmp_path / "work")
    prepare = work / "prepare.py"
    prepare.write_text(prepare.read_text().replace("3,0", "3,1"))
    ok(proml(work, "run", "--", "python", "prepare.py"))  # a new, raw version of the dataset
    (work / "train.started").unlink()  # left by the module project's own training
    line, hint = refusal(proml(work, "run", "--", "python", "train.py"), 1)
    assert "is in state 'raw'" in line
    assert "`proml transition dataset validate`" in hint
    assert not (work / "train.started").exists()


def test_an_unrecorded_version_names_the_step_that_records_it(
    project: Path, tmp_path: Path
) -> None:
    work = fork(project, tmp_path / "work")
    (work / "data" / "data.csv").write_text("x,y\nedited by hand\n")
    line, hint = refusal(proml(work, "transition", "dataset", "deprecate"), 1)
    assert "is not a recorded version of 'dataset'" in line
    assert "`proml run -- python prepare.py`" in hint


def test_a_missing_role_names_the_roles_allowed_and_held(project: Path, tmp_path: Path) -> None:
    work = fork(project, tmp_path / "work")
    ok(proml(work, "account", "new", "guest"))
    line, hint = refusal(proml(work, "transition", "model", "approve", "--as", "guest"), 1)
    assert "allowed: verifier" in line
    assert "it holds: no role" in line
    assert "proml roles grant verifier 0x" in hint
