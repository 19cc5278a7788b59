"""The embedded content store on a real file system: round trips, tampering, CAR export."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from proml_cli.content import ContentStore, _car, bytes_cid, hash_path, open_store
from proml_cli.content import _unixfs as u
from proml_cli.errors import ContentError, InputError

pytestmark = pytest.mark.integration


def _pattern(size: int) -> bytes:
    base = bytes(range(251))
    return (base * (size // 251 + 1))[:size]


def _random(size: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(size)  # noqa: S311 - test data, not secrets


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return open_store("embedded", root=tmp_path / ".proml" / "content")


def _tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / ".hidden").write_bytes(b"hidden\n")
    (root / "a.txt").write_bytes(b"hi\n")
    (root / "empty").write_bytes(b"")
    (root / "sub" / "big.bin").write_bytes(_pattern(3 * 262144 + 5))
    (root / "sub" / "deeper" / "c").write_bytes(b"c")


def _snapshot(root: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(folder, name), root) + "/"] = None
        for name in files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = Path(path).read_bytes()
    return out


@pytest.mark.parametrize("version", [0, 1])
def test_file_round_trip(store: ContentStore, tmp_path: Path, version: int) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(_pattern(5 * 262144 + 123))
    stored = store.put_path(source, cid_version=version)
    assert stored.cid == hash_path(source, cid_version=version).cid
    assert stored.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert stored.blocks_added == 7  # 6 leaves and the root
    assert store.has(stored.cid)
    out = tmp_path / "out" / "model.bin"
    store.get(stored.cid, out)
    assert out.read_bytes() == source.read_bytes()
    store.check(stored.cid)
    again = store.put_path(source, cid_version=version)
    assert (again.cid, again.blocks_added, again.bytes_added) == (stored.cid, 0, 0)


@pytest.mark.parametrize("version", [0, 1])
def test_directory_round_trip(store: ContentStore, tmp_path: Path, version: int) -> None:
    source = tmp_path / "dataset"
    _tree(source)
    stored = store.put_path(source, cid_version=version)
    assert stored.type == "directory"
    assert stored.cid == hash_path(source, cid_version=version).cid
    out = tmp_path / "restored"
    store.get(stored.cid, out)
    assert _snapshot(out) == _snapshot(source)
    again = hash_path(out, cid_version=version)
    assert (again.cid, again.sha256, again.size) == (stored.cid, stored.sha256, stored.size)


def test_sharded_directory_round_trip(tmp_path: Path) -> None:
    store = open_store("embedded", root=tmp_path / "store")
    source = tmp_path / "wide"
    source.mkdir()
    for i in range(300):
        (source / f"f{i}").write_bytes(f"{i}\n".encode())
    writer_layout = u.Layout(hamt_sharding_size=1)
    from proml_cli.content._local import EmbeddedStore, _BlockWriter

    assert isinstance(store, EmbeddedStore)
    result = u.import_path(source, 1, sink=_BlockWriter(store), layout=writer_layout)
    root_node = u.decode_pb_node(store.read_block(result.root.cid))
    assert u.decode_unixfs(root_node.data).type == u.UNIXFS_HAMT_SHARD
    out = tmp_path / "out"
    store.get(str(result.root.cid), out)
    assert _snapshot(out) == _snapshot(source)


def test_put_bytes_and_cat(store: ContentStore) -> None:
    record = b'{"kind": "record", "n": 1}\n'
    cid = store.put_bytes(record)
    assert cid == bytes_cid(record)
    assert cid.startswith("bafkrei")
    assert store.put_bytes(record) == cid
    assert store.cat(cid) == record
    big = _pattern(262144 + 10)
    big_cid = store.put_bytes(big)
    assert big_cid == str(u.dag_for_bytes(big, 1).cid)
    assert store.cat(big_cid) == big
    with pytest.raises(InputError, match="more than"):
        store.cat(big_cid, limit=1000)


def test_cat_refuses_a_directory(store: ContentStore, tmp_path: Path) -> None:
    source = tmp_path / "d"
    _tree(source)
    stored = store.put_path(source)
    with pytest.raises(InputError, match="not a file"):
        store.cat(stored.cid)


def _block_file(store_root: Path, cid: str) -> Path:
    digest = u.Cid.parse(cid).digest.hex()
    return store_root / "blocks" / digest[:2] / digest


def _packed(store_root: Path, cid: str) -> tuple[Path, int, int]:
    """Where a large block lives: its pack file, offset and length (from the .idx files)."""
    digest = u.Cid.parse(cid).digest
    found = None
    for index in sorted((store_root / "packs").glob("*.idx")):
        data = index.read_bytes()
        for at in range(0, len(data) - len(data) % 44, 44):
            if data[at : at + 32] == digest:
                offset = int.from_bytes(data[at + 32 : at + 40], "big")
                length = int.from_bytes(data[at + 40 : at + 44], "big")
                found = (index.with_suffix(".pack"), offset, length)
    assert found is not None, f"{cid} is not packed"
    return found


def test_check_detects_a_tampered_block(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_store("embedded", root=root)
    source = tmp_path / "f.bin"
    source.write_bytes(_pattern(3 * 262144))
    stored = store.put_path(source)
    leaf = str(u.raw_cid(_pattern(262144)))
    # File chunks are large blocks: they live in the import's pack, not in block files.
    assert not _block_file(root, leaf).exists()
    pack, offset, length = _packed(root, leaf)
    data = bytearray(pack.read_bytes())
    assert hashlib.sha256(data[offset : offset + length]).digest() == u.Cid.parse(leaf).digest
    data[offset + 100] ^= 0xFF
    pack.write_bytes(bytes(data))
    with pytest.raises(ContentError, match="does not hash to its CID"):
        store.check(stored.cid)
    with pytest.raises(ContentError):
        store.get(stored.cid, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    assert not list(tmp_path.glob(".out.bin*"))


def test_missing_block_and_wrong_size_block_are_repaired_by_put(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_store("embedded", root=root)
    source = tmp_path / "f.bin"
    source.write_bytes(_pattern(2 * 262144))
    stored = store.put_path(source)
    root_block = _block_file(root, stored.cid)
    root_block.unlink()  # a small block file lost
    assert not store.has(stored.cid)
    assert store.put_path(source).blocks_added == 1
    store.check(stored.cid)
    # A pack torn by a crash: the entries past its end are re-stored by the next put.
    pack, offset, _ = _packed(root, str(u.raw_cid(_pattern(262144))))
    with pack.open("r+b") as handle:
        handle.truncate(offset + 10)
    fresh = open_store("embedded", root=root)
    with pytest.raises(ContentError, match="truncated"):
        fresh.check(stored.cid)
    assert fresh.put_path(source).blocks_added >= 1
    fresh.check(stored.cid)
    open_store("embedded", root=root).check(stored.cid)  # and so does the next process
    # A packed block damaged in place: reads expose it; a put after that re-stores it.
    pack, offset, _ = _packed(root, str(u.raw_cid(_pattern(262144))))
    data = bytearray(pack.read_bytes())
    data[offset] ^= 0xFF
    pack.write_bytes(bytes(data))
    damaged = open_store("embedded", root=root)
    with pytest.raises(ContentError, match="does not hash"):
        damaged.check(stored.cid)
    assert damaged.put_path(source).blocks_added == 1
    damaged.check(stored.cid)
    open_store("embedded", root=root).check(stored.cid)


@pytest.mark.parametrize("version", [0, 1])
def test_car_export_reads_back(store: ContentStore, tmp_path: Path, version: int) -> None:
    source = tmp_path / "dataset"
    _tree(source)
    stored = store.put_path(source, cid_version=version)
    car = tmp_path / "export.car"
    store.export_car(stored.cid, car)
    with _car.CarReader(car) as reader:
        assert [str(root) for root in reader.roots] == [stored.cid]
        blocks = list(reader)
    assert str(blocks[0][0]) == stored.cid
    cids = [cid.to_bytes() for cid, _ in blocks]
    assert len(cids) == len(set(cids))
    # Every link of every dag-pb block is in the CAR: the DAG is complete.
    present = set(cids)
    for cid, block in blocks:
        if cid.codec == u.CODEC_DAG_PB:
            for link in u.decode_pb_node(block).links:
                assert link.cid.to_bytes() in present
    # Importing the CAR into a fresh store gives the same content back.
    fresh = open_store("embedded", root=tmp_path / "fresh")
    from proml_cli.content._local import EmbeddedStore

    assert isinstance(fresh, EmbeddedStore)
    for cid, block in blocks:
        fresh.write_block(cid.digest, [block], len(block))
    out = tmp_path / "from-car"
    fresh.get(stored.cid, out)
    assert _snapshot(out) == _snapshot(source)


def test_get_refuses_an_existing_destination(store: ContentStore, tmp_path: Path) -> None:
    cid = store.put_bytes(b"x")
    (tmp_path / "there").write_bytes(b"")
    with pytest.raises(InputError, match="already exists"):
        store.get(cid, tmp_path / "there")


def test_get_refuses_unsafe_names(tmp_path: Path) -> None:
    store = open_store("embedded", root=tmp_path / "store")
    from proml_cli.content._local import EmbeddedStore, _BlockWriter

    assert isinstance(store, EmbeddedStore)
    leaf = u.dag_for_bytes(b"evil", 1, _BlockWriter(store))
    evil = u.DirEntry(b"..", leaf.cid, leaf.tsize)
    root = u.directory_node([evil], 1, _BlockWriter(store))
    with pytest.raises(ContentError, match="unsafe"):
        store.get(str(root.cid), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_open_store_kinds(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown content store"):
        open_store("s3", root=tmp_path)
    with pytest.raises(InputError):
        open_store("kubo", root=tmp_path, url=None)


def test_large_file_is_streamed(tmp_path: Path) -> None:
    import tracemalloc

    store = open_store("embedded", root=tmp_path / "store")
    source = tmp_path / "big.bin"
    piece = _pattern(1024 * 1024)
    with source.open("wb") as out:
        for _ in range(40):
            out.write(piece)
    tracemalloc.start()
    try:
        stored = store.put_path(source)
        store.get(stored.cid, tmp_path / "copy.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * 1024 * 1024
    assert hash_path(tmp_path / "copy.bin").sha256 == stored.sha256


def test_store_errors_are_not_read_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "store"
    blocker.write_bytes(b"a file where the store directory should be")
    store = open_store("embedded", root=blocker)
    source = tmp_path / "f"
    source.write_bytes(b"data")
    with pytest.raises(ContentError, match="cannot write to the content store"):
        store.put_path(source)


def test_a_large_file_is_copied_into_a_pack_and_indexed_in_place(tmp_path: Path) -> None:
    root = tmp_path / "store"
    source = tmp_path / "model.bin"
    source.write_bytes(_pattern(9 * 1024 * 1024 + 5))  # over COPY_MIN, not chunk-aligned
    expected = hash_path(source)
    store = open_store("embedded", root=root)
    stored = store.put_path(source)
    assert (stored.cid, stored.sha256) == (expected.cid, expected.sha256)
    packs = sorted(p.name for p in (root / "packs").iterdir())
    assert len(packs) == 2  # one .pack (the whole file) and its .idx
    assert (root / "packs" / packs[1]).stat().st_size == source.stat().st_size
    # Storing it again adds nothing and leaves no second copy behind.
    assert store.put_path(source).blocks_added == 0
    assert sorted(p.name for p in (root / "packs").iterdir()) == packs
    fresh = open_store("embedded", root=root)
    fresh.check(stored.cid)
    fresh.get(stored.cid, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()


@pytest.mark.parametrize("size", [2 * 1024 * 1024 + 7, 9 * 1024 * 1024 + 5])
def test_a_new_file_does_not_rescan_every_pack_per_leaf(
    tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storing N new leaves reads the pack indexes a bounded number of times, not N."""
    from proml_cli.content._local import EmbeddedStore

    root = tmp_path / "store"
    for i in range(20):  # earlier imports: 20 packs of one large block each
        (tmp_path / f"old{i}.bin").write_bytes(_random(300 * 1024, seed=i + 1))
        open_store("embedded", root=root).put_path(tmp_path / f"old{i}.bin")
    scans = []
    original = EmbeddedStore._load_indexes

    def counting(self: EmbeddedStore) -> None:
        scans.append(1)
        original(self)

    monkeypatch.setattr(EmbeddedStore, "_load_indexes", counting)
    source = tmp_path / "new.bin"
    source.write_bytes(_random(size, seed=99))
    store = open_store("embedded", root=root)
    stored = store.put_path(source)
    assert stored.blocks_added > 8  # many new leaves ...
    assert len(scans) <= 2  # ... and the indexes were read once or twice, not per leaf
    assert stored.cid == hash_path(source).cid
    store.check(stored.cid)


