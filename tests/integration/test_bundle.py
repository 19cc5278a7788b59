"""Offline evidence: `proml bundle create` on a real chain, `proml bundle verify` with none.

* a bundle made on anvil verifies after anvil is stopped; one from the embedded chain verifies
  with the project directory gone;
* each tampering is rejected (exit 1) naming the check that caught it: a flipped byte in a proof,
  a header, a receipt, a transaction or a record; a dropped event; a transition forged by a key
  without the role; a wrong trusted block; PATH with other bytes;
* bad input (no trusted block, a malformed one, a file that is not a bundle) exits 2.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rlp
from _project import build_project, ok, one_error_line, proml, write_project
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from services import anvil

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Made:
    bundle: Path
    trusted: str
    model: Path  # a copy of the model's bytes, outside any project
    document: dict[str, Any]


def _make(root: Path, out: Path, env: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    made = ok(
        proml(
            root, "bundle", "create", "model", "--deep", "--with-content", "-o", str(out), env=env
        )
    )
    trusted = made.stdout.strip()
    return trusted, json.loads(out.read_text())


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """A bundle of the trained-and-evaluated model on the embedded chain; the project removed."""
    base = tmp_path_factory.mktemp("bundle")
    root = build_project(base / "project")
    trusted, document = _make(root, base / "model.bundle")
    model = base / "model.bin"
    shutil.copy(root / "out" / "model.bin", model)
    shutil.rmtree(root)  # no project directory, no chain, no content store left
    return Made(base / "model.bundle", trusted, model, document)


def _build(root: Path, env: dict[str, str]) -> None:
    """:func:`build_project` against the chain ``env`` names."""
    write_project(root)
    for args in (
        ("init",),
        ("run", "--", "python", "prepare.py"),
        ("transition", "dataset", "validate"),
        ("run", "--", "python", "train.py"),
        ("run", "--", "python", "evaluate.py"),
    ):
        ok(proml(root, *args, env=env))


def _verify(
    made: Made, *args: str, document: dict[str, Any] | None = None, state: str = "evaluated"
) -> Any:
    """``bundle verify --json``, accepting the model's state (``--state``; "" for the default)."""
    path = made.bundle
    if document is not None:
        path = made.bundle.with_name(f"tampered-{keccak(text=json.dumps(document)).hex()}.json")
        path.write_text(json.dumps(document))
    states = ("--state", state) if state else ()
    return proml(path.parent, "bundle", "verify", str(path), *args, *states, "--json")


def _failed(made: Made, document: dict[str, Any], *args: str) -> list[str]:
    result = _verify(made, "--trusted-block", made.trusted, *args, document=document)
    assert result.code == 1, result
    assert result.stdout, result
    report = result.json()
    assert report["verified"] is False
    failed: list[str] = report["failed_checks"]
    return failed


def _flip(text: str, at: float = 0.5) -> str:
    """Flip one hex digit of ``0x…`` text, ``at`` of the way in."""
    i = 2 + int((len(text) - 2) * at)
    return text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1 :]


def test_an_embedded_chain_bundle_verifies_with_no_project(embedded: Made) -> None:
    result = ok(_verify(embedded, str(embedded.model), "--trusted-block", embedded.trusted))

    report = result.json()
    assert report["verified"] is True
    assert (report["artefact"], report["kind"], report["state"]) == (
        "model",
        "weights",
        "evaluated",
    )
    assert [s["action"] for s in report["steps"]] == ["register", "evaluate"]
    assert report["checked"][0] == "1 headers"
    assert len(report["checked"]) == 9


def test_each_proof_with_a_flipped_byte_is_rejected_by_the_proofs_check(embedded: Made) -> None:
    doc = embedded.document
    paths: list[tuple[str, ...]] = [
        ("tx_proof",),
        ("receipt_proof",),
        ("account_proof",),
        ("storage",),
    ]
    for (what,) in paths:
        tampered = copy.deepcopy(doc)
        if what == "account_proof":
            nodes = tampered["state"]["account_proof"]
        elif what == "storage":
            nodes = tampered["state"]["versions"][0]["proof"]
        else:
            nodes = tampered["transactions"][-1][what]
        nodes[0] = _flip(nodes[0])
        assert "proofs" in _failed(embedded, tampered), what


