"""copy_file: one read gives the sha256, the kubo CID and the bytes to keep, in order."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from proml_cli.content import _unixfs
from proml_cli.errors import ContentError, InputError

#: Small chunks and buffers, so a few KiB exercise many buffers and a DAG several levels deep.
TINY = _unixfs.Layout(chunk_size=4096, max_links=3, buffer_size=3 * 4096)


def _pattern(size: int) -> bytes:
    base = bytes(range(251))
    return (base * (size // 251 + 1))[:size]


class RecordingSink:
    """Keeps what copy_file hands over, and checks the order it promises."""

    def __init__(self, source: bytes | None) -> None:
        self.source = source
        self.kept = bytearray()
        self.leaves: list[tuple[bytes, int, int]] = []
        self.blocks: list[bytes] = []
        self.settled_at: int | None = None

    def write_leaves(
        self, data: memoryview, offset: int, leaves: Sequence[tuple[bytes, int, int]]
    ) -> None:
        assert offset == len(self.kept)  # file order, no gap
        self.kept += data
        for digest, at, size in leaves:
            assert offset <= at
            assert at + size <= offset + len(data)
            if self.source is not None:
                assert hashlib.sha256(self.source[at : at + size]).digest() == digest
        self.leaves.extend(leaves)

    def put(self, digest: bytes, parts: Sequence[bytes | memoryview]) -> None:
        block = b"".join(bytes(part) for part in parts)
        assert hashlib.sha256(block).digest() == digest
        self.blocks.append(digest)

    def settle(self) -> None:
        self.settled_at = len(self.blocks)


@pytest.mark.parametrize("mapped", [True, False], ids=["mapped", "read"])
@pytest.mark.parametrize(
    "size", [0, 1, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 1, 10 * 4096, 40 * 4096 + 17]
)
def test_copy_gives_the_hash_of_one_pass_and_every_byte(
    tmp_path: Path, size: int, mapped: bool
) -> None:
    data = _pattern(size)
    target = tmp_path / "f"
    target.write_bytes(data)
    expected = _unixfs.import_path(target, 1, layout=TINY)
    sink = RecordingSink(data)
    got = _unixfs.copy_file(
        bytes(target), str(target), sink, layout=dataclasses.replace(TINY, mapped=mapped)
    )
    assert (got.sha256, got.size, got.root.cid) == (expected.sha256, size, expected.root.cid)
    assert bytes(sink.kept) == data
    assert [at for _, at, _ in sink.leaves] == list(range(0, size, 4096))
    if size > 4096:  # a dag-pb root: put last, after settle()
        assert sink.blocks[-1] == got.root.cid.digest
        assert sink.settled_at is not None
        assert sink.settled_at <= len(sink.blocks) - 1


@pytest.mark.parametrize("mapped", [True, False], ids=["mapped", "read"])
def test_a_real_size_file_matches_the_two_buffer_hasher(tmp_path: Path, mapped: bool) -> None:
    data = _pattern(5 * 4 * 1024 * 1024 + 262144 + 3)  # many buffers and a tail
    target = tmp_path / "f"
    target.write_bytes(data)
    expected = _unixfs.hash_file(bytes(target), str(target), 1)
    assert expected.sha256 == hashlib.sha256(data).hexdigest()
    sink = RecordingSink(data)
    got = _unixfs.copy_file(
        bytes(target),
        str(target),
        sink,
        layout=dataclasses.replace(_unixfs.DEFAULT_LAYOUT, mapped=mapped),
    )
    assert (got.sha256, got.root.cid) == (expected.sha256, expected.root.cid)
    assert bytes(sink.kept) == data
    # Hashing alone (no store) reads a large file the same way, and gives the same.
    hashed = _unixfs.import_path(target, 1)
    assert (hashed.sha256, hashed.size, hashed.root.cid) == (
        expected.sha256,
        len(data),
        expected.root.cid,
    )


@pytest.mark.parametrize("mapped", [True, False], ids=["mapped", "read"])
def test_a_file_changed_while_copied_is_an_error(tmp_path: Path, mapped: bool) -> None:
    target = tmp_path / "growing"
    target.write_bytes(_pattern(10 * 4096))
    sink = RecordingSink(None)  # the bytes change under it
    # Open for writing before the copy, as a writer still at work: no lease is granted, so
    # even the mapped copy reads, and sees the change.
    with target.open("ab") as extra:

        def append_once(done: int) -> None:
            if done == 3 * 4096:
                extra.write(b"more")
                extra.flush()

        with pytest.raises(InputError, match="changed while it was being hashed"):
            _unixfs.copy_file(
                bytes(target),
                str(target),
                sink,
                on_bytes=append_once,
                layout=dataclasses.replace(TINY, mapped=mapped),
            )


def _leases_offered(probe: Path) -> bool:
    probe.write_bytes(b"x")
    fd = os.open(probe, os.O_RDONLY)
    try:
        mapping = _unixfs._Mapped.open(fd)
        if mapping is None:
            return False
        mapping.close()
        return True
    finally:
        os.close(fd)


def test_a_writer_waits_while_the_file_is_mapped_then_the_rest_is_read(tmp_path: Path) -> None:
    if not _leases_offered(tmp_path / "probe"):
        pytest.skip("this filesystem or kernel grants no file leases: the file is read")
    data = _pattern(40 * 4096 + 17)
    target = tmp_path / "f"
    target.write_bytes(data)
    refused: list[int] = []

    def ask_to_write(done: int) -> None:
        if not refused:
            # The mapped bytes cannot change: a writer's open waits (here: would block), and
            # asking breaks the lease, so the copy maps no further window.
            with pytest.raises(BlockingIOError):
                os.open(target, os.O_WRONLY | os.O_NONBLOCK)
            refused.append(done)

    sink = RecordingSink(data)
    got = _unixfs.copy_file(bytes(target), str(target), sink, on_bytes=ask_to_write, layout=TINY)
    expected = _unixfs.import_path(target, 1, layout=TINY)
    assert refused
    assert (got.sha256, got.size, got.root.cid) == (expected.sha256, len(data), expected.root.cid)
    assert bytes(sink.kept) == data
    os.close(os.open(target, os.O_WRONLY | os.O_NONBLOCK))  # the lease is given up


def test_a_sink_error_stops_the_copy_and_is_raised_as_is(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(_pattern(40 * 4096))

    class FullSink(RecordingSink):
        def write_leaves(
            self, data: memoryview, offset: int, leaves: Sequence[tuple[bytes, int, int]]
        ) -> None:
            if offset >= 2 * 3 * 4096:
                raise ContentError("cannot write to the content store: no space left")
            super().write_leaves(data, offset, leaves)

    sink = FullSink(target.read_bytes())
    with pytest.raises(ContentError, match="no space left"):
        _unixfs.copy_file(bytes(target), str(target), sink, layout=TINY)
    assert sink.settled_at is None  # nor the root, which follows settle()


def test_missing_file_and_symlink_are_input_errors(tmp_path: Path) -> None:
    sink = RecordingSink(b"")
    with pytest.raises(InputError, match="no such file"):
        _unixfs.copy_file(bytes(tmp_path / "nope"), "nope", sink)
    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(InputError, match="symbolic link"):
        _unixfs.copy_file(bytes(tmp_path / "link"), "link", sink)
