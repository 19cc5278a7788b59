"""CID, dag-pb and UnixFS encoding, the balanced layout and the HAMT, byte for byte."""

from __future__ import annotations

import hashlib

import pytest

from proml_cli.content import _unixfs as u
from proml_cli.errors import ContentError, InputError

SMALL = u.Layout(chunk_size=4, max_links=3)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")],
)
def test_varint_round_trip(value: int, encoded: bytes) -> None:
    assert u.encode_varint(value) == encoded
    assert u.decode_varint(encoded, 0) == (value, len(encoded))


def test_truncated_varint_is_a_content_error() -> None:
    with pytest.raises(ContentError):
        u.decode_varint(b"\x80", 0)


def test_base58_round_trip_keeps_leading_zeros() -> None:
    data = b"\x00\x00\x01\x02\xff"
    assert u.b58decode(u.b58encode(data)) == data
    assert u.b58encode(b"\x00") == "1"


@pytest.mark.parametrize(
    "text",
    [
        "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354",
    ],
)
def test_cid_text_round_trip(text: str) -> None:
    assert str(u.Cid.parse(text)) == text


def test_cid_parse_accepts_base58_cidv1_as_js_ipfs_prints_it() -> None:
    cid = u.Cid.parse("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    as_base58 = "z" + u.b58encode(cid.to_bytes())
    assert u.Cid.parse(as_base58) == cid


@pytest.mark.parametrize("text", ["", "hello", "Qm" + "0" * 44, "bafy!!", "x1234"])
def test_cid_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(InputError):
        u.Cid.parse(text)


def test_cid_parse_rejects_other_hash_functions() -> None:
    sha512_cid = "b" + u._b32encode(b"\x01\x55\x13\x40" + bytes(64))
    with pytest.raises(InputError, match="sha2-256"):
        u.Cid.parse(sha512_cid)


def test_empty_file_block_bytes() -> None:
    # PBNode{Data(1): UnixFS{Type(1)=File(2), filesize(3)=0}}, as rust-ipfs and kubo write it.
    link = u.dag_for_bytes(b"", 0)
    assert link.tsize == 6
    blocks: dict[bytes, bytes] = {}
    u.dag_for_bytes(b"", 0, _Collect(blocks))
    assert list(blocks.values()) == [bytes.fromhex("0a0408021800")]


def test_empty_directory_block_bytes() -> None:
    blocks: dict[bytes, bytes] = {}
    u.directory_node([], 0, _Collect(blocks))
    assert list(blocks.values()) == [bytes.fromhex("0a020801")]


def test_pb_link_field_order_and_links_before_data() -> None:
    cid = u.raw_cid(b"x")
    link = u.encode_pb_link(cid, b"", 1)
    # Links entry (field 2) holding Hash(1), Name(2, empty, still written), Tsize(3).
    body = b"\x0a\x24" + cid.to_bytes() + b"\x12\x00" + b"\x18\x01"
    assert link == b"\x12" + bytes([len(body)]) + body
    node = u.encode_pb_node([link], b"\x08\x02")
    assert node.startswith(b"\x12")
    assert node.endswith(b"\x0a\x02\x08\x02")


def test_unixfs_blocksizes_are_not_packed() -> None:
    data = u.encode_unixfs(u.UNIXFS_FILE, filesize=3, blocksizes=[1, 2])
    assert data == b"\x08\x02\x18\x03\x20\x01\x20\x02"
    decoded = u.decode_unixfs(data)
    assert decoded.blocksizes == (1, 2)
    assert decoded.filesize == 3


def test_decode_round_trip_of_an_internal_node() -> None:
    blocks: dict[bytes, bytes] = {}
    root = u.dag_for_bytes(b"abcdefghij", 1, _Collect(blocks), SMALL)
    node = u.decode_pb_node(blocks[root.cid.digest])
    unixfs = u.decode_unixfs(node.data)
    assert unixfs.type == u.UNIXFS_FILE
    assert unixfs.filesize == 10
    assert unixfs.blocksizes == (4, 4, 2)
    assert [link.name for link in node.links] == [b"", b"", b""]
    assert [link.tsize for link in node.links] == [4, 4, 2]
    assert root.tsize == len(blocks[root.cid.digest]) + 10


def _depth_and_fanouts(blocks: dict[bytes, bytes], cid: u.Cid) -> list[int]:
    """Return the number of links at each level along the rightmost path."""
    fanouts = []
    while cid.codec == u.CODEC_DAG_PB and cid.digest in blocks:
        node = u.decode_pb_node(blocks[cid.digest])
        if not node.links:
            break
        fanouts.append(len(node.links))
        cid = node.links[-1].cid
    return fanouts


@pytest.mark.parametrize(
    ("chunks", "shape"),
    [
        (1, []),  # one chunk: the root is the raw leaf itself
        (2, [2]),
        (3, [3]),  # max_links children: still one level
        (4, [2, 1]),  # one more: a second level, the new branch holds one leaf
        (9, [3, 3]),
        (10, [2, 1, 1]),  # a third level: rightmost branch is a chain down to one leaf
    ],
)
def test_balanced_layout_shape(chunks: int, shape: list[int]) -> None:
    blocks: dict[bytes, bytes] = {}
    root = u.dag_for_bytes(b"x" * (4 * chunks), 1, _Collect(blocks), SMALL)
    assert _depth_and_fanouts(blocks, root.cid) == shape
    assert root.filesize == 4 * chunks


def test_default_layout_174_links_boundary() -> None:
    blocks: dict[bytes, bytes] = {}
    layout = u.Layout(chunk_size=1)
    root = u.dag_for_bytes(bytes(174), 1, _Collect(blocks), layout)
    assert _depth_and_fanouts(blocks, root.cid) == [174]
    root = u.dag_for_bytes(bytes(175), 1, _Collect(blocks), layout)
    first = u.decode_pb_node(blocks[root.cid.digest]).links[0].cid
    assert _depth_and_fanouts(blocks, root.cid) == [2, 1]
    assert len(u.decode_pb_node(blocks[first.digest]).links) == 174


def test_multiblock_root_from_the_unixfs_spec() -> None:
    # ipfs/specs unixfs.md "Multi-block File": 5 raw leaves of 256,256,256,256,2 bytes, root
    # bafybeigcisqd7m5nf3qmuvjdbakl5bdnh4ocrmacaqkpuh77qjvggmt2sa of 245 bytes.
    leaves = [
        ("bafkreie5noke3mb7hqxukzcy73nl23k6lxszxi5w3dtmuwz62wnvkpsscm", 256),
        ("bafkreih4ephajybraj6wnxsbwjwa77fukurtpl7oj7t7pfq545duhot7cq", 256),
        ("bafkreigu7buvm3cfunb35766dn7tmqyh2um62zcio63en2btvxuybgcpue", 256),
        ("bafkreicll3huefkc3qnrzeony7zcfo7cr3nbx64hnxrqzsixpceg332fhe", 256),
        ("bafkreifst3pqztuvj57lycamoi7z34b4emf7gawxs74nwrc2c7jncmpaqm", 2),
    ]
    data = u.encode_unixfs(u.UNIXFS_FILE, filesize=1026, blocksizes=[n for _, n in leaves])
    links = [u.encode_pb_link(u.Cid.parse(c), b"", n) for c, n in leaves]
    block = u.encode_pb_node(links, data)
    assert len(block) == 245
    assert str(u.Cid(1, u.CODEC_DAG_PB, hashlib.sha256(block).digest())) == (
        "bafybeigcisqd7m5nf3qmuvjdbakl5bdnh4ocrmacaqkpuh77qjvggmt2sa"
    )


def test_simple_directory_from_the_unixfs_spec() -> None:
    # ipfs/specs unixfs.md "Simple Directory" (gateway-conformance dir-with-files.car).
    ascii_cid = u.Cid.parse("bafkreifkam6ns4aoolg3wedr4uzrs3kvq66p4pecirz6y2vlrngla62mxm")
    hello = u.Cid.parse("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4")
    multi = u.Cid.parse("bafybeigcisqd7m5nf3qmuvjdbakl5bdnh4ocrmacaqkpuh77qjvggmt2sa")
    entries = [
        u.DirEntry(b"multiblock.txt", multi, 1271),
        u.DirEntry(b"hello.txt", hello, 12),
        u.DirEntry(b"ascii.txt", ascii_cid, 31),
        u.DirEntry(b"ascii-copy.txt", ascii_cid, 31),
    ]
    link = u.directory_node(entries, 1, None)
    assert str(link.cid) == "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
    assert link.tsize == 1572


def test_directory_links_sorted_byte_wise() -> None:
    cid = u.raw_cid(b"")
    names = [b"b", b"B", b"a", b"\xc3\xa9", b"_", b"A0"]
    blocks: dict[bytes, bytes] = {}
    link = u.directory_node([u.DirEntry(n, cid, 0) for n in names], 1, _Collect(blocks))
    node = u.decode_pb_node(blocks[link.cid.digest])
    assert [entry.name for entry in node.links] == sorted(names)


def test_duplicate_directory_names_are_refused() -> None:
    cid = u.raw_cid(b"")
    with pytest.raises(InputError, match="duplicate"):
        u.directory_node([u.DirEntry(b"a", cid, 0), u.DirEntry(b"a", cid, 0)], 1, None)


def test_hamt_threshold_is_strictly_greater_than_256_kib() -> None:
    # boxo ipld/unixfs/io/directory.go: estimate = sum(len(name) + len(cid bytes)); a directory
    # exactly at HAMTShardingSize stays basic, one byte more converts it.
    cid = u.raw_cid(b"")
    per_entry = 36 + 10
    count = u.HAMT_SHARDING_SIZE // per_entry
    names = [f"{i:010d}".encode() for i in range(count)]
    rest = u.HAMT_SHARDING_SIZE - count * per_entry
    names.append(b"z" * (rest - 36))
    entries = [u.DirEntry(name, cid, 0) for name in names]
    assert sum(len(e.name) + 36 for e in entries) == u.HAMT_SHARDING_SIZE
    assert _unixfs_type(entries) == u.UNIXFS_DIRECTORY
    entries[-1] = u.DirEntry(entries[-1].name + b"z", cid, 0)
    assert _unixfs_type(entries) == u.UNIXFS_HAMT_SHARD


def _unixfs_type(entries: list[u.DirEntry]) -> int:
    blocks: dict[bytes, bytes] = {}
    link = u.directory_node(entries, 1, _Collect(blocks))
    return u.decode_unixfs(u.decode_pb_node(blocks[link.cid.digest]).data).type


def test_hamt_shard_layout() -> None:
    cid = u.raw_cid(b"")
    entries = [u.DirEntry(f"file{i}".encode(), cid, 0) for i in range(1, 300)]
    blocks: dict[bytes, bytes] = {}
    root = u.directory_node(entries, 1, _Collect(blocks), u.Layout(hamt_sharding_size=1))
    node = u.decode_pb_node(blocks[root.cid.digest])
    unixfs = u.decode_unixfs(node.data)
    assert (unixfs.type, unixfs.hash_type, unixfs.fanout) == (5, 0x22, 256)
    prefixes = [link.name[:2] for link in node.links]
    assert prefixes == sorted(prefixes)
    assert all(p == p.upper() for p in prefixes)
    bitfield = int.from_bytes(unixfs.data or b"", "big")
    assert bitfield.bit_count() == len(node.links)
    for link in node.links:
        index = int(link.name[:2], 16)
        assert bitfield >> index & 1
        if len(link.name) > 2:
            assert u.murmur3_x64_64(link.name[2:])[0] == index


def test_murmur3_known_values() -> None:
    # h1 of MurmurHash3_x64_128, seed 0, the widely published reference values.
    assert u.murmur3_x64_64(b"") == bytes(8)
    assert u.murmur3_x64_64(b"hello").hex() == "cbd8a7b341bd9b02"
    fox = b"The quick brown fox jumps over the lazy dog"
    assert u.murmur3_x64_64(fox).hex() == "e34bbc7bbc071b6c"
    # Every tail length takes a different branch; none may collide on this input.
    assert len({u.murmur3_x64_64(b"x" * n) for n in range(40)}) == 40


class _Collect:
    def __init__(self, blocks: dict[bytes, bytes]) -> None:
        self.blocks = blocks

    def put(self, digest: bytes, parts: object) -> None:
        data = b"".join(bytes(part) for part in parts)  # type: ignore[attr-defined]
        assert hashlib.sha256(data).digest() == digest
        self.blocks[digest] = data
