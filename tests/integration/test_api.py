"""The public Python API on the embedded chain: in-process steps, the gate, the read side.

A step run from Python must check its inputs before the body, record exactly like ``proml
run`` on a clean exit, record nothing on an exception, and leave the process alone (no signal
handler, nothing on stdio), also from a worker thread of a process without a terminal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _project import _CLEARED, build_project, fork, journal_files, log_entries, process_env

import proml_cli as proml

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose dataset is prepared and validated (the model not trained yet)."""
    return build_project(tmp_path_factory.mktemp("api") / "project", train=False)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def root(base: Path, tmp_path: Path) -> Path:
    return fork(base, tmp_path / "project")


def train(root: Path) -> None:
    (root / "out").mkdir(exist_ok=True)
    (root / "out" / "model.bin").write_text("weights of the in-process step\n")


def test_a_step_records_its_products_params_and_metrics_like_run(root: Path) -> None:
    project = proml.open_project(root / "data")  # found upwards, like git

    with project.step("train") as step:
        step.log_params({"epochs": 3, "lr": 0.1})
        train(root)
        proml.log_metrics({"accuracy": 0.93})

    outcome = step.outcome
    assert outcome is not None
    assert outcome.recorded, outcome
    assert [p["artefact"] for p in outcome.products] == ["model"]
    assert journal_files(root)["pending"] == []
    newest = log_entries(root, "model")[0]
    assert (newest["action"], newest["to"], newest["record_cid"]) == (
        "register",
        "trained",
        outcome.record_cid,
    )
    shown = project.show("model")
    record = shown.record
    assert record is not None
    assert record["type"] == "https://proml.dev/record/run/v1"
    assert record["step"] == "train"
    assert record["logged_params"] == {"epochs": 3, "lr": 0.1}
    assert record["logged_metrics"] == {"accuracy": 0.93}
    assert [m["artefact"] for m in record["materials"]] == ["dataset"]
    assert isinstance(shown, proml.VersionDetail)
    assert shown.inputs[0].artefact == "dataset"
    typed = project.record(str(outcome.record_cid))
    assert isinstance(typed, proml.RunRecord)
    assert typed.logged_metrics == {"accuracy": 0.93}
    assert [p.artefact for p in typed.products] == ["model"]
    assert {s.artefact: s.status for s in project.status()}["model"] == "unchanged"

    verdict = project.verify(root / "out" / "model.bin", states=["trained"], deep=True)
    assert verdict.verified, verdict.reasons
    assert verdict.artefact == "model"
    assert verdict.state == "trained"
    assert [entry["artefact"] for entry in verdict.lineage] == ["dataset"]


def test_a_refused_input_stops_the_step_before_its_body(root: Path) -> None:
    (root / "data" / "data.csv").write_text("x,y\n9,9\n")
    project = proml.open_project(root)
    ran = []

    with pytest.raises(proml.RefusedError) as refused, project.step("train"):
        ran.append(True)

    assert ran == []
    assert "input 'dataset'" in refused.value.diagnosis
    assert refused.value.exit_code == proml.ExitCode.NEGATIVE


def test_an_exception_in_the_body_records_nothing_and_propagates(root: Path) -> None:
    before = log_entries(root)
    project = proml.open_project(root)

    step = project.step("train")

    def failing() -> None:
        with step:
            train(root)
            step.log_metrics({"loss": 1.0})
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        failing()

    assert step.outcome is None
    assert log_entries(root) == before
    assert journal_files(root)["pending"] == []


def test_a_missing_product_is_refused_and_nothing_is_recorded(root: Path) -> None:
    before = log_entries(root)
    with (
        pytest.raises(proml.RefusedError, match="did not produce 'model'"),
        proml.open_project(root).step("train"),
    ):
        pass
    assert log_entries(root) == before


def test_logged_values_must_be_json_a_record_can_hold(root: Path) -> None:
    with pytest.raises(proml.InputError, match="no proml step is running"):
        proml.log_params({"a": 1})
    step = proml.open_project(root).step("train")
    with step:
        with pytest.raises(proml.InputError, match="finite"):
            step.log_metrics({"loss": float("nan")})
        with pytest.raises(proml.InputError, match="not a JSON value"):
            step.log_params({"when": object()})
        train(root)
    assert step.outcome is not None
    assert step.outcome.recorded
    assert step.metrics == {}


def test_verify_or_raise_gates_a_load_and_transition_moves_the_version(root: Path) -> None:
    project = proml.open_project(root)
    with project.step("train"):
        train(root)
    model = root / "out" / "model.bin"

    with pytest.raises(proml.VerificationFailed) as failed:
        proml.verify_or_raise(model)  # 'trained' is not consumable: 'approved' is
    assert any(
        reason.startswith("3: 'model' is in state 'trained'") for reason in failed.value.reasons
    )

    outcome = project.transition("model", "evaluate", note="looked fine")
    assert outcome.recorded, outcome
    project.transition("model", "approve")
    verdict = proml.verify_or_raise(model, deep=True)
    assert verdict.verified
    assert verdict.state == "approved"
    assert [r.action for r in project.log("model", limit=2)] == ["approve", "evaluate"]
    assert set(project.roles().roles) >= {"curator", "trainer", "verifier"}


SCRIPT = """
import sys
import threading

import proml_cli as proml

assert not any(m.split(".")[0] in ("web3", "eth_account", "evm") for m in sys.modules), "eager"
results = []


@proml.step("train")
def train():
    proml.log_params({"threaded": True})
    open("out/model.bin", "w").write("weights trained in a worker thread\\n")
    return "trained"


def worker():
    try:
        results.append(train())
        results.append(proml.current_step)
    except BaseException as exc:
        results.append(exc)


thread = threading.Thread(target=worker)
thread.start()
thread.join()
assert results[0] == "trained", results
"""


def test_a_decorated_step_runs_in_a_worker_thread_without_a_terminal(root: Path) -> None:
    (root / "out").mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT)],
        cwd=root,
        env=process_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""
    newest = log_entries(root, "model")[0]
    record = proml.open_project(root).show(newest["record_cid"]).record
    assert record["logged_params"] == {"threaded": True}


def test_importing_the_package_loads_no_chain_library() -> None:
    code = (
        "import sys, json, proml_cli;"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('web3', 'eth_account', 'eth_abi', 'evm', 'py_ecc', 'typer', 'rich', 'yaml'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == []
    assert set(proml.__all__) >= {
        "open_project",
        "step",
        "verify_or_raise",
        "Verdict",
        "RefusedError",
        "Digest",
        "LedgerReader",
    }
    for name in proml.__all__:
        assert getattr(proml, name) is not None
