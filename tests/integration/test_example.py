"""The example pipeline (examples/breast-cancer/run.sh) end to end, then checked and tampered with.

The script runs once per module (about 30 s); the tests then read its workspace. It needs
scikit-learn (the ``examples`` extra): without it the module is skipped, except on CI.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _project import example_workspace, fork, ok, process_env, proml, skip_without_sklearn

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "models/model.pkl"

skip_without_sklearn()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_workspace(tmp_path_factory, "example", timeout=300)


def test_pipeline_produces_the_model(workspace: Path) -> None:
    assert (workspace / MODEL).is_file()
    assert (workspace / "deploy" / "model.pkl").read_bytes() == (workspace / MODEL).read_bytes()


def test_model_verifies_with_its_lineage(workspace: Path) -> None:
    report = ok(proml(workspace, "verify", MODEL, "--deep", "--json")).json()

    assert report["verified"] is True, report["reasons"]
    assert (report["artefact"], report["kind"], report["state"]) == (
        "model",
        "classifier",
        "approved",
    )
    # The registration's input, then the test set the `evaluate` transition's run used.
    assert [(i["artefact"], i["state"], i["via"]) for i in report["lineage"]] == [
        ("train-set", "validated", "register"),
        ("test-set", "validated", "evaluate"),
    ]


def test_log_shows_the_transitions_in_order_and_no_refused_approval(workspace: Path) -> None:
    entries = ok(proml(workspace, "log", "--json")).json()["entries"]
    accounts = ok(proml(workspace, "account", "list", "--json")).json()["accounts"]
    address = {a["name"]: a["address"].lower() for a in accounts}

    oldest_first = list(reversed(entries))
    assert [(e["artefact"], e["action"], e["from"], e["to"]) for e in oldest_first] == [
        ("train-set", "register", None, "received"),
        ("test-set", "register", None, "received"),
        ("train-set", "validate", "received", "validated"),
        ("test-set", "validate", "received", "validated"),
        ("model", "register", None, "trained"),
        ("model", "evaluate", "trained", "evaluated"),
        ("model", "approve", "evaluated", "approved"),
    ]
    # The intern's approval was refused by the contract: it left no event at all.
    assert "intern" in address
    assert all(e["actor"].lower() == address["default"] for e in entries)
    approval = oldest_first[-1]
    assert approval["roles"] == ["model-verifier"]
    assert approval["by"] == "decision approve"


@pytest.fixture
def tampered(workspace: Path) -> Iterator[Path]:
    """The workspace with one byte appended to the model; restored afterwards."""
    model = workspace / MODEL
    original = model.read_bytes()
    model.write_bytes(original + b"\0")
    try:
        yield workspace
    finally:
        model.write_bytes(original)


def test_tampered_model_fails_verification_until_restored(tampered: Path) -> None:
    result = proml(tampered, "verify", MODEL, "--json")

    assert result.code == 1, str(result)
    report = result.json()
    assert report["verified"] is False
    assert report["artefact"] == "model"  # inferred from the policy's path
    assert len(report["reasons"]) == 1, report["reasons"]
    assert report["reasons"][0].startswith("1: "), report["reasons"]  # check 1: a recorded version
    assert "is not a recorded version of 'model'" in report["reasons"][0]

    (tampered / MODEL).write_bytes((tampered / MODEL).read_bytes()[:-1])
    restored = ok(proml(tampered, "verify", MODEL, "--json")).json()
    assert restored["verified"] is True
    assert restored["state"] == "approved"


@pytest.fixture(scope="module")
def in_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example with training captured in-process (train_in_script.py, the public API)."""
    extra = {"PROML_EXAMPLE_IN_SCRIPT": "1"}
    return example_workspace(tmp_path_factory, "example-in-script", extra, timeout=300)


def test_in_script_training_records_like_run_and_deploy_verifies_first(in_script: Path) -> None:
    model = ok(proml(in_script, "show", "model", "--json")).json()
    record = model["record"]
    assert model["state"] == "approved"
    assert record["step"] == "train"
    assert [m["artefact"] for m in record["materials"]] == ["train-set"]
    assert record["params"][0]["path"] == "params.yaml"  # the policy's captured file, as by run
    assert record["logged_params"] == {"test_fraction": 0.2, "seed": 7, "C": 1.0, "max_iter": 2000}
    assert 0.9 < record["logged_metrics"]["train_accuracy"] <= 1.0
    # deploy.py loaded the model only after verify_or_raise passed on the copy it loaded.
    assert (in_script / "deploy" / "model.pkl").read_bytes() == (in_script / MODEL).read_bytes()
    report = ok(proml(in_script, "verify", MODEL, "--deep", "--json")).json()
    assert report["verified"] is True, report["reasons"]


def test_deploy_refuses_a_model_that_is_not_the_approved_version(
    in_script: Path, tmp_path: Path
) -> None:
    work = fork(in_script, tmp_path / "work")
    tampered = work / "tampered.pkl"
    tampered.write_bytes((work / MODEL).read_bytes() + b"\0")
    done = subprocess.run(
        [sys.executable, "deploy.py", "tampered.pkl"],
        cwd=work,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "deploy: refused:" in done.stderr
    assert "is not a recorded version of 'model'" in done.stderr
    assert not (work / "deploy" / "model.pkl").exists()
