"""Golden vectors produced by a real IPFS node: proml's CIDs must equal the node's own.

The node (js-ipfs, Kubo RPC API) computes each CID independently from the same bytes with
`add --only-hash`; CIDv1 text differs in base (js-ipfs prints base58btc), so CIDs are compared
as values.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from proml_cli.content import hash_path
from proml_cli.content._unixfs import Cid

pytestmark = pytest.mark.integration

CHUNK = 262_144
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 174 * CHUNK, 174 * CHUNK + 1]


def _pattern(size: int) -> bytes:
    block = bytes(i % 251 for i in range(65_536))
    return (block * (size // len(block) + 1))[:size]


def _node_cid(url: str, path: Path, version: int) -> Cid:
    params = {"only-hash": "true", "cid-version": str(version), "pin": "false"}
    if version == 1:
        params["raw-leaves"] = "true"
    files = []
    handles = []
    try:
        if path.is_dir():
            files.append(("file", (path.name, b"", "application/x-directory")))
            for item in sorted(path.rglob("*")):
                rel = item.relative_to(path.parent).as_posix()
                if item.is_dir():
                    files.append(("file", (rel, b"", "application/x-directory")))
                else:
                    handle = item.open("rb")
                    handles.append(handle)
                    files.append(("file", (rel, handle, "application/octet-stream")))
        else:
            handle = path.open("rb")
            handles.append(handle)
            files.append(("file", (path.name, handle, "application/octet-stream")))
        reply = httpx.post(f"{url}/api/v0/add", params=params, files=files, timeout=120)
    finally:
        for handle in handles:
            handle.close()
    reply.raise_for_status()
    last = [json.loads(line) for line in reply.text.splitlines() if line.strip()][-1]
    return Cid.parse(last["Hash"])


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("size", SIZES)
def test_file_cid_equals_the_nodes(ipfs_url: str, tmp_path: Path, size: int, version: int) -> None:
    path = tmp_path / f"f{size}.bin"
    path.write_bytes(_pattern(size))
    ours = hash_path(path, cid_version=version).cid
    assert Cid.parse(ours) == _node_cid(ipfs_url, path, version)


@pytest.mark.parametrize("version", [0, 1])
def test_directory_cid_equals_the_nodes(ipfs_url: str, tmp_path: Path, version: int) -> None:
    root = tmp_path / "tree"
    (root / "b" / "deeper").mkdir(parents=True)
    (root / "a-empty-dir").mkdir()
    (root / "empty.txt").write_bytes(b"")
    (root / "Zeta.txt").write_bytes(b"upper case sorts first\n")
    (root / "b" / "two chunks.bin").write_bytes(_pattern(CHUNK + 7))
    (root / "b" / "deeper" / "x.json").write_bytes(b'{"x": 1}\n')
    ours = hash_path(root, cid_version=version).cid
    assert Cid.parse(ours) == _node_cid(ipfs_url, root, version)


@pytest.mark.parametrize("version", [0, 1])
def test_empty_directory_cid_equals_the_nodes(ipfs_url: str, tmp_path: Path, version: int) -> None:
    root = tmp_path / "nothing"
    root.mkdir()
    ours = hash_path(root, cid_version=version).cid
    assert Cid.parse(ours) == _node_cid(ipfs_url, root, version)


@pytest.mark.parametrize("size", [8 * 1024 * 1024, 174 * CHUNK + 1])
def test_a_stored_large_file_cid_equals_the_nodes(ipfs_url: str, tmp_path: Path, size: int) -> None:
    """A large file is stored by its own path (read once, copied while hashed): same CID."""
    from proml_cli.content import open_store

    path = tmp_path / f"f{size}.bin"
    path.write_bytes(_pattern(size))
    store = open_store("embedded", root=tmp_path / "store")
    stored = store.put_path(path)
    assert Cid.parse(stored.cid) == _node_cid(ipfs_url, path, 1)
    store.check(stored.cid)  # every chunk is the same: one leaf, kept once
