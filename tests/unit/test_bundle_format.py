"""The bundle's outer format and the offline verifier's import boundary (no chain needed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from proml_cli.bundle.format import load, parse_trusted
from proml_cli.errors import InputError

HASH = "0x" + "ab" * 32


def test_a_trusted_block_is_number_colon_hash() -> None:
    assert parse_trusted(f"42:{HASH}") == (42, bytes.fromhex("ab" * 32))
    for bad in ("42", f"-1:{HASH}", "x:" + HASH, "42:0x1234", f"42:{HASH}00"):
        with pytest.raises(InputError, match="NUMBER:HASH"):
            parse_trusted(bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a proml bundle"),
        ('{"format": "proml-bundle", "schema_version": 9}', "schema_version 9"),
        ('{"format": "proml-bundle", "schema_version": 1}', "'chain_id' is missing"),
    ],
)
def test_a_file_that_is_not_a_bundle_is_bad_input(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load(path)


def _minimal() -> dict[str, object]:
    return {
        "format": "proml-bundle",
        "schema_version": 1,
        "chain_id": 1,
        "ledger": "0x" + "00" * 20,
        "subject": {"artefact": "model", "digest": "ab" * 32},
        "anchor": {"number": 1, "hash": HASH},
        "headers": [],
        "transactions": [],
        "state": {"account_proof": [], "versions": []},
        "records": {},
        "content": None,
        "identity": None,
    }


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"transactions": [{"block": 1}]}, "'transactions[0].index'"),
        ({"ledger": "0x12"}, "'ledger'"),
        ({"ledger": "0x" + "zz" * 20}, "'ledger'"),
        ({"transactions": [7]}, "'transactions[0]'"),
        ({"headers": [1]}, "'headers'"),
        ({"state": {"account_proof": [], "versions": [{"artefact": "m"}]}}, "state.versions[0]"),
        ({"records": {"bafy": 3}}, "'records'"),
        ({"content": {"cid": "x"}}, "'content'"),
    ],
)
def test_a_malformed_nested_field_is_bad_input_naming_it(
    tmp_path: Path, change: dict[str, object], where: str
) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({**_minimal(), **change}))
    with pytest.raises(InputError, match=re.escape(where)):
        load(path)


def test_the_offline_verifier_imports_neither_the_project_nor_the_policy_layer() -> None:
    code = (
        "import sys, json\n"
        "import proml_cli.bundle.verify, proml_cli._cli.bundle\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('proml_cli'))))\n"
    )
    found = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
    )
    assert "proml_cli.bundle.verify" in found
    assert not [
        m for m in found if m in ("proml_cli.project", "proml_cli.policy", "proml_cli.capture")
    ]
