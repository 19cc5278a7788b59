"""The combined pack index's file format: build, parse, find, merge (no file system)."""

from __future__ import annotations

import random

from proml_cli.content._local import _COMBINED_RECORD, _CombinedIndex, _records

STEMS = [f"{n:020d}-{n:08x}" for n in range(1, 7)]


def _digests(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    # Some digests share their first byte, some start with 0x00 or 0xff (the fanout's ends).
    found = [rng.randbytes(32) for _ in range(count)]
    return [*found, b"\x00" * 32, b"\xff" * 32, b"\x00" + b"\x01" * 31, b"\xff" + b"\x00" * 31]


def test_build_parse_find_round_trip() -> None:
    entries = {digest: (at % 3, at * 7, 262144) for at, digest in enumerate(_digests(500, 1))}
    index, data = _CombinedIndex.build(STEMS[:3], _records(entries), [STEMS[4]], 1234)
    parsed = _CombinedIndex.parse(data)
    assert parsed is not None
    assert (parsed.names, list(parsed.outside), parsed.log_offset) == (
        STEMS[:3],
        [STEMS[4]],
        1234,
    )
    for found in (index, parsed):
        for digest, (pack, offset, length) in entries.items():
            assert found.find(digest) == (STEMS[pack], offset, length)
        for digest in _digests(50, 2)[:50]:
            assert found.find(digest) is None
    parsed.masked.add(1)
    assert all(parsed.find(digest) is None for digest, (pack, _, _) in entries.items() if pack == 1)


def test_merged_equals_a_fresh_build() -> None:
    old = {digest: (at % 2, at, 1000) for at, digest in enumerate(_digests(300, 3))}
    index, _ = _CombinedIndex.build(STEMS[:2], _records(old))
    new_digests = _digests(200, 4)[:200] + list(old)[:40]  # some new, some replacing old ones
    added = {digest: (2 + at % 2, at * 3, 2000) for at, digest in enumerate(new_digests)}
    merged, data = index.merged(STEMS[2:4], added, [], 99)
    expected, expected_data = _CombinedIndex.build(STEMS[:4], _records(old | added), [], 99)
    assert data == expected_data
    assert merged.records == expected.records
    assert len(merged.records) == _COMBINED_RECORD.size * len(old | added)


def test_damaged_or_foreign_bytes_are_refused() -> None:
    _, data = _CombinedIndex.build(STEMS[:1], _records({b"\x01" * 32: (0, 0, 1)}))
    assert _CombinedIndex.parse(data) is not None
    for bad in (
        b"",
        data[:-1],
        data + b"\0",
        bytes([data[0] ^ 1]) + data[1:],
        data[:50] + bytes([data[50] ^ 0x80]) + data[51:],
    ):
        assert _CombinedIndex.parse(bad) is None