def test_a_block_packed_by_another_store_is_found_by_a_read(tmp_path: Path) -> None:
    root = tmp_path / "store"
    reader = open_store("embedded", root=root)
    (tmp_path / "a.bin").write_bytes(_random(300 * 1024, seed=1))
    reader.put_path(tmp_path / "a.bin")  # the reader has read the indexes once
    (tmp_path / "b.bin").write_bytes(_random(3 * 1024 * 1024, seed=2))
    stored = open_store("embedded", root=root).put_path(tmp_path / "b.bin")
    assert reader.has(stored.cid)
    reader.check(stored.cid)
    assert reader.cat(stored.cid) == (tmp_path / "b.bin").read_bytes()


def _kept(store_root: Path) -> list[str]:
    return sorted(p.name for p in (store_root / "packs").iterdir())


def test_a_large_file_sharing_leaves_writes_only_the_new_ones(tmp_path: Path) -> None:
    root = tmp_path / "store"
    chunk = 262144
    first = _random(40 * chunk, seed=7)
    (tmp_path / "a.bin").write_bytes(first)
    store = open_store("embedded", root=root)
    store.put_path(tmp_path / "a.bin")
    # The same leaves at the same places, and 20 new ones between and after them.
    second = first[: 10 * chunk] + _random(10 * chunk, seed=8) + first[20 * chunk :]
    second += _random(10 * chunk + 99, seed=9)
    (tmp_path / "b.bin").write_bytes(second)
    stored = store.put_path(tmp_path / "b.bin")
    assert stored.cid == hash_path(tmp_path / "b.bin").cid
    new_leaves = 21  # 10 in the middle, 11 at the end (the last one short)
    assert stored.bytes_added >= 20 * chunk + 99
    assert stored.blocks_added == new_leaves + 1  # and the root
    packs = [root / "packs" / name for name in _kept(root) if name.endswith(".pack")]
    newest = max(packs, key=lambda p: p.name)
    assert newest.stat().st_blocks * 512 < len(second)  # the shared leaves are holes
    fresh = open_store("embedded", root=root)
    fresh.check(stored.cid)
    fresh.get(stored.cid, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == second


def test_a_large_file_is_stored_without_direct_io(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filesystem refusing a direct write (EINVAL) gets buffered writes, same bytes."""
    from proml_cli.content import _local

    original = _local._pwrite_all
    refused: list[int] = []

    def refuse_direct(fd: int, data: memoryview, offset: int) -> None:
        if not refused:
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        original(fd, data, offset)

    monkeypatch.setattr(_local, "_pwrite_all", refuse_direct)
    source = tmp_path / "model.bin"
    source.write_bytes(_random(9 * 1024 * 1024 + 5, seed=3))
    store = open_store("embedded", root=tmp_path / "store")
    stored = store.put_path(source)
    assert refused
    assert stored.cid == hash_path(source).cid
    store.get(stored.cid, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()


def test_a_large_file_is_cloned_where_the_filesystem_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FICLONE (emulated here by a copy: this filesystem may not clone) is hashed in place."""
    from proml_cli.content import _local

    def clone(fd: int, request: int, source: int) -> int:
        assert request == _local._FICLONE
        os.lseek(source, 0, os.SEEK_SET)
        while piece := os.read(source, 1 << 20):
            os.write(fd, piece)
        return 0

    monkeypatch.setattr(_local.fcntl, "ioctl", clone)
    monkeypatch.setattr(_local, "copy_file", None)  # never streamed
    source = tmp_path / "model.bin"
    source.write_bytes(_random(9 * 1024 * 1024 + 5, seed=4))
    root = tmp_path / "store"
    stored = open_store("embedded", root=root).put_path(source)
    assert stored.cid == hash_path(source).cid
    pack = next(p for p in (root / "packs").iterdir() if p.name.endswith(".pack"))
    assert pack.read_bytes() == source.read_bytes()
    open_store("embedded", root=root).check(stored.cid)


def test_a_large_file_that_cannot_be_written_leaves_no_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proml_cli.content import _local

    def full(self: object, data: memoryview, offset: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_local._Pack, "write_at", full)
    source = tmp_path / "model.bin"
    source.write_bytes(_random(9 * 1024 * 1024 + 5, seed=5))
    root = tmp_path / "store"
    with pytest.raises(ContentError, match=r"cannot write to the content store.*No space left"):
        open_store("embedded", root=root).put_path(source)
    assert _kept(root) == []


def test_a_large_file_changed_while_stored_is_refused_and_leaves_no_pack(
    tmp_path: Path,
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(_random(9 * 1024 * 1024 + 5, seed=6))

    def append_once(done: int) -> None:
        if done == 4 * 1024 * 1024:
            with source.open("ab") as extra:
                extra.write(b"more")

    root = tmp_path / "store"
    with pytest.raises(InputError, match="changed while"):
        open_store("embedded", root=root).put_path(source, progress=append_once)
    assert _kept(root) == []


def test_large_files_of_a_directory_get_packs_of_their_own(tmp_path: Path) -> None:
    tree = tmp_path / "model"
    (tree / "shards").mkdir(parents=True)
    (tree / "config.json").write_bytes(b'{"layers": 2}\n')
    big = [_random(9 * 1024 * 1024 + 11 * i, seed=20 + i) for i in range(3)]
    for i, data in enumerate(big):
        (tree / "shards" / f"{i}.bin").write_bytes(data)
    (tree / "shards" / "small.bin").write_bytes(_random(300 * 1024, seed=30))
    root = tmp_path / "store"
    seen: list[int] = []
    stored = open_store("embedded", root=root).put_path(tree, progress=seen.append)
    expected = hash_path(tree)
    assert (stored.cid, stored.sha256) == (expected.cid, expected.sha256)
    assert stored.size == expected.size
    assert seen[-1] == expected.size
    sizes = sorted(p.stat().st_size for p in (root / "packs").glob("*.pack"))
    assert [len(data) for data in big] == sizes[-3:]  # each large file whole, in its own pack
    fresh = open_store("embedded", root=root)
    fresh.check(stored.cid)
    fresh.get(stored.cid, tmp_path / "back")
    for i, data in enumerate(big):
        assert (tmp_path / "back" / "shards" / f"{i}.bin").read_bytes() == data
    again = fresh.put_path(tree)
    assert (again.cid, again.blocks_added) == (stored.cid, 0)
