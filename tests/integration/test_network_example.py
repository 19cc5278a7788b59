"""The breast-cancer example (examples/breast-cancer/run.sh) on anvil and a real IPFS node.

The same script as on the embedded default, pointed at the network by PROML_CHAIN_URL and
PROML_IPFS_URL. Afterwards the node itself must vouch for every CID proml recorded: it pins it,
and its own hashing of the workspace file gives the same CID. It needs scikit-learn (the
``examples`` extra): without it the module is skipped, except on CI.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from _network import REPO, node_cid, node_pins
from _project import ok, proml, run_example

from proml_cli.content._unixfs import Cid

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUN_SH = REPO / "examples" / "breast-cancer" / "run.sh"

if importlib.util.find_spec("sklearn") is None and not os.environ.get("CI"):
    pytest.skip(
        "scikit-learn is not installed (pip install -e '.[examples]')", allow_module_level=True
    )


@dataclass(frozen=True)
class Example:
    """The finished example's workspace and the network it ran on."""

    work: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, anvil_url: str, ipfs_url: str) -> Example:
    base = tmp_path_factory.mktemp("network-example")
    work = base / "work"
    env = {"PROML_CHAIN_URL": anvil_url, "PROML_IPFS_URL": ipfs_url}
    run_example(RUN_SH, work, {**env, "XDG_CACHE_HOME": str(base / "cache")})
    return Example(work, env)


def _entries(example: Example) -> list[dict[str, Any]]:
    entries = ok(proml(example.work, "log", "--json", env=example.env)).json()["entries"]
    assert isinstance(entries, list)
    return entries


def test_the_example_ran_on_the_network(example: Example) -> None:
    state = json.loads((example.work / ".proml" / "project.json").read_text())
    assert (state["backend"], state["chain_id"]) == ("rpc", 31337)
    actions = [(e["artefact"], e["action"]) for e in reversed(_entries(example))]
    assert actions[-1] == ("model", "approve")
    assert ("train-set", "validate") in actions


def test_the_node_pins_every_recorded_version_with_the_cid_proml_recorded(
    example: Example, ipfs_url: str
) -> None:
    policy = yaml.safe_load((example.work / "proml.yaml").read_text())
    paths = {name: spec["path"] for name, spec in policy["artefacts"].items()}
    versions = {(e["artefact"], e["cid"]) for e in _entries(example)}

    assert {artefact for artefact, _ in versions} == {"train-set", "test-set", "model"}
    for artefact, cid in sorted(versions):
        assert node_pins(ipfs_url, cid), f"{artefact} {cid} is not pinned by the node"
        # The node's own hashing of the bytes in the workspace (js-ipfs prints CIDv1 in
        # base58btc, proml in base32: compare the values).
        workspace_file = example.work / paths[artefact]
        assert node_cid(ipfs_url, workspace_file) == Cid.parse(cid), artefact


def test_the_node_pins_every_provenance_record(example: Example, ipfs_url: str) -> None:
    records = {e["record_cid"] for e in _entries(example)}

    assert records
    for cid in sorted(records):
        assert node_pins(ipfs_url, cid), f"record {cid} is not pinned by the node"
