"""Every export format built from a fake history, read back by the format's own library.

No chain and no daemon: the history is folded from hand-made ledger events and the records are
in an in-memory store (see ``_history.py``). The integration test does the same on the example
pipeline's real chain.
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import replace

import _history
import _validate
import pytest

from proml_cli.errors import InputError, VerificationFailed
from proml_cli.export import FORMATS, builder, dsse, export, render, select, slsa, vsa
from proml_cli.export.facts import resolve
from proml_cli.verify import Verdict

ALL = tuple(FORMATS)
DATASET_SHA = _history.sha256(_history.DATASET)
MODEL_SHA = _history.sha256(_history.MODEL)


@pytest.fixture(scope="module")
def facts() -> object:
    return _history.facts()


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("ref", [None, "model", "dataset"])
def test_every_export_is_valid_deterministic_and_keeps_no_secret(facts, name, ref) -> None:
    first = export(select(facts, ref, deep=True), name)
    again = export(select(_history.facts(), ref, deep=True), name)

    assert first == again
    _validate.export(name, first)
    for secret in _history.SECRETS:
        assert secret.encode() not in first


def test_slsa_statement_names_the_run_its_inputs_and_the_chain(facts) -> None:
    statement = json.loads(export(select(facts, "model"), "slsa"))
    _validate.in_toto_statement(statement)

    assert statement["subject"][0]["digest"] == {"sha256": MODEL_SHA}
    assert statement["subject"][0]["uri"].startswith("ipfs://bafk")
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["step"] == "train"
    assert build["externalParameters"]["params"] == {"layers.hidden": 4, "lr": 0.1}
    assert build["externalParameters"]["policy_digest"] == "sha256:" + "ab" * 32
    names = [(d["name"], d["digest"]) for d in build["resolvedDependencies"]]
    assert ("dataset", {"sha256": DATASET_SHA}) in names
    assert ("git", {"gitCommit": "f" * 40}) in names
    details = statement["predicate"]["runDetails"]
    model = facts.version(("model", MODEL_SHA))
    assert details["metadata"]["invocationId"] == model.registered.record_cid
    events = [b for b in details["byproducts"] if b["name"].startswith("ledger-event/")]
    assert [e["annotations"]["action"] for e in events] == ["register", "evaluate", "approve"]
    assert events[-1]["annotations"]["chain"] == "eip155:31337"
    assert events[-1]["annotations"]["roles"] == ["verifier"]


def test_slsa_of_the_project_is_one_statement_per_version_as_json_lines(facts) -> None:
    lines = export(facts, "slsa").splitlines()

    subjects = [json.loads(line)["subject"][0]["annotations"]["artefact"] for line in lines]
    assert subjects == ["dataset", "model"]


def test_prov_has_versions_runs_decisions_changes_and_agents(facts) -> None:
    document = _validate.prov_document(export(facts, "prov"))
    provn = document.get_provn()

    assert "wasDerivedFrom(version:model/" in provn
    assert 'prov:type="proml:Decision"' in provn
    assert provn.count('prov:type="proml:StateChange"') == 5
    assert "wasAssociatedWith(" in provn
    assert 'prov:role="verifier"' in provn
    raw = json.loads(export(facts, "prov"))
    assert len(raw["agent"]) == 2
    assert {"used", "wasGeneratedBy", "wasAttributedTo", "wasInformedBy"} <= set(raw)


def test_cyclonedx_calls_the_model_a_model_with_a_card(facts) -> None:
    bom = json.loads(export(facts, "cyclonedx"))
    kinds = {c["name"]: c["type"] for c in bom["components"]}

    assert kinds == {"dataset": "data", "model": "machine-learning-model"}
    model = next(c for c in bom["components"] if c["name"] == "model")
    card = model["modelCard"]
    assert card["modelParameters"]["datasets"] == [{"ref": f"dataset@sha256:{DATASET_SHA}"}]
    metrics = {m["type"]: m["value"] for m in card["quantitativeAnalysis"]["performanceMetrics"]}
    assert metrics == {"accuracy": "0.9", "auc": "0.95"}
    assert {"name": "proml:state", "value": "approved"} in model["properties"]
    assert bom["dependencies"][1] == {
        "ref": f"model@sha256:{MODEL_SHA}",
        "dependsOn": [f"dataset@sha256:{DATASET_SHA}"],
    }


def test_cyclonedx_model_option_overrides_the_name_rule() -> None:
    found, store = _history.history()
    from proml_cli.export.facts import collect

    facts = collect(
        history=found, store=store, policy=_history.policy(), chain=_history.CHAIN, models=[]
    )
    bom = json.loads(export(facts, "cyclonedx"))
    assert {c["type"] for c in bom["components"]} == {"data"}


def test_spdx3_has_ai_and_dataset_packages_trained_and_tested_on(facts) -> None:
    objects = _validate.spdx3_objects(export(facts, "spdx3"))
    from spdx_python_model.bindings import v3_0_1 as spdx

    (model,) = objects.foreach_type(spdx.ai_AIPackage)
    (dataset,) = objects.foreach_type(spdx.dataset_DatasetPackage)
    kinds = {
        r.relationshipType.rsplit("/", 1)[-1]: (r.from_, list(r.to))
        for r in objects.foreach_type(spdx.Relationship)
    }
    assert kinds == {"trainedOn": (model, [dataset]), "testedOn": (model, [dataset])}
    assert {(e.key, e.value) for e in model.ai_metric} == {("accuracy", "0.9"), ("auc", "0.95")}
    assert model.verifiedUsing[0].hashValue == MODEL_SHA


def test_openlineage_one_event_per_run_with_states_at_the_time(facts) -> None:
    events = _validate.openlineage_events(export(facts, "openlineage"))

    assert [e.job.name for e in events] == ["prepare", "train", "evaluate"]
    evaluate = events[-1]
    assert evaluate.job.namespace == "demo"
    states = {d.name: d.facets["proml"]["state"] for d in evaluate.inputs}
    # After the evaluate run's own transition, before the approval.
    assert states == {"model": "evaluated", "dataset": "validated"}
    assert events[0].run.runId[14] == "7"  # a UUIDv7
    assert len({e.run.runId for e in events}) == 3


def test_selection_by_version_and_errors(facts) -> None:
    model = facts.version(("model", MODEL_SHA))

    assert resolve(facts, f"model@{model.cid}") == model
    assert resolve(facts, f"model@sha256:{MODEL_SHA}") == model
    assert resolve(facts, f"model@{MODEL_SHA[:8]}") == model
    assert [v.artefact for v in select(facts, "dataset").versions] == ["dataset"]
    with pytest.raises(InputError, match="has no recorded version"):
        select(facts, "modle")
    with pytest.raises(InputError, match="is not a recorded version"):
        select(facts, "model@bafkreiunknown")


def test_unknown_format_and_missing_extra_are_usage_errors(monkeypatch) -> None:
    with pytest.raises(InputError, match=r"unknown export format 'provv'.*prov"):
        builder("provv")
    monkeypatch.delitem(sys.modules, "proml_cli.export.openlineage", raising=False)
    monkeypatch.setitem(sys.modules, "openlineage", None)
    monkeypatch.setitem(sys.modules, "openlineage.client", None)
    monkeypatch.setitem(sys.modules, "openlineage.client.event_v2", None)
    with pytest.raises(InputError) as caught:
        builder("openlineage")
    assert "openlineage-python" in caught.value.diagnosis
    assert "PATH/TO/proml[export]" in (caught.value.hint or "")


def test_dsse_envelope_verifies_offline_against_the_signer_only(facts) -> None:
    from eth_account import Account

    signer = Account.from_key("0x" + "42" * 32)
    statement = slsa.statement(facts, facts.version(("model", MODEL_SHA)))
    envelope = dsse.sign(render(statement), signer)

    assert envelope["signatures"][0]["keyid"] == signer.address
    assert dsse.verify(envelope, signer.address.lower()) == render(statement)
    assert ("42" * 32).encode() not in json.dumps(envelope).encode()
    with pytest.raises(VerificationFailed, match="not signed by"):
        dsse.verify(envelope, "0x" + "11" * 20)
    forged = dict(envelope, payload=base64.b64encode(b'{"_type": "other"}').decode())
    with pytest.raises(VerificationFailed):
        dsse.verify(forged, signer.address)
    with pytest.raises(InputError, match="not a DSSE envelope"):
        dsse.verify({"payload": "x"}, signer.address)


def test_the_documented_consumer_recipe_needs_only_eth_account(facts) -> None:
    """docs/export.md's check with eth-account alone, on an envelope proml signed."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    signer = Account.from_key("0x" + "42" * 32)
    envelope = json.loads(json.dumps(dsse.sign(render(slsa.statements(facts)[0]), signer)))

    payload = base64.b64decode(envelope["payload"])
    kind = envelope["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    assert Account.recover_message(encode_defunct(primitive=pae), signature=signature) == (
        signer.address
    )


