"""The three-organisation scenario (examples/three-orgs/run.sh) on the session's anvil and node.

The script runs once per module (about 45 s): a client deploys the ledger, a vendor delivers
data, a developer trains, the client's verifier approves, an auditor verifies; then three insider
attempts must each be refused. The tests read its output and its workspace: which mechanism
caught each attempt, one shared history, the auditor's verdict, and keys that stay secret.
"""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _network import REPO, files_under, strip_ansi
from _project import ok, proml, run_example

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUN_SH = REPO / "examples" / "three-orgs" / "run.sh"
PARTIES = ("client", "vendor", "developer", "auditor")
REFUSED = "-> refused, as it must be"


@dataclass(frozen=True)
class Scenario:
    """The finished scenario: its workspace, its output and the services it used."""

    work: Path
    stdout: str
    stderr: str
    env: dict[str, str]

    def section(self, heading: str) -> str:
        """The stderr printed under the ``== heading`` line that starts with ``heading``."""
        parts = re.split(r"^== (.*)$", strip_ansi(self.stderr), flags=re.M)
        sections = list(zip(parts[1::2], parts[2::2], strict=True))
        matches = [body for title, body in sections if title.startswith(heading)]
        assert len(matches) == 1, (heading, [title for title, _ in sections])
        return matches[0]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, anvil_url: str, ipfs_url: str) -> Scenario:
    base = tmp_path_factory.mktemp("three-orgs")
    work = base / "work"
    env = {"PROML_CHAIN_URL": anvil_url, "PROML_IPFS_URL": ipfs_url}
    # Nonce locks go to the user's cache directory: keep this run's out of $HOME.
    done = run_example(RUN_SH, work, {**env, "XDG_CACHE_HOME": str(base / "xdg-cache")})
    return Scenario(work, done.stdout, done.stderr, env)


def _party(scenario: Scenario, org: str, *args: str) -> Any:
    return ok(proml(scenario.work / org, *args, env=scenario.env))


# ----------------------------------------------------------------------------- the attempts


def test_the_scenario_ends_with_one_history(scenario: Scenario) -> None:
    assert "-> one history" in scenario.stderr
    assert strip_ansi(scenario.stderr).count(REFUSED) == 4


def test_the_self_approval_is_refused_by_the_contract_for_want_of_the_verifier_role(
    scenario: Scenario,
) -> None:
    text = scenario.section("insider: the developer approves their own model")

    assert text.count(REFUSED) == 1
    error = next(line for line in text.splitlines() if line.startswith("proml: error: "))
    assert "the ledger refused" in error
    assert "holds no role allowed to 'approve'" in error
    assert "allowed: verifier" in error


def test_the_swapped_dataset_is_not_a_recorded_version_for_training_or_verify(
    scenario: Scenario,
) -> None:
    text = scenario.section("insider: the vendor swaps the dataset")

    assert text.count(REFUSED) == 2
    training, verification = text.split(REFUSED)[:2]
    assert "step 'train' refused" in training
    assert "not a recorded version" in training
    assert "NOT verified: data/applicants.csv" in verification
    assert "not a recorded version" in verification


def test_the_rewritten_record_fails_the_record_check(scenario: Scenario) -> None:
    text = scenario.section("insider: the developer rewrites the training record")

    assert text.count(REFUSED) == 1
    assert "NOT verified: models/scorer.json" in text
    reasons = [line.strip() for line in text.splitlines() if line.strip().startswith("- ")]
    assert reasons, text
    assert all(reason.startswith("- 5") for reason in reasons), reasons
    assert any("altered" in reason for reason in reasons), reasons


# ----------------------------------------------------------------------------- the shared history


def test_every_party_reads_the_same_history(scenario: Scenario) -> None:
    logs = {org: _party(scenario, org, "log", "--json").json()["entries"] for org in PARTIES}

    # Everything the chain says is identical for all. ("by" is read from each party's own copy
    # of the record: the developer rewrote one in its store, so only the others must agree.)
    chain = {org: [{k: v for k, v in e.items() if k != "by"} for e in logs[org]] for org in logs}
    assert chain["client"], "empty history"
    for org in PARTIES:
        assert chain[org] == chain["client"], org
    untouched = [[e["by"] for e in logs[org]] for org in ("client", "vendor", "auditor")]
    assert untouched[0] == untouched[1] == untouched[2]
    assert [(e["artefact"], e["action"], e["to"]) for e in reversed(chain["client"])] == [
        ("applicants", "register", "delivered"),
        ("applicants", "validate", "validated"),
        ("scorer", "register", "trained"),
        ("scorer", "evaluate", "evaluated"),
        ("scorer", "approve", "approved"),
    ]


def test_the_auditor_verifies_the_model_and_its_lineage(scenario: Scenario) -> None:
    report = _party(scenario, "auditor", "verify", "models/scorer.json", "--deep", "--json").json()

    assert report["verified"] is True, report["reasons"]
    assert (report["artefact"], report["state"]) == ("scorer", "approved")
    assert [(i["artefact"], i["state"]) for i in report["lineage"]] == [("applicants", "validated")]


# ----------------------------------------------------------------------------- secrets


def _keystores(scenario: Scenario) -> dict[Path, str]:
    """Every keystore file in the workspace, with its party's password."""
    found = {}
    for org in PARTIES:
        for path in sorted((scenario.work / org / ".proml" / "keys").glob("*.json")):
            found[path] = f"{org}-secret"
    return found


def test_keystores_are_private_and_encrypted(scenario: Scenario) -> None:
    from eth_account import Account

    stores = _keystores(scenario)
    # Every party has its own key; the client also holds a separate verifier key.
    assert sorted(p.relative_to(scenario.work).as_posix() for p in stores) == [
        "auditor/.proml/keys/default.json",
        "client/.proml/keys/default.json",
        "client/.proml/keys/verifier.json",
        "developer/.proml/keys/default.json",
        "vendor/.proml/keys/default.json",
    ]
    for path, password in stores.items():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
        keystore = json.loads(path.read_text())
        assert keystore["version"] == 3
        assert {"cipher", "ciphertext", "kdf", "mac"} <= set(keystore["crypto"])
        key = Account.decrypt(keystore, password)
        assert Account.from_key(key).address.lower() == "0x" + keystore["address"].lower()


def test_no_key_or_password_appears_in_any_output_or_file(scenario: Scenario) -> None:
    from eth_account import Account

    secrets: list[bytes] = [f"{org}-secret".encode() for org in PARTIES]
    for path, password in _keystores(scenario).items():
        key = bytes(Account.decrypt(json.loads(path.read_text()), password))
        secrets += [key, key.hex().encode()]
    outputs = [scenario.stdout, scenario.stderr]
    for org in PARTIES:
        result = _party(scenario, org, "log", "--json")
        outputs += [result.stdout, result.stderr]

    for text in outputs:
        lowered = text.lower().encode()
        for secret in secrets:
            assert secret.lower() not in lowered, "a secret is in the printed output"
    checked = 0
    for path in files_under(scenario.work):
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data, f"a secret is in {path}"
            assert secret.lower() not in data.lower(), f"a secret is in {path}"
        checked += 1
    assert checked > 20  # keystores, records, journals, content blocks, the parties' files
