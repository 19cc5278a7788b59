"""Every export of the example pipeline (examples/breast-cancer/run.sh) on the embedded chain.

The script runs once for the module (about a minute); every export is then read back by the
format's own library, made twice to compare bytes, and searched for the accounts' keys.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import _validate
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from _project import example_workspace, ok, proml, skip_without_sklearn

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FORMATS = ("slsa", "prov", "cyclonedx", "spdx3", "openlineage")

skip_without_sklearn()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_workspace(tmp_path_factory, "export-example", timeout=600)


@pytest.fixture(scope="module")
def addresses(workspace: Path) -> dict[str, str]:
    accounts = ok(proml(workspace, "account", "list", "--json")).json()["accounts"]
    return {a["name"]: a["address"] for a in accounts}


@pytest.fixture(scope="module")
def keys(workspace: Path) -> list[str]:
    """The accounts' private keys (the embedded chain's keystores have an empty password)."""
    from eth_account import Account

    found = []
    for path in sorted((workspace / ".proml" / "keys").glob("*.json")):
        key = Account.decrypt(json.loads(path.read_text()), "")
        found.append(bytes(key).hex())
    assert found
    return found


def _export(workspace: Path, *args: str) -> bytes:
    result = ok(proml(workspace, "export", *args))
    return result.stdout.encode()


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_of_the_example_is_valid_stable_and_keyless(
    workspace: Path, keys: list[str], name: str
) -> None:
    for args in ((), ("model", "--deep")):
        first = _export(workspace, name, *args)
        assert first == _export(workspace, name, *args)
        _validate.export(name, first)
        for key in keys:
            assert key.encode() not in first.lower()


def test_slsa_of_the_model_names_its_training_run_and_anchors(workspace: Path) -> None:
    statement = json.loads(_export(workspace, "slsa", "model"))
    model = ok(proml(workspace, "show", "model", "--json")).json()

    assert statement["subject"][0]["name"] == "models/model.pkl"
    assert statement["subject"][0]["digest"]["sha256"] == model["sha256"].removeprefix("sha256:")
    assert statement["subject"][0]["uri"] == f"ipfs://{model['cid']}"
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["command"] == ["python", "train.py"]
    assert [d["name"] for d in build["resolvedDependencies"]] == ["train-set", "params.yaml"]
    details = statement["predicate"]["runDetails"]
    assert details["metadata"]["invocationId"] == model["steps"][0]["record_cid"]
    anchored = [
        b["annotations"] for b in details["byproducts"] if "transaction" in b.get("annotations", {})
    ]
    assert [(a["transaction"], a["block"]) for a in anchored] == [
        (s["tx_hash"], s["block"]) for s in model["steps"]
    ]


def test_openlineage_has_one_event_per_run(workspace: Path) -> None:
    events = _validate.openlineage_events(_export(workspace, "openlineage"))

    assert [e.job.name for e in events] == ["prepare", "train", "evaluate"]
    assert {e.job.namespace for e in events} == {"breast-cancer"}


def test_signed_slsa_verifies_offline_against_the_signer_only(
    workspace: Path, addresses: dict[str, str], tmp_path: Path
) -> None:
    from proml_cli.errors import VerificationFailed
    from proml_cli.export import dsse

    target = tmp_path / "model.dsse.json"
    result = ok(proml(workspace, "export", "slsa", "model", "--sign", "-o", str(target)))

    assert result.stdout == ""
    envelope = json.loads(target.read_text())
    payload = dsse.verify(envelope, addresses["default"])
    assert (
        payload
        == json.dumps(
            json.loads(_export(workspace, "slsa", "model")), sort_keys=True, separators=(",", ":")
        ).encode()
    )
    _validate.in_toto_statement(json.loads(payload))
    with pytest.raises(VerificationFailed):
        dsse.verify(envelope, addresses["intern"])


def test_verify_attest_writes_a_vsa_for_passed_and_failed(workspace: Path, tmp_path: Path) -> None:
    passed = tmp_path / "passed.vsa.json"
    ok(proml(workspace, "verify", "models/model.pkl", "--deep", "--attest", str(passed)))
    vsa = json.loads(passed.read_text())
    _validate.in_toto_statement(vsa)

    assert vsa["predicate"]["verificationResult"] == "PASSED"
    assert vsa["predicate"]["dependencyLevels"] == {"LINEAGE_VERIFIED_BY_PROML": 2}
    log = ok(proml(workspace, "log", "--json")).json()["entries"]
    assert {a["uri"] for a in vsa["predicate"]["inputAttestations"]} == {
        f"ipfs://{e['record_cid']}" for e in log
    }

    failed = tmp_path / "failed.vsa.json"
    result = proml(
        workspace, "verify", "models/model.pkl", "--state", "trained", "--attest", str(failed)
    )
    assert result.code == 1
    vsa = json.loads(failed.read_text())
    _validate.in_toto_statement(vsa)
    assert vsa["predicate"]["verificationResult"] == "FAILED"


def test_export_usage_errors_are_one_line_and_exit_2(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for args in (("provv",), ("prov", "no-such-artefact"), ("prov", "model@bafkreinope")):
        result = proml(workspace, "export", *args)
        assert (result.code, result.stdout) == (2, ""), str(result)
        assert result.stderr.startswith("proml: error: ")

    monkeypatch.delitem(sys.modules, "proml_cli.export.spdx3", raising=False)
    monkeypatch.setitem(sys.modules, "spdx_python_model", None)
    monkeypatch.setitem(sys.modules, "spdx_python_model.bindings", None)
    monkeypatch.setitem(sys.modules, "spdx_python_model.bindings.v3_0_1", None)
    result = proml(workspace, "export", "spdx3")
    assert (result.code, result.stdout) == (2, "")
    assert "install proml's 'export' extra" in result.stderr


def test_a_file_that_cannot_be_written_is_one_line_and_exit_2(
    workspace: Path, tmp_path: Path
) -> None:
    taken = tmp_path / "a-directory"
    taken.mkdir()
    for args in (
        ("verify", "models/model.pkl", "--attest", str(taken)),
        ("export", "prov", "-o", str(taken)),
    ):
        result = proml(workspace, *args)
        assert result.code == 2, str(result)
        assert result.stderr.startswith(f"proml: error: {taken}: cannot write it"), str(result)
        assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [taken]  # no temporary file left behind
    assert list(taken.iterdir()) == []
