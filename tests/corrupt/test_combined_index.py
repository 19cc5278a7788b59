"""The embedded store's combined pack index: used when whole, never trusted beyond the packs.

A store of many packs is read through ``packs.midx`` (one file) instead of one index per pack.
Each case damages it, makes it stale, or kills an import while it is written, and checks that
every stored file still reads back byte for byte, and that a later import repairs the index.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from proml_cli.content import open_store
from proml_cli.content._local import (
    _COMBINED_HEAD,
    _COMBINED_RECORD,
    _COMBINED_SUM,
    COMBINED_INDEX,
    PACK_LOG,
    EmbeddedStore,
    _CombinedIndex,
    _Pack,
)
from proml_cli.errors import ContentError, DamagedStoreError

pytestmark = pytest.mark.integration

#: Imports after which a combined index exists (it is rewritten every 16 packs outside it).
PACKS = 20


def _random(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 - test data, not secrets


def _embedded(root: Path) -> EmbeddedStore:
    store = open_store("embedded", root=root)
    assert isinstance(store, EmbeddedStore)
    return store


def _fill(root: Path, tmp: Path, count: int = PACKS, first: int = 0) -> dict[str, bytes]:
    """``count`` imports of a 300 KiB file each (its first leaf in a pack): CID -> bytes."""
    stored = {}
    for seed in range(first, first + count):
        source = tmp / f"f{seed}.bin"
        source.write_bytes(_random(300 * 1024, seed + 1))
        stored[_embedded(root).put_path(source).cid] = source.read_bytes()
    return stored


def _reads_back(root: Path, stored: dict[str, bytes]) -> None:
    store = _embedded(root)
    for cid, data in stored.items():
        assert store.cat(cid) == data


def _indexes_read(root: Path) -> int:
    """How many per-pack index files a fresh store reads on its first scan."""
    store = _embedded(root)
    store._refresh_indexes()
    return len(store._loaded)


def test_a_store_of_many_packs_is_read_through_the_combined_index(tmp_path: Path) -> None:
    root = tmp_path / "store"
    stored = _fill(root, tmp_path)
    assert (root / COMBINED_INDEX).is_file()
    assert len(list((root / "packs").glob("*.idx"))) == PACKS
    assert _indexes_read(root) < 16  # the others come from the combined file
    _reads_back(root, stored)
    # Storing the same bytes again adds nothing: dedup finds them through the combined index.
    source = tmp_path / "f0.bin"
    source.write_bytes(stored[next(iter(stored))])
    assert _embedded(root).put_path(source).blocks_added == 0
    # It stays bounded as the store grows.
    stored |= _fill(root, tmp_path, 40, first=PACKS)
    assert _indexes_read(root) < 16
    _reads_back(root, stored)


def test_a_damaged_combined_index_is_ignored_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "store"
    stored = _fill(root, tmp_path)
    combined = root / COMBINED_INDEX
    good = combined.read_bytes()
    for damage in (
        lambda data: data[: len(data) // 2],  # torn
        lambda data: b"",  # emptied by a crash
        lambda data: data[:100] + bytes([data[100] ^ 1]) + data[101:],  # one bit flipped
        lambda data: _summed(b"PROMLMIX" + (99).to_bytes(4, "big") + data[12:-32]),  # version
    ):
        combined.write_bytes(damage(good))
        packs = len(list((root / "packs").glob("*.idx")))
        assert _indexes_read(root) == packs  # every pack index is read instead
        assert "not using the combined pack index" in caplog.text
        _reads_back(root, stored)
        # The next import that finds 16 packs outside it writes a good one again.
        stored |= _fill(root, tmp_path, 1, first=100 + len(stored))
        assert _CombinedIndex.parse(combined.read_bytes()) is not None
        assert _indexes_read(root) < 16
        _reads_back(root, stored)


def _summed(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def _forged(root: Path, change: int) -> None:
    """Rewrite the combined index with every offset moved by ``change``, checksum made good."""
    data = bytearray((root / COMBINED_INDEX).read_bytes())
    index = _CombinedIndex.parse(bytes(data))
    assert index is not None
    start = len(data) - _COMBINED_SUM - len(index.records)
    for at in range(start, len(data) - _COMBINED_SUM, _COMBINED_RECORD.size):
        digest, pack, offset, length = _COMBINED_RECORD.unpack_from(data, at)
        _COMBINED_RECORD.pack_into(data, at, digest, pack, offset + change, length)
    (root / COMBINED_INDEX).write_bytes(_summed(bytes(data[:-_COMBINED_SUM])))


def test_a_forged_combined_index_never_serves_wrong_bytes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    stored = _fill(root, tmp_path)
    _forged(root, 1)  # every entry points one byte off: well formed, checksum good
    store = _embedded(root)
    store._refresh_indexes()
    covered = [cid for cid in stored if _leaf(store, cid) not in store._packed]
    assert len(covered) >= 16
    for cid in covered:
        with pytest.raises(DamagedStoreError, match=r"does not hash to its CID|is truncated"):
            _embedded(root).cat(cid)


def _leaf(store: EmbeddedStore, cid: str) -> bytes:
    from proml_cli.content._unixfs import Cid, decode_pb_node

    root = Cid.parse(cid)
    return decode_pb_node(store.read_block(root)).links[0].cid.digest


def test_a_pack_removed_after_it_was_combined_is_masked_and_dropped(tmp_path: Path) -> None:
    root = tmp_path / "store"
    stored = _fill(root, tmp_path)
    index = _CombinedIndex.parse((root / COMBINED_INDEX).read_bytes())
    assert index is not None
    gone = root / "packs" / f"{index.names[0]}.pack"
    store = _embedded(root)
    gone_cid = next(cid for cid in stored if _pack_of(store, cid) == str(gone))
    gone.with_suffix(".idx").unlink()  # what fsck --repair does to an orphan pack
    gone.unlink()
    with pytest.raises(ContentError, match="missing from the content store"):
        _embedded(root).cat(gone_cid)
    lost = stored.pop(gone_cid)
    _reads_back(root, stored)
    # Storing the lost file again stores its packed leaf again: no entry of the gone pack is
    # trusted (its small last leaf and its root are block files, still there).
    source = tmp_path / "lost.bin"
    source.write_bytes(lost)
    assert _embedded(root).put_path(source).blocks_added == 1
    stored[gone_cid] = lost
    _reads_back(root, stored)
    # The next rewrite (it lists the packs) leaves the gone pack out.
    stored |= _fill(root, tmp_path, 16, first=500)
    rebuilt = _CombinedIndex.parse((root / COMBINED_INDEX).read_bytes())
    assert rebuilt is not None
    assert index.names[0] not in rebuilt.names
    assert set(rebuilt.names) <= {name.stem for name in (root / "packs").glob("*.idx")}
    assert _indexes_read(root) < 16
    _reads_back(root, stored)


def _pack_of(store: EmbeddedStore, cid: str) -> str | None:
    entry = store._pack_entry(_leaf(store, cid))
    return None if entry is None else entry[0]


def test_a_pack_still_being_written_is_left_outside(tmp_path: Path) -> None:
    root = tmp_path / "store"
    open_pack = _Pack(str(root / "packs"))  # an import in progress (holds its pack's lock)
    try:
        open_pack.append(hashlib.sha256(b"a" * 70000).digest(), [b"a" * 70000], 70000)
        _fill(root, tmp_path)
        index = _CombinedIndex.parse((root / COMBINED_INDEX).read_bytes())
        assert index is not None
        stem = Path(open_pack.path).stem
        assert stem not in index.names
        assert len(index.names) == 15  # the 15th import made 16 outside, its own included
    finally:
        open_pack.close()
    found = _embedded(root)._pack_entry(hashlib.sha256(b"a" * 70000).digest())
    assert found is not None
    assert found[0] == open_pack.path


def test_a_block_stored_again_after_damage_wins_in_the_combined_index(tmp_path: Path) -> None:
    root = tmp_path / "store"
    stored = _fill(root, tmp_path)
    cid = next(iter(stored))
    store = _embedded(root)
    pack, offset, _ = store._pack_entry(_leaf(store, cid)) or ("", 0, 0)
    data = bytearray(Path(pack).read_bytes())
    data[offset] ^= 0xFF
    Path(pack).write_bytes(bytes(data))
    with pytest.raises(DamagedStoreError):
        store.cat(cid)
    source = tmp_path / "again.bin"
    source.write_bytes(stored[cid])
    assert store.put_path(source).blocks_added == 1  # the damaged leaf, in a new pack
    _fill(root, tmp_path, 16, first=200)  # enough packs for the combined index to be rewritten
    assert _indexes_read(root) < 16
    _reads_back(root, stored)


#: Run in a child: fill a store until the combined index is written, dying at ``point``.
KILLED = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from proml_cli.content import _local
from proml_cli.content import open_store

point = sys.argv[2]
original_write, original_replace = os.write, os.replace
original_combined = _local.EmbeddedStore._write_combined
writing = []

def write_combined(self, data):
    writing.append(1)
    return original_combined(self, data)

def write(fd, data):
    if point == "mid-write" and writing:
        original_write(fd, bytes(data)[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return original_write(fd, data)

def replace(src, dst):
    if point == "before-rename" and writing:
        os.kill(os.getpid(), signal.SIGKILL)
    original_replace(src, dst)
    if point == "after-rename" and writing:
        os.kill(os.getpid(), signal.SIGKILL)

_local.EmbeddedStore._write_combined = write_combined
_local.os.write = write
_local.os.replace = replace
root = Path(sys.argv[1])
for seed in range(1, 30):
    source = root.parent / f"k{seed}.bin"
    source.write_bytes(__import__("random").Random(seed).randbytes(300 * 1024))
    print(open_store("embedded", root=root).put_path(source).cid, flush=True)
"""


