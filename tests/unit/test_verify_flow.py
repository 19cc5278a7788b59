"""The gate, end to end on in-memory fakes: steps record, then ``verify`` answers from them.

The fake ledger applies submissions as the contract does (events, storage words committing to
them), so every check of :mod:`proml_cli.verify` runs unchanged, in seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _fakes import FakeProject, fake_project

from proml_cli.api import Project
from proml_cli.capture import decide, run_step
from proml_cli.errors import VerificationFailed

POLICY = """\
version: 1
project: gate
roles: [maker, checker]
kinds:
  table:
    states: [raw, ok, bad]
    initial: raw
    register: [maker]
    consumable: [ok]
    transitions:
      accept: {from: [raw], to: ok, roles: [checker]}
      reject: {from: [raw, ok], to: bad, roles: [checker]}
artefacts:
  data: {kind: table, path: data.csv}
  model: {kind: table, path: model.bin}
steps:
  prepare:
    command: [python, prepare.py]
    produces: [data]
  train:
    command: [python, train.py]
    uses: {data: null}
    produces: [model]
"""

SCRIPTS = {
    "prepare.py": "open('data.csv', 'w').write('x\\n1\\n')\n",
    "train.py": "open('model.bin', 'w').write(open('data.csv').read() + 'weights')\n",
}


@pytest.fixture
def trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeProject:
    """data prepared and accepted, model trained from it: every step through the real flows."""
    monkeypatch.chdir(tmp_path)
    for name, body in SCRIPTS.items():
        (tmp_path / name).write_text(body)
    project = fake_project(tmp_path, POLICY)
    for step in ("prepare", "train"):
        outcome = run_step(project, [sys.executable, f"{step}.py"], step_name=step)
        assert outcome.recorded, outcome.messages
        if step == "prepare":
            assert decide(project, "data", "accept").recorded
    return project


def test_a_trained_model_is_verified_by_every_check(trained: FakeProject) -> None:
    verdict = Project(trained).verify("data.csv")  # accepted: in a consumable state

    assert verdict.verified, verdict.reasons
    assert (verdict.artefact, verdict.state) == ("data", "ok")
    assert [c.split(":")[0] for c in verdict.checked] == ["1", "2", "3", "4", "5"]
    assert "2 step(s)" in verdict.checked[0]


def test_deep_verification_walks_the_lineage(trained: FakeProject) -> None:
    verdict = Project(trained).verify("model.bin", states=("raw",), deep=True)

    assert verdict.verified, verdict.reasons
    assert any("data" in line for line in verdict.checked if line.startswith("6"))


def test_the_state_must_be_accepted(trained: FakeProject) -> None:
    verdict = Project(trained).verify("model.bin")  # model is raw: consumable is only ok

    assert not verdict.verified
    assert verdict.reasons == ["3: 'model' is in state 'raw', accepted: ok"]


def test_modified_bytes_are_not_a_recorded_version(trained: FakeProject) -> None:
    (trained.root / "data.csv").write_text("x\n2\n")

    with pytest.raises(VerificationFailed) as caught:
        Project(trained).verify_or_raise("data.csv")

    (reason,) = caught.value.reasons
    assert reason.startswith("1: the content (sha256:")
    assert "is not a recorded version of 'data'" in reason


def test_an_event_missing_from_the_index_is_reported_never_believed(
    trained: FakeProject,
) -> None:
    events = trained.fake_ledger.events
    events.remove(next(e for e in events if e.name == "Transitioned"))

    verdict = Project(trained).verify("data.csv")

    assert not verdict.verified
    assert "does not match the contract" in verdict.reasons[0]


def test_a_record_missing_from_the_store_fails_check_5(trained: FakeProject) -> None:
    anchored = trained.fake_ledger.submitted[-1]  # the model's registration
    del trained.fake_store.blocks[anchored]

    verdict = Project(trained).verify("model.bin", states=("raw",))

    assert not verdict.verified
    assert verdict.reasons == [
        f"5: record {anchored} of 'register': missing from the content store"
    ]
