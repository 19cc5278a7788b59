"""The Kubo RPC content store against a real IPFS node (the session's offline js-ipfs).

The node is shared by the whole session: a test that needs content the node does not have yet
stores fresh random bytes; the CLI tests share one small project and accept content that an
earlier test already pinned.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _network import dead_url, node_cid, node_pins
from _project import build_project, fork, log_entries, ok, one_error_line, proml

from proml_cli.content import hash_path
from proml_cli.content._kubo import KuboStore
from proml_cli.content._local import EmbeddedStore
from proml_cli.content._unixfs import Cid
from proml_cli.errors import BackendUnavailable, ContentError, ExitCode

pytestmark = pytest.mark.integration

CHUNK = 262_144


def _tree(root: Path) -> Path:
    """A directory with nesting, an empty directory, a hidden file, a multi-chunk file and a
    name that needs escaping in a multipart upload."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / ".hidden").write_bytes(os.urandom(100))
    (root / "two words.txt").write_bytes(os.urandom(1000))
    (root / "sub" / "big.bin").write_bytes(os.urandom(CHUNK * 2 + 17))
    (root / "sub" / "deeper" / "x.json").write_bytes(
        b'{"salt": "%s"}' % os.urandom(8).hex().encode()
    )
    return root


def _file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def _count_adds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every ``add`` request any KuboStore sends (files, directories and records)."""
    calls: list[str] = []
    original = KuboStore._post

    def counting(self: KuboStore, endpoint: str, **kwargs: Any) -> Any:
        if endpoint == "add":
            calls.append(endpoint)
        return original(self, endpoint, **kwargs)

    monkeypatch.setattr(KuboStore, "_post", counting)
    return calls


# ----------------------------------------------------------------------------- put


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("shape", ["file", "directory"])
def test_put_path_agrees_with_hash_path_and_the_node_pins_it(
    ipfs_url: str, tmp_path: Path, version: int, shape: str
) -> None:
    source = _tree(tmp_path / "tree") if shape == "directory" else _file(tmp_path / "f", 3 * CHUNK)
    store = KuboStore(tmp_path / "store", ipfs_url)

    stored = store.put_path(source, cid_version=version)

    assert stored.cid == hash_path(source, cid_version=version).cid
    assert (stored.cid.startswith("Qm")) == (version == 0)
    assert node_pins(ipfs_url, stored.cid)
    assert store.is_pinned(stored.cid)
    assert store.local.has(stored.cid)


def test_content_the_node_pins_is_not_uploaded_again(
    ipfs_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adds = _count_adds(monkeypatch)
    source = _tree(tmp_path / "tree")
    record = os.urandom(64)

    first = KuboStore(tmp_path / "one", ipfs_url)
    cid = first.put_path(source).cid
    record_cid = first.put_bytes(record)
    assert len(adds) == 2
    # Another store (another party, no local copy) puts the same bytes: the node has them.
    second = KuboStore(tmp_path / "two", ipfs_url)
    assert second.put_path(source).cid == cid
    assert second.put_bytes(record) == record_cid
    assert first.put_path(source).cid == cid
    assert len(adds) == 2


# ----------------------------------------------------------------------------- push and get


@pytest.mark.parametrize("version", [0, 1])
def test_push_sends_local_content_with_the_same_cid(
    ipfs_url: str, tmp_path: Path, version: int
) -> None:
    source = _tree(tmp_path / "tree")
    root = tmp_path / "store"
    cid = EmbeddedStore(root).put_path(source, cid_version=version).cid
    assert not node_pins(ipfs_url, cid)

    store = KuboStore(root, ipfs_url)
    assert store.push(cid) is True
    assert node_pins(ipfs_url, cid)
    assert store.push(cid) is False  # pinned now: nothing sent

    # Someone else, with nothing local, gets it back from the node, byte for byte.
    elsewhere = KuboStore(tmp_path / "elsewhere", ipfs_url)
    dest = tmp_path / "copy"
    elsewhere.get(cid, dest)
    assert hash_path(dest, cid_version=version).cid == cid
    for path in source.rglob("*"):
        twin = dest / path.relative_to(source)
        if path.is_dir():
            assert twin.is_dir(), twin
        else:
            assert twin.read_bytes() == path.read_bytes(), twin


def test_a_fresh_store_gets_a_put_file_back_byte_identical(ipfs_url: str, tmp_path: Path) -> None:
    source = _file(tmp_path / "data.bin", 5 * CHUNK + 3)
    cid = KuboStore(tmp_path / "one", ipfs_url).put_path(source).cid

    other = KuboStore(tmp_path / "two", ipfs_url)
    assert not other.local.has(cid)
    other.get(cid, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    assert other.cat(cid) == source.read_bytes()


# ----------------------------------------------------------------------------- memory


# The peak is read from /proc/self/status (VmHWM), not from getrusage's ru_maxrss: Linux keeps
# ru_maxrss across fork and exec, so a child of the (larger) pytest process starts with pytest's
# peak and both runs would report the same number. VmHWM belongs to the new address space.
MEASURE = """\
import json, re, sys
from pathlib import Path

