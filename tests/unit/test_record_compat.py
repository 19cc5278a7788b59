"""Records written by this version, pinned as bytes: later versions must read them unchanged.

Each file under tests/data/compat/ is a record exactly as it was stored and anchored (its name
carries its CID). The typed models must read every one, write it back to the same bytes (so
the same CID), and name the versions the ledger anchored it for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proml_cli.content import bytes_cid
from proml_cli.record import (
    DecisionRecord,
    RunRecord,
    canonical_bytes,
    parse_record,
    read_record,
    versions_in,
)

COMPAT = Path(__file__).resolve().parents[1] / "data" / "compat"
GOLDEN = sorted(COMPAT.glob("*.json"))


def cid_of(path: Path) -> str:
    return path.name.split(".")[1]


def test_the_golden_records_are_there() -> None:
    kinds = {path.name.split(".")[0] for path in GOLDEN}
    assert kinds >= {"run-v1", "run-fires-v1", "run-logged-v1", "decision-v1"}


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name.split(".")[0])
def test_a_golden_record_reads_and_writes_back_to_the_same_bytes(path: Path) -> None:
    data = path.read_bytes()
    cid = cid_of(path)
    assert bytes_cid(data) == cid

    record = read_record(data, cid=cid)

    assert canonical_bytes(record.to_json()) == data
    assert versions_in(parse_record(data, cid=cid))  # names what it was anchored for


def test_a_run_record_exposes_its_fields() -> None:
    (path,) = COMPAT.glob("run-logged-v1.*.json")
    record = read_record(path.read_bytes(), cid=cid_of(path))
    assert isinstance(record, RunRecord)
    assert record.step == "train"
    assert [m.artefact for m in record.materials] == ["dataset"]
    assert [p.artefact for p in record.products] == ["model"]
    assert len(record.products[0].sha256) == 64  # the model holds the bare hex
    assert record.logged_params == {"epochs": 3, "lr": 0.1}
    assert record.logged_metrics == {"accuracy": 0.93}


def test_a_decision_record_exposes_its_subject() -> None:
    (path,) = COMPAT.glob("decision-v1.*.json")
    record = read_record(path.read_bytes(), cid=cid_of(path))
    assert isinstance(record, DecisionRecord)
    assert record.transition == "validate"
    assert record.subject.artefact == "dataset"
    assert ("dataset", record.subject.sha256) in versions_in(record.to_json())


def test_fields_of_a_later_version_are_kept() -> None:
    (path,) = COMPAT.glob("run-v1.*.json")
    document = parse_record(path.read_bytes(), cid=cid_of(path))
    document["added_later"] = {"x": 1}
    record = RunRecord.from_json(document)
    assert record.to_json() == document
