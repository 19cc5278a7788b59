"""CAR v1: the header bytes, a write/read round trip, and a reader that checks every block."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from proml_cli.content import _car
from proml_cli.content import _unixfs as u
from proml_cli.errors import ContentError


def test_header_is_canonical_dag_cbor() -> None:
    root = u.raw_cid(b"hello world\n")
    header = _car.encode_header([root])
    link = b"\x00" + root.to_bytes()
    expected = (
        b"\xa2"  # map of 2
        + b"\x65roots"
        + b"\x81"  # array of 1
        + b"\xd8\x2a"  # tag 42
        + b"\x58"
        + bytes([len(link)])
        + link
        + b"\x67version"
        + b"\x01"
    )
    assert header == expected
    assert _car.decode_header(header) == [root]


def test_header_with_a_cidv0_root() -> None:
    root = u.Cid.parse("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn")
    assert _car.decode_header(_car.encode_header([root])) == [root]


def _blocks() -> list[tuple[u.Cid, bytes]]:
    leaf = b"leaf data"
    v0_empty_dir = bytes.fromhex("0a020801")
    return [
        (u.raw_cid(leaf), leaf),
        (u.Cid(0, u.CODEC_DAG_PB, hashlib.sha256(v0_empty_dir).digest()), v0_empty_dir),
    ]


def test_round_trip(tmp_path: Path) -> None:
    blocks = _blocks()
    dest = tmp_path / "out.car"
    assert _car.write_car(dest, [blocks[0][0]], blocks) == 2
    with _car.CarReader(dest) as reader:
        assert reader.roots == [blocks[0][0]]
        assert list(reader) == blocks
    assert not list(tmp_path.glob(".*.tmp"))


def test_reader_rejects_a_block_that_does_not_match_its_cid(tmp_path: Path) -> None:
    blocks = _blocks()
    dest = tmp_path / "out.car"
    _car.write_car(dest, [blocks[0][0]], blocks)
    raw = bytearray(dest.read_bytes())
    raw[raw.index(b"leaf data")] ^= 0x01
    dest.write_bytes(bytes(raw))
    with _car.CarReader(dest) as reader, pytest.raises(ContentError, match="does not hash"):
        list(reader)


def test_reader_rejects_truncation_and_bad_headers(tmp_path: Path) -> None:
    blocks = _blocks()
    dest = tmp_path / "out.car"
    _car.write_car(dest, [blocks[0][0]], blocks)
    whole = dest.read_bytes()
    dest.write_bytes(whole[:-3])
    with _car.CarReader(dest) as reader, pytest.raises(ContentError, match="truncated"):
        list(reader)
    dest.write_bytes(b"\x05\xa1\x61a\x01\x00")
    with pytest.raises(ContentError):
        _car.CarReader(dest).__enter__()
    version2 = b"\xa2\x65roots\x80\x67version\x02"
    with pytest.raises(ContentError, match="version"):
        _car.decode_header(version2)
