"""Exports of a project whose ledger is on a JSON-RPC chain (the session's anvil).

The facts come through the RPC ledger: the chain id is anvil's, and every transaction an
export names is one anvil holds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import _validate
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from _network import rpc_policy
from _project import ok, proml, write_project
from services import rpc

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def _private_lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # proml keeps its nonce locks in the user's cache directory: keep this module's out of $HOME.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, anvil_url: str) -> Path:
    root = write_project(tmp_path_factory.mktemp("export-rpc") / "project", rpc_policy(anvil_url))
    ok(proml(root, "init"))
    ok(proml(root, "run", "--", "python", "prepare.py"))
    ok(proml(root, "transition", "dataset", "validate", "--note", "checked over RPC"))
    ok(proml(root, "run", "--", "python", "train.py"))
    ok(proml(root, "run", "--", "python", "evaluate.py"))
    return root


def test_slsa_and_prov_name_transactions_the_chain_holds(project: Path, anvil_url: str) -> None:
    statement = json.loads(ok(proml(project, "export", "slsa", "model")).stdout)
    _validate.in_toto_statement(statement)

    anchored = [
        b["annotations"]
        for b in statement["predicate"]["runDetails"]["byproducts"]
        if b["name"].startswith("ledger-event/")
    ]
    assert [a["action"] for a in anchored] == ["register", "evaluate"]
    for annotation in anchored:
        assert annotation["chain"] == "eip155:31337"
        receipt = rpc(anvil_url, "eth_getTransactionReceipt", [annotation["transaction"]])
        assert isinstance(receipt, dict)
        assert int(receipt["blockNumber"], 16) == annotation["block"]
        assert receipt["to"].lower() == annotation["ledger"].lower()

    prov = ok(proml(project, "export", "prov", "model", "--deep")).stdout.encode()
    _validate.prov_document(prov)
    assert prov == ok(proml(project, "export", "prov", "model", "--deep")).stdout.encode()
