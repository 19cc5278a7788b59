"""The read side on in-memory fakes: status, show's resolution, role holders, the artefact a
path is checked as, and the public API's value checks (no chain, no store on disk)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _fakes import FakeReader, FakeStore, sha256

import proml_cli as proml
from proml_cli.api import _json_values
from proml_cli.history import History, HistoryStep, VersionHistory
from proml_cli.ledger import ChainEvent
from proml_cli.policy import Policy, load_policy
from proml_cli.queries import artefact_status, describe_ref, role_holders, which_artefact
from proml_cli.record import canonical_bytes

POLICY = """\
version: 1
project: unit
roles: [curator]
kinds:
  table:
    states: [raw, validated]
    initial: raw
    register: [curator]
    consumable: [validated]
    transitions:
      validate: {from: [raw], to: validated, roles: [curator]}
artefacts:
  dataset: {kind: table, path: data/data.csv}
  other: {kind: table, path: data/other.csv}
  absent: {kind: table, path: data/absent.csv}
steps:
  prepare:
    command: python prepare.py
    produces: [dataset]
"""

ACTOR = "0x" + "ab" * 20


def event(name: str, block: int, **args: object) -> ChainEvent:
    return ChainEvent(name, block, 1_700_000_000 + block, "0x" + f"{block:064x}", 0, dict(args))


def version(artefact: str, data: bytes, *states: str, record: str = "bafyrecord") -> VersionHistory:
    found = VersionHistory(artefact, sha256(data), "table", f"bafy{artefact}{len(data)}", [])
    source = None
    for block, target in enumerate(states, start=1):
        found.steps.append(
            HistoryStep(
                event("Registered" if source is None else "Transitioned", block),
                "register" if source is None else "validate",
                source,
                target,
                ACTOR,
                record,
                ("curator",),
            )
        )
        source = target
    return found


def history_of(*versions: VersionHistory, events: list[ChainEvent] | None = None) -> History:
    return History(
        events=events or [],
        kinds={},
        artefact_kinds={},
        versions={(v.artefact, v.digest): v for v in versions},
        admins=[],
        checked=True,
    )


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    (tmp_path / "proml.yaml").write_text(textwrap.dedent(POLICY))
    (tmp_path / "data").mkdir()
    return load_policy(tmp_path / "proml.yaml")


def test_status_classifies_every_artefact_file(policy: Policy) -> None:
    old, new = b"x\n1\n", b"x\n2\n"
    (policy.root / "data" / "data.csv").write_bytes(old)
    (policy.root / "data" / "other.csv").write_bytes(b"never recorded\n")
    history = history_of(
        version("dataset", old, "raw"), version("dataset", new, "raw", "validated")
    )

    rows = {row.artefact: row for row in artefact_status(policy, history)}

    assert rows["dataset"].status == "older-version"
    assert rows["dataset"].sha256 == f"sha256:{sha256(old)}"
    assert rows["dataset"].versions == 2
    assert rows["dataset"].recorded_state == "validated"
    assert rows["other"].status == "new"
    assert rows["absent"].status == "missing"
    assert rows["absent"].to_json()["sha256"] is None
    (policy.root / "data" / "data.csv").write_bytes(new)
    assert artefact_status(policy, history)[0].status == "unchanged"
    (policy.root / "data" / "data.csv").write_bytes(b"edited\n")
    assert artefact_status(policy, history)[0].status == "modified"


def test_show_resolves_a_name_a_content_cid_or_a_record_cid(policy: Policy) -> None:
    store = FakeStore()
    record = {"type": "https://proml.dev/record/decision/v1", "transition": "validate"}
    record_cid = store.put_bytes(canonical_bytes(record))
    dataset = version("dataset", b"a", "raw", "validated", record=record_cid)
    history = history_of(dataset)

    assert describe_ref(policy, history, store, "dataset").to_json()["state"] == "validated"
    assert describe_ref(policy, history, store, dataset.cid).to_json()["artefact"] == "dataset"
    assert describe_ref(policy, history, store, record_cid).to_json() == {
        "record_cid": record_cid,
        "record": record,
    }
    with pytest.raises(proml.InputError, match="no recorded version yet"):
        describe_ref(policy, history, store, "other")
    with pytest.raises(proml.InputError, match="neither an artefact nor a recorded CID"):
        describe_ref(policy, history, store, "datset")


def test_role_holders_come_from_storage_not_from_events() -> None:
    member, former = "0x" + "01" * 20, "0x" + "02" * 20
    reader = FakeReader(role_list=("curator", "auditor"), roles={member: ("curator",)})
    # The events name both accounts; storage says only one holds a role now.
    events = [
        event("RoleGranted", 1, account=member),
        event("RoleGranted", 2, account=former),
        event("RoleRevoked", 3, account=former),
    ]

    holders = role_holders(reader, history_of(events=events))

    assert holders.to_json() == {
        "admin": reader.admin_address,
        "roles": {"auditor": [], "curator": [member]},
    }


def test_a_path_is_checked_as_the_artefact_that_declares_it(policy: Policy) -> None:
    declared = policy.root / "data" / "data.csv"
    assert which_artefact(policy, declared, None) == "dataset"
    assert which_artefact(policy, Path("/elsewhere/model.bin"), "other") == "other"
    with pytest.raises(proml.InputError, match="not the path of an artefact"):
        which_artefact(policy, policy.root / "copy.csv", None)
    with pytest.raises(proml.InputError, match="unknown artefact 'nope'"):
        which_artefact(policy, declared, "nope")


def test_digest_owns_the_prefixed_form() -> None:
    hex_digest = sha256(b"x")
    digest = proml.Digest.parse(f"sha256:{hex_digest.upper()}")
    assert digest.hex == hex_digest
    assert str(digest) == digest.prefixed == f"sha256:{hex_digest}"
    assert digest.short == f"sha256:{hex_digest[:12]}"
    assert proml.Digest.parse(hex_digest) == digest
    with pytest.raises(proml.InputError, match="not a sha256 digest"):
        proml.Digest.parse("sha256:abc")


def test_settings_are_read_once_from_the_environment_given() -> None:
    settings = proml.Settings.from_environ(
        {"PROML_CHAIN_URL": "http://127.0.0.1:8545", "PROML_IPFS_URL": "", "HOME": "/x"}
    )
    assert settings == proml.Settings(chain_url="http://127.0.0.1:8545")
    with pytest.raises(AttributeError):
        settings.chain_url = "elsewhere"  # type: ignore[misc]


def test_logged_values_must_be_finite_json() -> None:
    assert _json_values({"a": [1, 2.5, {"b": None}], "c": True}, "params") == {
        "a": [1, 2.5, {"b": None}],
        "c": True,
    }
    with pytest.raises(proml.InputError, match=r"metrics loss is inf"):
        _json_values({"loss": float("inf")}, "metrics")
    with pytest.raises(proml.InputError, match="not a string"):
        _json_values({"a": {1: 2}}, "params")
    with pytest.raises(proml.InputError, match="must be a mapping"):
        _json_values([1, 2], "params")  # type: ignore[arg-type]


def test_the_reader_fake_answers_like_a_ledger() -> None:
    from proml_cli.ledger import LedgerReader, VersionRef

    reader: LedgerReader = FakeReader()
    assert reader.version(VersionRef("dataset", sha256(b""))) is None
    assert reader.history() == []