from proml_cli.content._kubo import KuboStore

url, root, path = sys.argv[1:]
stored = KuboStore(Path(root), url).put_path(Path(path))
status = Path("/proc/self/status").read_text()
peak = int(re.search(r"^VmHWM:\\s+(\\d+) kB", status, re.M).group(1))
print(json.dumps({"cid": stored.cid, "peak_kib": peak}))
"""


def _peak(ipfs_url: str, root: Path, path: Path, script: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(script), ipfs_url, str(root), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert isinstance(result, dict)
    return result


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_large_file_uploads_in_bounded_memory(ipfs_url: str, tmp_path: Path) -> None:
    size = 64 * 1024 * 1024
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        for _ in range(size // (4 * 1024 * 1024)):
            out.write(os.urandom(4 * 1024 * 1024))
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    # The baseline does everything but the size: same imports, same code paths, a tiny file.
    baseline = _peak(ipfs_url, tmp_path / "base-store", _file(tmp_path / "tiny", 1024), script)

    measured = _peak(ipfs_url, tmp_path / "big-store", big, script)

    growth_mib = (measured["peak_kib"] - baseline["peak_kib"]) / 1024
    assert growth_mib < 32, (
        f"peak RSS grew by {growth_mib:.1f} MiB for a 64 MiB file "
        f"({measured['peak_kib']} KiB against a baseline of {baseline['peak_kib']} KiB)"
    )
    assert measured["cid"] == hash_path(big).cid
    assert node_pins(ipfs_url, measured["cid"])


# ----------------------------------------------------------------------------- a node that is down


def test_a_node_that_is_down_is_backend_unavailable_and_writes_are_deferred(tmp_path: Path) -> None:
    url = dead_url()
    store = KuboStore(tmp_path / "store", url)
    source = _file(tmp_path / "f", 100)
    cid = hash_path(source).cid
    elsewhere = hash_path(_file(tmp_path / "g", 100)).cid  # never stored here: only the node has it

    # Writes keep the bytes locally and defer the upload: nothing captured is lost.
    assert store.put_path(source).cid == cid
    record = store.put_bytes(b"a record")
    assert store.unpushed() == [cid, record]
    assert store.local.has(cid)
    assert store.local.has(record)

    for attempt in (
        store.flush,
        lambda: store.push(cid),
        lambda: store.is_pinned(cid),
        lambda: store.has(elsewhere),
        lambda: store.get(elsewhere, tmp_path / "out"),
    ):
        with pytest.raises(BackendUnavailable) as caught:
            attempt()
        assert caught.value.exit_code == ExitCode.BACKEND_UNAVAILABLE
        assert url in caught.value.diagnosis
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- through the CLI


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project on the embedded chain and store: dataset prepared and validated."""
    return build_project(tmp_path_factory.mktemp("kubo") / "project", train=False)


def test_proml_push_sends_every_recorded_cid_once(
    shared: Path, tmp_path: Path, ipfs_url: str
) -> None:
    root = fork(shared, tmp_path / "project")
    node = {"PROML_IPFS_URL": ipfs_url}
    recorded = {e["cid"] for e in log_entries(root)} | {e["record_cid"] for e in log_entries(root)}

    first = ok(proml(root, "push", "--json", env=node)).json()
    # The module's project may have been pushed by an earlier test: then all of it is pinned.
    assert set(first["pushed"]) | set(first["already_pinned"]) == recorded
    assert first["not_local"] == []
    for cid in recorded:
        assert node_pins(ipfs_url, cid), cid
    again = ok(proml(root, "push", "--json", env=node)).json()
    assert (again["pushed"], sorted(again["already_pinned"])) == ([], sorted(recorded))


