"""Failures that are fast and name their cause: a hung chain or IPFS node, an IPFS-only outage,
content the node does not have, and a decision taken while the chain is unreachable.

A *frozen* server is a socket on 127.0.0.1 that accepts connections and never answers: the
worst case for a client, which otherwise waits forever. The policies set ``chain.timeout`` /
``storage.timeout`` small, so each test measures the bound without waiting the default 20 s.
"""

from __future__ import annotations

import select
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _network import CUT_SCRIPT, Relay, dead_url, rpc_policy
from _project import (
    POLICY,
    build_project,
    fork,
    journal_files,
    log_entries,
    ok,
    one_error_line,
    proml,
    write_project,
)

from proml_cli.policy import DEFAULT_TIMEOUT, parse_policy

pytestmark = pytest.mark.integration

#: The timeout the tests' policies set, in seconds.
SMALL = 2
#: What a command may take beyond its one bounded wait (start-up, the embedded chain, load).
SLACK = 12


class FrozenServer:
    """Accepts TCP connections on 127.0.0.1 and never answers them (until closed)."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.05)
            if ready:
                connection, _ = self._listener.accept()
                self._held.append(connection)  # read nothing, answer nothing

    def __enter__(self) -> FrozenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in self._held:
            connection.close()
        self._listener.close()


@pytest.fixture
def frozen() -> Iterator[str]:
    with FrozenServer() as server:
        yield server.url


def with_timeouts(policy: str) -> str:
    """A policy with ``chain.timeout`` and ``storage.timeout`` set to :data:`SMALL`."""
    policy = policy.replace("chain:\n", f"chain:\n  timeout: {SMALL}\n", 1)
    return policy.replace("storage:\n", f"storage:\n  timeout: {SMALL}\n", 1)


def timed(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, object]:
    started = time.monotonic()
    result = proml(root, *args, env=env)
    return time.monotonic() - started, result


def test_the_default_waits_are_20_seconds(tmp_path: Path) -> None:
    policy = parse_policy(POLICY, root=tmp_path)
    assert policy.chain.timeout == policy.storage.timeout == DEFAULT_TIMEOUT == 20


# ------------------------------------------------------------------------- a frozen chain


@pytest.fixture(scope="module")
def on_anvil(tmp_path_factory: pytest.TempPathFactory, anvil_project: Path) -> Path:
    """The module's project on the session's anvil (see conftest), with small timeouts."""
    root = fork(anvil_project, tmp_path_factory.mktemp("waits") / "project")
    policy = root / "proml.yaml"
    policy.write_text(with_timeouts(policy.read_text()))
    return root


def test_a_frozen_chain_exits_3_within_the_policy_timeout(
    on_anvil: Path, tmp_path: Path, frozen: str
) -> None:
    work = fork(on_anvil, tmp_path / "work")
    for args in (
        ("log",),
        ("run", "--", "python", "train.py"),
        ("transition", "dataset", "reject"),
    ):
        elapsed, result = timed(work, *args, env={"PROML_CHAIN_URL": frozen})
        assert result.code == 3, str(result)  # type: ignore[attr-defined]
        assert frozen in one_error_line(result.stderr)  # type: ignore[attr-defined]
        assert elapsed < SMALL + SLACK, (args, elapsed)
    assert not (work / "train.started").exists()  # the inputs could not be checked


def test_init_against_a_frozen_chain_exits_3(tmp_path: Path, frozen: str) -> None:
    root = write_project(tmp_path / "new", with_timeouts(rpc_policy(frozen)))
    elapsed, result = timed(root, "init")
    assert result.code == 3, str(result)  # type: ignore[attr-defined]
    assert elapsed < SMALL + SLACK, elapsed


# ------------------------------------------------------------ a decision while the chain is away


def test_a_transition_with_the_chain_down_is_journaled_and_anchored_once_by_sync(
    on_anvil: Path, tmp_path: Path
) -> None:
    work = fork(on_anvil, tmp_path / "work")
    before = log_entries(work)

    down = proml(work, "transition", "dataset", "deprecate", env={"PROML_CHAIN_URL": dead_url()})

    assert down.code == 3, str(down)
    assert "journaled" in one_error_line(down.stderr)
    assert "proml sync" in down.stderr
    pending = journal_files(work)["pending"]
    assert len(pending) == 1
    assert log_entries(work) == before

    first = ok(proml(work, "sync", "--json")).json()["entries"]
    assert [(e["record_cid"], e["status"]) for e in first] == [
        (pending[0].removesuffix(".json"), "anchored")
    ]
    assert ok(proml(work, "sync", "--json")).json()["entries"] == []
    moves = [e for e in log_entries(work) if e["action"] == "deprecate"]
    assert [(e["artefact"], e["from"], e["to"], e["record_cid"]) for e in moves] == [
        ("dataset", "validated", "deprecated", first[0]["record_cid"])
    ]
    files = journal_files(work)
    assert files["pending"] == []
    assert pending[0] in files["done"]


def test_require_anchor_fails_a_run_whose_record_is_only_journaled(
    anvil_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    flag = root / "chain.down"
    with Relay(anvil_url, flag) as relay:
        write_project(root, with_timeouts(rpc_policy(relay.url)))
        (root / "cut.py").write_text(CUT_SCRIPT)
        ok(proml(root, "init"))
        # The command cuts the chain off as its last act: its record can only be journaled.
        for args, env in (
            (("run", "--require-anchor", "--", "python", "cut.py"), None),
            (("run", "--", "python", "cut.py"), {"PROML_REQUIRE_ANCHOR": "1"}),
        ):
            flag.unlink(missing_ok=True)
            result = proml(root, *args, env=env)
            assert relay.is_cut
            assert result.code == 3, str(result)
            assert "only journaled" in result.stderr
            assert "proml sync" in result.stderr
        assert len(journal_files(root)["pending"]) == 2
        # Without the flag, the same situation is a warning and the command's own status.
        flag.unlink()
        plain = proml(root, "run", "--", "python", "cut.py")
        assert plain.code == 0, str(plain)


# ------------------------------------------------------------------ a frozen or absent IPFS node


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project on the embedded chain and store (small timeouts), dataset validated."""
    root = tmp_path_factory.mktemp("waits-embedded") / "project"
    return build_project(root, with_timeouts(POLICY), train=False)