@pytest.mark.parametrize("point", ["mid-write", "before-rename", "after-rename"])
def test_kill_9_while_the_combined_index_is_written(tmp_path: Path, point: str) -> None:
    root = tmp_path / "store"
    stored = _fill(root, tmp_path, 3)
    child = subprocess.run(
        [sys.executable, "-c", KILLED, str(root), point, str(Path(__file__).parents[2])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    # Every import the child finished reads back, from a fresh process's view of the store.
    for seed, cid in enumerate(child.stdout.split(), start=1):
        stored[cid] = _random(300 * 1024, seed)
    assert len(stored) == 3 + 12  # the 13th import made 16 packs: it died writing the index
    _reads_back(root, stored)
    if point == "after-rename":
        assert _CombinedIndex.parse((root / COMBINED_INDEX).read_bytes()) is not None
    else:
        assert os.listdir(root / "tmp")  # the temporary file fsck --repair removes
    # The next imports finish the job: a good combined index, every file still readable.
    stored |= _fill(root, tmp_path, 16, first=300)
    assert _CombinedIndex.parse((root / COMBINED_INDEX).read_bytes()) is not None
    assert _indexes_read(root) < 16
    _reads_back(root, stored)


def test_the_header_is_what_the_docstring_says() -> None:
    index, data = _CombinedIndex.build([], b"")
    assert data[:8] == b"PROMLMIX"
    assert len(data) == _COMBINED_HEAD.size + 256 * 8 + _COMBINED_SUM
    assert index.find(bytes(32)) is None


def test_packs_are_found_without_listing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proml_cli.content import _local

    root = tmp_path / "store"
    stored = _fill(root, tmp_path, PACKS + 3)  # some packs after the last rewrite
    listings = []
    original = _local._index_names

    def counting(directory: str) -> set[str]:
        listings.append(directory)
        return original(directory)

    monkeypatch.setattr(_local, "_index_names", counting)
    store = _embedded(root)
    store._refresh_indexes()
    assert not listings  # the combined index and packs.log name every pack
    assert len(store._loaded) == len(list((root / "packs").glob("*.idx"))) - len(store._covered)
    _reads_back(root, stored)
    assert not listings  # every read found its blocks


def test_a_pack_the_log_does_not_name_is_found_by_a_read_and_the_next_rewrite(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    stored = _fill(root, tmp_path)
    log = root / PACK_LOG
    kept = log.read_bytes()
    late = _fill(root, tmp_path, 1, first=700)
    log.write_bytes(kept + b"0123")  # its line lost (and a torn one left): no reader knows it
    store = _embedded(root)
    store._refresh_indexes()
    (cid,) = late
    assert _leaf(store, cid) not in store._packed
    assert store.cat(cid) == late[cid]  # the read missed, listed the packs and found it
    stored |= late
    # A writer misses it at worst (stores a copy again); the next rewrite lists and covers it.
    stored |= _fill(root, tmp_path, 16, first=800)
    index = _CombinedIndex.parse((root / COMBINED_INDEX).read_bytes())
    assert index is not None
    pack = _pack_of(_embedded(root), cid)
    assert pack is not None
    assert Path(pack).stem in index.names
    _reads_back(root, stored)