def test_a_flipped_header_byte_breaks_the_links(embedded: Made) -> None:
    for index in (0, len(embedded.document["headers"]) // 2, -1):
        tampered = copy.deepcopy(embedded.document)
        tampered["headers"][index] = _flip(tampered["headers"][index], 0.3)
        assert "headers" in _failed(embedded, tampered), index


def test_a_flipped_receipt_or_transaction_byte_is_rejected(embedded: Made) -> None:
    for field in ("receipt", "raw"):
        tampered = copy.deepcopy(embedded.document)
        entry = tampered["transactions"][-1]
        entry[field] = _flip(entry[field], 0.8)
        assert "proofs" in _failed(embedded, tampered), field


def test_a_flipped_record_byte_is_rejected_by_the_records_check(embedded: Made) -> None:
    tampered = copy.deepcopy(embedded.document)
    cid = sorted(tampered["records"])[0]
    data = bytearray(base64.b64decode(tampered["records"][cid]))
    data[len(data) // 2] ^= 0x01
    tampered["records"][cid] = base64.b64encode(bytes(data)).decode()

    assert _failed(embedded, tampered) == ["records"]


def test_a_dropped_event_changes_the_proven_head(embedded: Made) -> None:
    tampered = copy.deepcopy(embedded.document)
    evaluate = next(
        s["tx_hash"]
        for s in ok(_verify(embedded, "--trusted-block", embedded.trusted)).json()["steps"]
        if s["action"] == "evaluate"
    )
    tampered["transactions"] = [
        t
        for t in tampered["transactions"]
        if "0x" + keccak(bytes.fromhex(t["raw"][2:])).hex() != evaluate
    ]

    failed = _failed(embedded, tampered)
    assert "events" in failed
    assert "state" in failed


def test_a_transition_forged_by_a_key_without_the_role_is_named(embedded: Made) -> None:
    """Re-sign the evaluate transaction with a stranger's key and make its event name them."""
    stranger = Account.create()
    tampered = copy.deepcopy(embedded.document)
    steps = ok(_verify(embedded, "--trusted-block", embedded.trusted)).json()["steps"]
    evaluate = next(s["tx_hash"] for s in steps if s["action"] == "evaluate")
    entry = next(
        t
        for t in tampered["transactions"]
        if "0x" + keccak(bytes.fromhex(t["raw"][2:])).hex() == evaluate
    )
    raw = bytes.fromhex(entry["raw"][2:])
    assert raw[0] == 2  # EIP-1559
    chain_id, nonce, tip, fee, gas, to, value, data, _access, _v, _r, _s = rlp.decode(raw[1:])
    forged = stranger.sign_transaction(
        {
            "type": 2,
            "chainId": int.from_bytes(chain_id, "big"),
            "nonce": int.from_bytes(nonce, "big"),
            "maxPriorityFeePerGas": int.from_bytes(tip, "big"),
            "maxFeePerGas": int.from_bytes(fee, "big"),
            "gas": int.from_bytes(gas, "big"),
            "to": to_checksum_address("0x" + to.hex()),
            "value": int.from_bytes(value, "big"),
            "data": "0x" + data.hex(),
        }
    )
    entry["raw"] = "0x" + bytes(forged.raw_transaction).hex()
    receipt = bytes.fromhex(entry["receipt"][2:])
    status, gas_used, bloom, logs = rlp.decode(receipt[1:])
    for log in logs:
        if len(log[1]) == 4:  # Transitioned: artefact, digest, actor indexed
            log[1][3] = bytes(12) + bytes.fromhex(stranger.address[2:])
    entry["receipt"] = "0x" + (receipt[:1] + rlp.encode([status, gas_used, bloom, logs])).hex()

    failed = _failed(embedded, tampered)
    assert "roles" in failed
    assert "proofs" in failed
    report = _verify(embedded, "--trusted-block", embedded.trusted, document=tampered).json()
    assert any(
        "who did not hold role 'trainer'" in r and stranger.address in r for r in report["reasons"]
    )


def test_a_wrong_trusted_block_is_rejected_by_the_headers_check(embedded: Made) -> None:
    number, block_hash = embedded.trusted.split(":")
    for trusted in (f"{number}:{_flip(block_hash)}", f"{int(number) - 1}:{block_hash}"):
        result = _verify(embedded, "--trusted-block", trusted)
        assert result.code == 1
        assert result.json()["failed_checks"][0] == "headers"


def test_path_with_other_bytes_is_rejected_by_the_content_check(embedded: Made) -> None:
    other = embedded.model.with_name("other.bin")
    other.write_bytes(embedded.model.read_bytes() + b"\n")

    result = _verify(embedded, str(other), "--trusted-block", embedded.trusted)

    assert result.code == 1
    assert result.json()["failed_checks"] == ["content"]


def test_bad_input_exits_2_with_one_line(embedded: Made, tmp_path: Path) -> None:
    no_block = proml(tmp_path, "bundle", "verify", str(embedded.bundle))
    assert no_block.code == 2
    assert "--trusted-block" in one_error_line(no_block.stderr)

    malformed = proml(tmp_path, "bundle", "verify", str(embedded.bundle), "--trusted-block", "x")
    assert malformed.code == 2
    assert "NUMBER:HASH" in one_error_line(malformed.stderr)

    (tmp_path / "junk.json").write_text("[1, 2]")
    junk = proml(tmp_path, "bundle", "verify", "junk.json", "--trusted-block", embedded.trusted)
    assert junk.code == 2
    assert "not a proml bundle" in one_error_line(junk.stderr)
    assert junk.stdout == ""


def test_a_bundle_made_on_anvil_verifies_after_anvil_is_stopped(tmp_path: Path) -> None:
    root = tmp_path / "project"
    with anvil(tmp_path) as url:
        env = {"PROML_CHAIN_URL": url, "XDG_CACHE_HOME": str(tmp_path / "cache")}
        _build(root, env)
        trusted, document = _make(root, tmp_path / "model.bundle", env=env)
    assert document["chain_id"] == 31337
    model = shutil.copy(root / "out" / "model.bin", tmp_path / "model.bin")
    shutil.rmtree(root)
    made = Made(tmp_path / "model.bundle", trusted, Path(model), document)

    report = ok(_verify(made, str(made.model), "--trusted-block", trusted)).json()

    assert report["verified"] is True
    assert report["state"] == "evaluated"
    tampered = copy.deepcopy(document)
    tampered["state"]["versions"][0]["proof"][-1] = _flip(
        tampered["state"]["versions"][0]["proof"][-1]
    )
    assert "proofs" in _failed(made, tampered)


def test_create_names_a_version_by_digest_or_cid_and_refuses_unknown_ones(tmp_path: Path) -> None:
    root = build_project(tmp_path / "project", train=False)
    shown = ok(proml(root, "show", "dataset", "--json")).json()
    digest = shown["sha256"].removeprefix("sha256:")

    for spec in (f"dataset@{digest[:10]}", f"dataset@sha256:{digest}", f"dataset@{shown['cid']}"):
        out = tmp_path / "dataset.bundle"
        made = ok(proml(root, "bundle", "create", spec, "-o", str(out)))
        document = json.loads(out.read_text())
        assert document["subject"] == {"artefact": "dataset", "digest": digest}
        assert document["content"] is None
        assert made.stdout.strip() == (
            f"{document['anchor']['number']}:{document['anchor']['hash']}"
        )

    for spec, message in (
        ("model", "'model' has no recorded version"),
        ("dataset@ffff", "no version of 'dataset' matches"),
    ):
        refused = proml(root, "bundle", "create", spec, "-o", str(tmp_path / "x.bundle"))
        assert refused.code == 2, refused
        assert message in one_error_line(refused.stderr)
        assert refused.stdout == ""
    assert not (tmp_path / "x.bundle").exists()


def test_a_state_the_kind_does_not_consume_is_not_verified_without_state(embedded: Made) -> None:
    result = _verify(embedded, "--trusted-block", embedded.trusted, state="")

    assert result.code == 1
    report = result.json()
    assert report["failed_checks"] == ["state"]
    assert "is in state 'evaluated', accepted: approved" in report["reasons"][0]


def test_a_lineage_version_left_out_of_a_deep_bundle_is_named(embedded: Made) -> None:
    tampered = copy.deepcopy(embedded.document)
    kept = [v for v in tampered["state"]["versions"] if v["artefact"] != "dataset"]
    assert len(kept) == len(tampered["state"]["versions"]) - 1
    tampered["state"]["versions"] = kept

    failed = _failed(embedded, tampered)

    assert failed == ["lineage"]


def test_an_identity_naming_another_deployment_is_rejected(embedded: Made) -> None:
    assert embedded.document["identity"] is not None
    for key in ("deploy_block_hash", "admin", "deploy_tx"):
        tampered = copy.deepcopy(embedded.document)
        tampered["identity"][key] = _flip(tampered["identity"][key])
        assert _failed(embedded, tampered) == ["signatures"], key


def test_no_flipped_digit_anywhere_in_the_evidence_verifies_or_crashes(embedded: Made) -> None:
    """Flip one character of 80 evidence values chosen with a fixed seed; none may pass."""
    from proml_cli.bundle.format import parse_trusted
    from proml_cli.bundle.verify import verify_bundle
    from proml_cli.errors import InputError

    leaves: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*path, key])
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, [*path, i])
        elif isinstance(node, str) and len(node) > 4:
            leaves.append(path)

    evidence = ("headers", "transactions", "state", "records", "content")
    walk({k: embedded.document[k] for k in evidence}, [])
    rng = random.Random(14)  # noqa: S311 - a fixed choice of places to tamper, not a secret
    trusted = parse_trusted(embedded.trusted)
    for _ in range(80):
        path = rng.choice(leaves)
        tampered = copy.deepcopy(embedded.document)
        node = tampered
        for key in path[:-1]:
            node = node[key]
        text = node[path[-1]]
        i = rng.randrange(2, len(text))
        alphabet = "0123456789abcdef" if text.startswith("0x") else "ABCDEFGHIJabcdefghij0123456789"
        node[path[-1]] = text[:i] + rng.choice(alphabet.replace(text[i], "")) + text[i + 1 :]
        try:
            verdict = verify_bundle(tampered, trusted=trusted, states=["evaluated"])
        except InputError:
            continue  # e.g. a digit flipped into a non-hex one: bad input, exit 2
        assert not verdict.verified, (path, i)