def test_vsa_passed_and_failed_are_valid_statements() -> None:
    verdict = Verdict(
        path="out/model.bin",
        artefact="model",
        sha256=MODEL_SHA,
        cid="bafkreiexample",
        lineage=[{"artefact": "dataset", "sha256": "sha256:" + DATASET_SHA}],
    )
    records = [("bafkreirecord", "ee" * 32)]
    passed = vsa.summary(
        verdict,
        policy_digest="sha256:" + "cd" * 32,
        policy_uri="urn:proml:demo:policy",
        records=records,
        deep=True,
        time_verified="2026-01-01T00:00:00Z",
    )
    _, predicate = _validate.in_toto_statement(passed)
    assert predicate.verification_result == "PASSED"
    assert passed["predicate"]["verifiedLevels"] == ["LINEAGE_VERIFIED_BY_PROML"]
    assert passed["predicate"]["inputAttestations"][0]["uri"] == "ipfs://bafkreirecord"

    failed = vsa.summary(
        replace(verdict, reasons=["3: wrong state"]),
        policy_digest="sha256:" + "cd" * 32,
        policy_uri="urn:proml:demo:policy",
        records=records,
        deep=False,
        time_verified="2026-01-01T00:00:00Z",
    )
    _, predicate = _validate.in_toto_statement(failed)
    assert predicate.verification_result == "FAILED"
    assert failed["predicate"]["verifiedLevels"] == ["FAILED"]
