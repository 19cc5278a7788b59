"""The run lifecycle and a decision, phase by phase, on in-memory fakes of ledger and store.

The fakes count how often a command opens the ledger: once before the work (plan and check
the materials) and once after it (new versions, journal, anchor), never while the work runs,
so another proml process (or the work itself) may use the chain meanwhile.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _fakes import FakeProject, fake_project

from proml_cli.capture import decide, prepare, record_run, run_step
from proml_cli.errors import RefusedError
from proml_cli.journal import Journal
from proml_cli.ledger import VersionState
from proml_cli.record import utc_now

POLICY = """\
version: 1
project: unit
roles: [maker]
kinds:
  table:
    states: [raw, ok]
    initial: raw
    register: [maker]
    consumable: [ok]
    transitions:
      accept: {from: [raw], to: ok, roles: [maker]}
artefacts:
  data: {kind: table, path: data.csv}
  model: {kind: table, path: model.bin}
steps:
  train:
    command: [python, train.py]
    uses: {data: null}
    produces: [model]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeProject:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("x\n1\n")
    return fake_project(tmp_path, POLICY)


def _accept_data(project: FakeProject) -> None:
    from proml_cli.content import hash_path

    digest = hash_path(project.root / "data.csv").sha256
    project.fake_ledger.versions[("data", digest)] = VersionState("data", digest, "table", "ok")


def _argv() -> list[str]:
    return ["python", "train.py"]


def test_an_input_not_recorded_refuses_the_step_before_the_work(project: FakeProject) -> None:
    with pytest.raises(RefusedError) as caught:
        prepare(project, _argv())

    assert "input 'data' (data.csv" in caught.value.diagnosis
    assert "is not a recorded version" in caught.value.diagnosis
    assert project.fake_ledger.opens == 1
    assert project.fake_ledger.submitted == []


def test_an_input_in_the_wrong_state_names_the_transition_to_fire(project: FakeProject) -> None:
    _accept_data(project)
    key = next(iter(project.fake_ledger.versions))
    project.fake_ledger.versions[key] = VersionState(*key, "table", "raw")

    with pytest.raises(RefusedError) as caught:
        prepare(project, _argv())

    assert "is in state 'raw', step 'train' requires 'ok'" in caught.value.diagnosis
    assert caught.value.hint is not None
    assert "`proml transition data accept`" in caught.value.hint


def test_a_step_registers_its_product_with_the_ledger_opened_once_on_each_side_of_the_work(
    project: FakeProject,
) -> None:
    _accept_data(project)

    prepared = prepare(project, _argv())
    assert project.fake_ledger.opens == 1  # plan and materials share one open
    (project.root / "model.bin").write_text("weights")  # the work, with no ledger open
    outcome = record_run(project, prepared, command=_argv(), started=utc_now(), ended=utc_now())

    assert project.fake_ledger.opens == 2  # new-version check, journal and anchor share one
    assert outcome.recorded
    assert not outcome.journaled
    assert [m["artefact"] for m in outcome.materials] == ["data"]
    assert [(p["artefact"], p["path"]) for p in outcome.products] == [("model", "model.bin")]
    assert project.fake_ledger.submitted == [outcome.record_cid]
    states = {(a, s.state) for (a, _), s in project.fake_ledger.versions.items()}
    assert states == {("data", "ok"), ("model", "raw")}
    record = project.fake_store.blocks[str(outcome.record_cid)]
    assert b'"user":"tester"' in record  # the environment summary comes from the settings
    assert Journal(project.state_dir / "journal").pending() == []


def test_run_step_runs_the_command_between_the_two_opens(project: FakeProject) -> None:
    _accept_data(project)
    (project.root / "train.py").write_text("open('model.bin', 'w').write('weights')\n")

    # Chosen by name: this interpreter's path is not the policy's `python`.
    outcome = run_step(project, [sys.executable, "train.py"], step_name="train")

    assert outcome.exit_code == 0, outcome.messages
    assert outcome.recorded
    assert project.fake_ledger.opens == 2