def test_a_frozen_ipfs_node_exits_3_within_the_policy_timeout(
    embedded: Path, tmp_path: Path, frozen: str
) -> None:
    work = fork(embedded, tmp_path / "work")
    elapsed, result = timed(work, "push", env={"PROML_IPFS_URL": frozen})
    assert result.code == 3, str(result)  # type: ignore[attr-defined]
    assert frozen in one_error_line(result.stderr)  # type: ignore[attr-defined]
    assert elapsed < SMALL + SLACK, elapsed


def test_with_the_node_frozen_and_the_chain_up_the_run_is_anchored(
    embedded: Path, tmp_path: Path, frozen: str
) -> None:
    work = fork(embedded, tmp_path / "work")
    elapsed, result = timed(
        work,
        "run",
        "--require-anchor",
        "--",
        "python",
        "train.py",
        env={"PROML_IPFS_URL": frozen},
    )

    assert result.code == 0, str(result)  # type: ignore[attr-defined]
    # One bounded wait for the whole run, not one per file it stores.
    assert elapsed < SMALL + SLACK, elapsed
    stderr = result.stderr  # type: ignore[attr-defined]
    assert "proml push" in stderr
    assert "recorded step 'train'" in stderr
    assert journal_files(work)["pending"] == []
    assert log_entries(work)[0]["artefact"] == "model"
    # The next decision finds the version on the chain.
    ok(proml(work, "transition", "model", "evaluate", env={"PROML_IPFS_URL": frozen}))


def test_pull_of_content_the_node_does_not_have_names_who_can_push_it(
    embedded: Path, tmp_path: Path, ipfs_url: str
) -> None:
    work = fork(embedded, tmp_path / "work")
    shutil.rmtree(work / ".proml" / "content")  # another party: nothing local, nothing pushed
    registrant = log_entries(work, "dataset")[-1]["actor"]

    elapsed, result = timed(
        work, "pull", "dataset", "-o", str(work / "x.csv"), env={"PROML_IPFS_URL": ipfs_url}
    )

    assert result.code == 1, str(result)  # type: ignore[attr-defined]
    line = one_error_line(result.stderr)  # type: ignore[attr-defined]
    assert "does not have" in line
    assert registrant in line
    assert "proml push" in result.stderr  # type: ignore[attr-defined]
    assert elapsed < 15, elapsed
    assert not (work / "x.csv").exists()


def test_sync_with_the_node_still_down_anchors_first_then_exits_3(
    embedded: Path, tmp_path: Path
) -> None:
    work = fork(embedded, tmp_path / "work")
    node = {"PROML_IPFS_URL": dead_url()}
    ok(proml(work, "run", "--", "python", "train.py", env=node))  # anchored, bytes kept locally
    queued = (work / ".proml" / "content" / "unpushed").read_text().split()
    assert queued

    result = proml(work, "sync", "--json", env=node)

    assert result.code == 3, str(result)
    assert result.stdout == ""
    # Progress lines may come first ("journal: nothing pending"); one error line names the node.
    errors = [line for line in result.stderr.splitlines() if line.startswith("proml: error: ")]
    assert len(errors) == 1, result.stderr
    assert node["PROML_IPFS_URL"] in errors[0]
    assert "Traceback" not in result.stderr
    assert journal_files(work)["pending"] == []
    assert (work / ".proml" / "content" / "unpushed").read_text().split() == queued