def test_proml_pull_writes_a_verified_copy_and_never_overwrites(
    shared: Path, tmp_path: Path, ipfs_url: str
) -> None:
    node = {"PROML_IPFS_URL": ipfs_url}
    ok(proml(fork(shared, tmp_path / "pusher"), "push", env=node))
    # Another party: the same ledger, nothing in its local store.
    root = fork(shared, tmp_path / "puller")
    shutil.rmtree(root / ".proml" / "content")
    target = root / "pulled" / "data.csv"  # pull writes only inside the project

    pulled = ok(proml(root, "pull", "dataset", "-o", str(target), "--json", env=node)).json()
    assert target.read_bytes() == (shared / "data" / "data.csv").read_bytes()
    assert pulled["cid"] == hash_path(target).cid
    assert pulled["state"] == "validated"
    assert Cid.parse(pulled["cid"]) == node_cid(ipfs_url, target)

    target.write_bytes(b"someone else's file\n")
    refused = proml(root, "pull", "dataset", "-o", str(target), env=node)
    assert refused.code == 2, str(refused)
    assert refused.stdout == ""
    assert "already exists" in one_error_line(refused.stderr)
    assert target.read_bytes() == b"someone else's file\n"


def test_the_cli_exits_3_when_the_node_is_down(shared: Path, tmp_path: Path) -> None:
    url = dead_url()
    down = {"PROML_IPFS_URL": url}
    # push has local content to send; pull has none, so it must ask the node.
    pusher = fork(shared, tmp_path / "pusher")
    puller = fork(shared, tmp_path / "puller")
    shutil.rmtree(puller / ".proml" / "content")
    target = puller / "never.csv"

    for root, args in ((pusher, ("push",)), (puller, ("pull", "dataset", "-o", str(target)))):
        result = proml(root, *args, env=down)
        assert result.code == 3, str(result)
        assert result.stdout == ""
        assert url in one_error_line(result.stderr)
    assert not target.exists()
    assert not list(target.parent.glob(".never.csv.proml-pull-*"))


def test_run_keeps_content_locally_when_the_node_is_down_and_sync_sends_it(
    shared: Path, tmp_path: Path, ipfs_url: str
) -> None:
    root = fork(shared, tmp_path / "project")
    result = proml(root, "run", "--", "python", "train.py", env={"PROML_IPFS_URL": dead_url()})

    assert (root / "train.started").exists()
    # The command ran and succeeded: run returns its status, anchors the record (the chain is
    # up) and keeps the bytes locally, saying so.
    assert result.code == 0, str(result)
    assert "proml sync" in result.stderr
    queued = (root / ".proml" / "content" / "unpushed").read_text().split()
    assert queued, "the product and the record wait for the node"

    synced = proml(root, "sync", "--json", env={"PROML_IPFS_URL": ipfs_url})
    assert synced.code == 0, str(synced)
    pushed = json.loads(synced.stdout)["pushed"]
    assert sorted(pushed) == sorted(set(queued))
    assert all(node_pins(ipfs_url, cid) for cid in pushed)
    assert not (root / ".proml" / "content" / "unpushed").exists()


def test_a_read_heals_a_local_copy_altered_to_the_same_size(ipfs_url: str, tmp_path: Path) -> None:
    source = _file(tmp_path / "record.json", 200)
    store = KuboStore(tmp_path / "store", ipfs_url)
    cid = store.put_path(source).cid
    digest = Cid.parse(cid).digest.hex()
    block = tmp_path / "store" / "blocks" / digest[:2] / digest
    block.chmod(0o600)
    block.write_bytes(bytes(b ^ 1 for b in source.read_bytes()))  # same size, other bytes

    # `check` must expose the alteration; a read heals it from the node (the module's contract).
    with pytest.raises(ContentError, match="altered"):
        store.check(cid)
    assert store.cat(cid) == source.read_bytes()