def test_a_failed_command_records_nothing_and_opens_the_ledger_once(project: FakeProject) -> None:
    _accept_data(project)

    outcome = run_step(project, [sys.executable, "-c", "raise SystemExit(3)"], step_name="train")

    assert outcome.exit_code == 3
    assert not outcome.recorded
    assert project.fake_ledger.opens == 1
    assert project.fake_ledger.submitted == []


def test_a_product_left_over_from_before_is_not_a_product(project: FakeProject) -> None:
    _accept_data(project)
    (project.root / "model.bin").write_text("old weights")
    prepared = prepare(project, _argv())

    with pytest.raises(RefusedError, match="unchanged since before it ran"):
        record_run(project, prepared, command=_argv(), started=utc_now(), ended=utc_now())
    assert project.fake_ledger.submitted == []


def test_an_input_changed_during_the_work_is_refused(project: FakeProject) -> None:
    import os

    _accept_data(project)
    prepared = prepare(project, _argv())
    (project.root / "model.bin").write_text("weights")
    data = project.root / "data.csv"
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 1_000_000))

    with pytest.raises(RefusedError, match="inputs changed while the command ran"):
        record_run(project, prepared, command=_argv(), started=utc_now(), ended=utc_now())


def test_a_decision_moves_the_version_with_one_open(project: FakeProject) -> None:
    from proml_cli.content import hash_path

    digest = hash_path(project.root / "data.csv").sha256
    project.fake_ledger.versions[("data", digest)] = VersionState("data", digest, "table", "raw")

    outcome = decide(project, "data", "accept", note="looks right")

    assert outcome.recorded
    assert project.fake_ledger.opens == 1
    assert project.fake_ledger.versions[("data", digest)].state == "ok"


def test_a_decision_on_bytes_the_ledger_never_saw_is_refused(project: FakeProject) -> None:
    with pytest.raises(RefusedError, match="is not a recorded version of 'data'"):
        decide(project, "data", "accept")
    assert project.fake_ledger.submitted == []
    assert Journal(project.state_dir / "journal").pending() == []


def test_a_decision_with_the_chain_down_is_journaled_and_sync_anchors_it_with_one_open(
    project: FakeProject,
) -> None:
    from proml_cli.anchoring import sync
    from proml_cli.content import hash_path

    digest = hash_path(project.root / "data.csv").sha256
    project.fake_ledger.versions[("data", digest)] = VersionState("data", digest, "table", "raw")
    project.fake_ledger.down = True

    outcome = decide(project, "data", "accept")

    assert outcome.journaled
    assert not outcome.recorded
    assert outcome.unreachable == "the chain at fake://chain is unreachable"
    assert project.fake_ledger.opens == 1
    (pending,) = Journal(project.state_dir / "journal").pending()
    assert pending.record_cid == outcome.record_cid

    project.fake_ledger.down = False
    project.fake_ledger.opens = 0
    results = sync(project)

    assert [(r["record_cid"], r["status"]) for r in results] == [(outcome.record_cid, "anchored")]
    assert project.fake_ledger.opens == 1
    assert project.fake_ledger.versions[("data", digest)].state == "ok"
    assert Journal(project.state_dir / "journal").pending() == []


def test_a_run_with_the_chain_down_after_the_work_is_journaled(project: FakeProject) -> None:
    _accept_data(project)
    prepared = prepare(project, _argv())
    (project.root / "model.bin").write_text("weights")
    project.fake_ledger.down = True

    outcome = record_run(project, prepared, command=_argv(), started=utc_now(), ended=utc_now())

    assert outcome.journaled
    assert not outcome.recorded
    (pending,) = Journal(project.state_dir / "journal").pending()
    assert [r.version.artefact for r in pending.registrations] == ["model"]
    assert project.fake_ledger.submitted == []
