"""An IPFS node that lies costs at most a retry: the record is kept, and the message names it.

The node is a small Kubo RPC server (``_lying_node``) on 127.0.0.1; the chain is the real
embedded one. Each case runs a real step against a node lying one way (or two), then checks
that the record and the product are durable in the local store, anchored, and either on the
node for real or queued for ``proml sync``, and that stderr names the node.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _lying_node import LyingNode, lying_node
from _project import build_project, fork, journal_files, log_entries, ok, one_error_line, proml

from proml_cli.content._local import EmbeddedStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose dataset is validated; ``train`` is the step each test runs."""
    return build_project(tmp_path_factory.mktemp("lying-node") / "project", train=False)


@pytest.fixture
def project(base: Path, tmp_path: Path) -> Path:
    return fork(base, tmp_path / "project")


def _train(project: Path, node: LyingNode, tmp_path: Path) -> tuple[dict[str, Any], str]:
    summary = tmp_path / "summary.json"
    result = proml(
        project,
        "run",
        "--summary-json",
        str(summary),
        "--",
        "python",
        "train.py",
        env={"PROML_IPFS_URL": node.url},
    )
    assert result.code == 0, str(result)
    return json.loads(summary.read_text()), " ".join(result.stderr.split())


def _unpushed(project: Path) -> list[str]:
    queue = project / ".proml" / "content" / "unpushed"
    return sorted(set(queue.read_text().split())) if queue.exists() else []


def _kept_locally(project: Path, *cids: str) -> None:
    store = EmbeddedStore(project / ".proml" / "content")
    for cid in cids:
        assert store.has(cid), f"{cid} is not in the local store"
        store.check(cid)


def _anchored(project: Path, record_cid: str) -> None:
    assert [e["record_cid"] for e in log_entries(project)].count(record_cid) == 1
    assert journal_files(project)["pending"] == []


def test_a_node_claiming_to_pin_everything_is_not_believed(project: Path, tmp_path: Path) -> None:
    with lying_node("pin_ls") as node:
        summary, stderr = _train(project, node, tmp_path)

        record, model = summary["record_cid"], summary["products"][0]["cid"]
        _kept_locally(project, record, model)
        _anchored(project, record)
        # The claim was checked (no root block behind it), so the content was really uploaded.
        assert node.holds(record), "the record was never sent: the node's pin claim was believed"
        assert node.holds(model)
        assert node.url in stderr
        assert "does not return its root block" in stderr
        assert _unpushed(project) == []


def test_a_node_answering_wrong_cids_costs_one_sync(project: Path, tmp_path: Path) -> None:
    with lying_node("add") as node:
        summary, stderr = _train(project, node, tmp_path)

        record, model = summary["record_cid"], summary["products"][0]["cid"]
        assert node.url in stderr
        assert "returned CID" in stderr
        _kept_locally(project, record, model)
        _anchored(project, record)  # the completed run's record is not dropped
        assert _unpushed(project) == sorted({record, model})
        assert not node.holds(record)

        # The retry: sync sends the queued content as CARs (this node imports honestly).
        ok(proml(project, "sync", env={"PROML_IPFS_URL": node.url}))
        assert node.holds(record)
        assert node.holds(model)
        assert _unpushed(project) == []


@pytest.mark.parametrize("lies", [("add", "dag_import"), ("pin_ls", "add", "dag_import")])
def test_a_node_lying_to_add_and_to_dag_import_loses_nothing(
    project: Path, tmp_path: Path, lies: tuple[str, ...]
) -> None:
    with lying_node(*lies) as node:
        summary, stderr = _train(project, node, tmp_path)
        record, model = summary["record_cid"], summary["products"][0]["cid"]
        assert node.url in stderr

        result = proml(project, "sync", env={"PROML_IPFS_URL": node.url})

        assert result.code == 1, str(result)
        assert result.stdout == ""
        # What sync did on the chain comes first (stderr), then the one error line.
        errors = result.stderr[result.stderr.index("proml: error: ") :]
        line = one_error_line(errors)
        assert node.url in line
        assert "does not return its root block" in line
        assert not node.holds(record)
    _kept_locally(project, record, model)
    _anchored(project, record)
    assert _unpushed(project) == sorted({record, model}), "the queue lost what the node lied about"


def test_a_record_is_stored_locally_even_when_the_node_claims_it(
    project: Path, tmp_path: Path
) -> None:
    # A run journaled while the chain was away; its record is not in the local store yet (as
    # on a machine that lost it), and the node claims to pin everything.
    with lying_node("pin_ls", "add") as node:
        summary, _ = _train(project, node, tmp_path)
        record = summary["record_cid"]
        done = project / ".proml" / "journal" / "done" / f"{record}.json"
        pending = project / ".proml" / "journal" / "pending" / f"{record}.json"
        pending.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(done, pending)
        shutil.rmtree(project / ".proml" / "content")

        ok(proml(project, "sync", "--json", env={"PROML_IPFS_URL": node.url}))
    _kept_locally(project, record)
    assert journal_files(project)["pending"] == []
