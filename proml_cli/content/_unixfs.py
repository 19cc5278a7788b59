"""Kubo-identical UnixFS import: CIDs, dag-pb and UnixFS encoding, and the one-pass file hasher.

Everything here computes what ``ipfs add`` (kubo defaults) computes, without a daemon:

- files are cut into 262144-byte chunks and laid out as a balanced DAG with at most 174 links
  per node (go-unixfs ``balanced`` layout); leaves are raw blocks for CIDv1 (``--cid-version 1``
  implies ``--raw-leaves``) and dag-pb UnixFS ``File`` nodes with the data inline for CIDv0;
- directories are dag-pb UnixFS ``Directory`` nodes with links sorted byte-wise by name, and
  become HAMT-sharded directories (fanout 256, murmur3-x64-64) when the estimated node size,
  the sum of ``len(name) + len(cid bytes)`` over the entries, exceeds 256 KiB;
- every digest is sha2-256.

The same pass that builds the DAG also computes the file's plain sha256 and can hand every block
to a sink (the embedded store), so a file is read exactly once.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from io import FileIO
from pathlib import Path
from typing import Protocol, runtime_checkable

from proml_cli.errors import ContentError, InputError

CHUNK_SIZE = 262144
MAX_LINKS = 174
HAMT_SHARDING_SIZE = 256 * 1024
HAMT_FANOUT = 256

CODEC_RAW = 0x55
CODEC_DAG_PB = 0x70
MULTIHASH_SHA2_256 = 0x12
MULTIHASH_MURMUR3_X64_64 = 0x22

# UnixFS Data.Type values.
UNIXFS_RAW = 0
UNIXFS_DIRECTORY = 1
UNIXFS_FILE = 2
UNIXFS_SYMLINK = 4
UNIXFS_HAMT_SHARD = 5

#: Read buffer for the one-pass hasher; a multiple of the chunk size. 4 MiB measured best in
#: bench/hash.py (1 MiB costs ~3% more on the store path; larger buffers gain nothing).
DEFAULT_BUFFER_SIZE = 4 * 1024 * 1024

#: Files hashed at once inside a directory. Small files are syscall-bound, so a few more threads
#: than cores help; large files use a second thread of their own for the plain sha256.
MAX_FILE_WORKERS = 8

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class Layout:
    """The importer's parameters: kubo's defaults, changeable only to replay published vectors."""

    chunk_size: int = CHUNK_SIZE
    max_links: int = MAX_LINKS
    hamt_sharding_size: int = HAMT_SHARDING_SIZE
    buffer_size: int = DEFAULT_BUFFER_SIZE
    #: Run the file's plain sha256 on a helper thread (off only to measure what it buys).
    threaded: bool = True
    #: Hash a large single file (CIDv1) as ``copy_file`` reads it, mapped under a read lease
    #: where one is granted (off only to measure the two-buffer hasher, ``hash_file``).
    mapped: bool = True

    def read_size(self) -> int:
        """Return the read buffer size rounded down to a whole number of chunks (at least one)."""
        return max(1, self.buffer_size // self.chunk_size) * self.chunk_size


DEFAULT_LAYOUT = Layout()


# --------------------------------------------------------------------------- varints and bases


def encode_varint(value: int) -> bytes:
    """Encode an unsigned LEB128 varint (protobuf, multiformats and CAR all use it)."""
    if value < 0:
        raise ValueError("varints are unsigned")  # a programming error, never user input
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a varint at ``pos``; return the value and the position after it."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ContentError("malformed varint in block data")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: index for index, char in enumerate(_B58_ALPHABET)}


def b58encode(data: bytes) -> str:
    """Encode bytes in base58btc (the text form of CIDv0)."""
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, rem = divmod(number, 58)
        digits.append(_B58_ALPHABET[rem])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Decode base58btc text; raise InputError on a character outside the alphabet."""
    number = 0
    for char in text:
        try:
            number = number * 58 + _B58_INDEX[char]
        except KeyError:
            raise InputError(f"not a CID: {text!r} (bad base58 character {char!r})") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def _b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def _b32decode(text: str) -> bytes:
    padded = text.upper() + "=" * (-len(text) % 8)
    try:
        return base64.b32decode(padded)
    except ValueError:
        raise InputError(f"not a CID: {text!r} (bad base32)") from None


# --------------------------------------------------------------------------------------- CIDs


@dataclass(frozen=True)
class Cid:
    """A sha2-256 content identifier: version 0 (dag-pb, base58btc) or 1 (any codec, base32)."""

    version: int
    codec: int
    digest: bytes

    @property
    def multihash(self) -> bytes:
        """Return the multihash bytes: code 0x12, length 32, then the digest."""
        return bytes((MULTIHASH_SHA2_256, 32)) + self.digest

    def to_bytes(self) -> bytes:
        """Return the binary CID as it appears in dag-pb links and CAR sections."""
        if self.version == 0:
            return self.multihash
        return b"\x01" + encode_varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + _b32encode(self.to_bytes())

    def matches(self, block: bytes | memoryview) -> bool:
        """Return whether ``block`` hashes to this CID's digest."""
        return hashlib.sha256(block).digest() == self.digest

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse the text form of a CID (CIDv0, or CIDv1 in base32, base58btc or base16).

        Raises:
            InputError: the text is not a CID, or uses a hash other than sha2-256.
        """
        text = text.strip()
        if len(text) == 46 and text.startswith("Qm"):
            cid, end = cls.from_bytes(b58decode(text), 0)
            return cid
        if not text:
            raise InputError("not a CID: empty string")
        prefix, body = text[0], text[1:]
        if prefix in "bB":
            raw = _b32decode(body)
        elif prefix == "z":
            raw = b58decode(body)
        elif prefix in "fF":
            try:
                raw = bytes.fromhex(body)
            except ValueError:
                raise InputError(f"not a CID: {text!r} (bad base16)") from None
        else:
            raise InputError(f"not a CID: {text!r} (unknown multibase prefix {prefix!r})")
        try:
            cid, end = cls.from_bytes(raw, 0)
        except ContentError as exc:
            raise InputError(f"not a CID: {text!r} ({exc.diagnosis})") from None
        if end != len(raw):
            raise InputError(f"not a CID: {text!r} (trailing bytes)")
        return cid

    @classmethod
    def from_bytes(cls, buf: bytes | memoryview, pos: int) -> tuple[Cid, int]:
        """Decode a binary CID at ``pos``; return it and the position after it.

        Raises:
            ContentError: the bytes are not a sha2-256 CID.
        """
        if bytes(buf[pos : pos + 2]) == b"\x12\x20":
            end = pos + 34
            if end > len(buf):
                raise ContentError("truncated CIDv0")
            return cls(0, CODEC_DAG_PB, bytes(buf[pos + 2 : end])), end
        version, pos = decode_varint(buf, pos)
        if version != 1:
            raise ContentError(f"unsupported CID version {version}")
        codec, pos = decode_varint(buf, pos)
        code, pos = decode_varint(buf, pos)
        length, pos = decode_varint(buf, pos)
        if code != MULTIHASH_SHA2_256 or length != 32:
            raise ContentError(f"unsupported multihash 0x{code:x} (only sha2-256 is supported)")
        end = pos + 32
        if end > len(buf):
            raise ContentError("truncated CID")
        return cls(1, codec, bytes(buf[pos:end])), end


def raw_cid(data: bytes | memoryview) -> Cid:
    """Return the CIDv1 of ``data`` as a single raw block."""
    return Cid(1, CODEC_RAW, hashlib.sha256(data).digest())


# ------------------------------------------------------------------------ protobuf: dag-pb, UnixFS


def _len_field(number: int, payload: bytes | memoryview) -> bytes:
    return bytes(((number << 3) | 2,)) + encode_varint(len(payload)) + bytes(payload)


def _varint_field(number: int, value: int) -> bytes:
    return bytes((number << 3,)) + encode_varint(value)


def encode_pb_link(cid: Cid, name: bytes, tsize: int) -> bytes:
    """Encode one PBNode ``Links`` entry (field 2) holding PBLink{Hash=1, Name=2, Tsize=3}.

    Kubo always writes Name, even empty for file chunks: the 245-byte root of the UnixFS
    spec's ``multiblock.txt`` vector only adds up with the two bytes of an empty Name per link.
    """
    body = _len_field(1, cid.to_bytes()) + _len_field(2, name) + _varint_field(3, tsize)
    return _len_field(2, body)


def encode_pb_node(links: Sequence[bytes], data: bytes | None) -> bytes:
    """Encode a PBNode in dag-pb canonical form: Links (field 2) first, then Data (field 1)."""
    tail = _len_field(1, data) if data is not None else b""
    return b"".join(links) + tail


def encode_unixfs(
    type_: int,
    *,
    data: bytes | None = None,
    filesize: int | None = None,
    blocksizes: Sequence[int] = (),
    hash_type: int | None = None,
    fanout: int | None = None,
) -> bytes:
    """Encode a UnixFS ``Data`` message, fields in number order; blocksizes are not packed."""
    out = bytearray(_varint_field(1, type_))
    if data is not None:
        out += _len_field(2, data)
    if filesize is not None:
        out += _varint_field(3, filesize)
    for size in blocksizes:
        out += _varint_field(4, size)
    if hash_type is not None:
        out += _varint_field(5, hash_type)
    if fanout is not None:
        out += _varint_field(6, fanout)
    return bytes(out)


def _fields(buf: bytes | memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """Yield (field number, value) for a protobuf message with varint and bytes fields only."""
    view = memoryview(buf)
    pos = 0
    while pos < len(view):
        key, pos = decode_varint(view, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = decode_varint(view, pos)
            yield number, value
        elif wire == 2:
            length, pos = decode_varint(view, pos)
            if pos + length > len(view):
                raise ContentError("malformed protobuf: field runs past the end of the block")
            yield number, view[pos : pos + length]
            pos += length
        else:
            raise ContentError(f"malformed protobuf: unsupported wire type {wire}")


@dataclass(frozen=True)
class PBLink:
    """A decoded dag-pb link."""

    cid: Cid
    name: bytes
    tsize: int | None


@dataclass(frozen=True)
class PBNode:
    """A decoded dag-pb node."""

    links: tuple[PBLink, ...]
    data: bytes | None


def decode_pb_node(block: bytes | memoryview) -> PBNode:
    """Decode a dag-pb block.

    Raises:
        ContentError: the block is not valid dag-pb.
    """
    links: list[PBLink] = []
    data: bytes | None = None
    for number, value in _fields(block):
        if number == 2 and isinstance(value, memoryview):
            links.append(_decode_pb_link(value))
        elif number == 1 and isinstance(value, memoryview):
            data = bytes(value)
        else:
            raise ContentError(f"malformed dag-pb node: unexpected field {number}")
    return PBNode(tuple(links), data)


def _decode_pb_link(buf: memoryview) -> PBLink:
    cid: Cid | None = None
    name = b""
    tsize: int | None = None
    for number, value in _fields(buf):
        if number == 1 and isinstance(value, memoryview):
            cid, end = Cid.from_bytes(value, 0)
            if end != len(value):
                raise ContentError("malformed dag-pb link: trailing bytes after the CID")
        elif number == 2 and isinstance(value, memoryview):
            name = bytes(value)
        elif number == 3 and isinstance(value, int):
            tsize = value
        else:
            raise ContentError(f"malformed dag-pb link: unexpected field {number}")
    if cid is None:
        raise ContentError("malformed dag-pb link: no Hash")
    return PBLink(cid, name, tsize)


@dataclass(frozen=True)
class UnixFSData:
    """A decoded UnixFS ``Data`` message (mode and mtime are ignored)."""

    type: int
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()
    hash_type: int | None = None
    fanout: int | None = None


def decode_unixfs(buf: bytes | None) -> UnixFSData:
    """Decode the UnixFS message held in a dag-pb node's Data.

    Raises:
        ContentError: there is no Data, or it is not a UnixFS message.
    """
    if buf is None:
        raise ContentError("dag-pb node has no UnixFS data")
    type_: int | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    hash_type: int | None = None
    fanout: int | None = None
    for number, value in _fields(buf):
        if isinstance(value, int):
            if number == 1:
                type_ = value
            elif number == 3:
                filesize = value
            elif number == 4:
                blocksizes.append(value)
            elif number == 5:
                hash_type = value
            elif number == 6:
                fanout = value
        elif number == 2:
            data = bytes(value)
        elif number == 4:  # tolerate a packed encoding on read
            view, pos = value, 0
            while pos < len(view):
                size, pos = decode_varint(view, pos)
                blocksizes.append(size)
    if type_ is None:
        raise ContentError("UnixFS data without a Type")
    return UnixFSData(type_, data, filesize, tuple(blocksizes), hash_type, fanout)


# ------------------------------------------------------------------------------- block sink


class BlockSink(Protocol):
    """Receives every block the importer builds, children before parents."""

    def put(self, digest: bytes, parts: Sequence[bytes | memoryview]) -> None:
        """Store the block made of ``parts`` concatenated, whose sha256 is ``digest``."""


@runtime_checkable
class LeafSink(BlockSink, Protocol):
    """A sink that already holds the file's bytes: raw leaves are recorded by their offset."""

    def put_leaf(self, digest: bytes, offset: int, size: int) -> None:
        """Record that the raw leaf ``digest`` is the ``size`` bytes at ``offset`` of the file."""


@dataclass(frozen=True)
class DagLink:
    """A built (sub)DAG: its CID, its cumulative serialized size and the file bytes under it."""

    cid: Cid
    tsize: int
    filesize: int


def _store(sink: BlockSink | None, digest: bytes, parts: Sequence[bytes | memoryview]) -> None:
    if sink is not None:
        sink.put(digest, parts)


def _dag_pb(version: int, block: bytes, sink: BlockSink | None) -> Cid:
    digest = hashlib.sha256(block).digest()
    _store(sink, digest, (block,))
    return Cid(version, CODEC_DAG_PB, digest)


_EMPTY_V0_FILE = encode_pb_node([], encode_unixfs(UNIXFS_FILE, filesize=0))


def _v0_leaf_frame(size: int) -> tuple[bytes, bytes]:
    """Return the bytes before and after a chunk in its CIDv0 leaf: PBNode{Data: File{data}}."""
    inner_head = _varint_field(1, UNIXFS_FILE) + b"\x12" + encode_varint(size)
    inner_tail = _varint_field(3, size)
    inner_len = len(inner_head) + size + len(inner_tail)
    return b"\x0a" + encode_varint(inner_len) + inner_head, inner_tail


class FileDag:
    """Builds a file's balanced DAG from its chunks as they arrive, in memory flat in file size.

    Equivalent to go-unixfs ``balanced.Layout``: leaves fill a node up to ``max_links``; when
    one more leaf arrives the full node is closed and becomes a child one level up, so all
    leaves end at the same depth and every node but the rightmost ones is full.
    """

    def __init__(
        self,
        cid_version: int,
        sink: BlockSink | None,
        layout: Layout,
        leaves: LeafSink | None = None,
    ) -> None:
        self._version = cid_version
        self._sink = sink
        # With ``leaves`` (CIDv1 only), raw leaves are not copied: they are recorded by offset.
        self._leaf_sink = leaves if cid_version == 1 else None
        self._max_links = layout.max_links
        self._levels: list[list[DagLink]] = [[]]
        self._leaves = 0
        self._offset = 0

    def add_chunk(self, chunk: memoryview | bytes, sha256: bytes | None = None) -> None:
        """Add the next chunk; ``sha256`` is its digest when the caller already has it."""
        size = len(chunk)
        if self._version == 1:
            digest = sha256 if sha256 is not None else hashlib.sha256(chunk).digest()
            if self._leaf_sink is not None:
                self._leaf_sink.put_leaf(digest, self._offset, size)
            else:
                _store(self._sink, digest, (chunk,))
            link = DagLink(Cid(1, CODEC_RAW, digest), size, size)
        else:
            head, tail = _v0_leaf_frame(size)
            hasher = hashlib.sha256(head)
            hasher.update(chunk)
            hasher.update(tail)
            digest = hasher.digest()
            _store(self._sink, digest, (head, chunk, tail))
            link = DagLink(Cid(0, CODEC_DAG_PB, digest), len(head) + size + len(tail), size)
        self._leaves += 1
        self._offset += size
        self._append(0, link)

    def _append(self, level: int, link: DagLink) -> None:
        if level == len(self._levels):
            self._levels.append([])
        row = self._levels[level]
        if len(row) == self._max_links:
            self._levels[level] = []
            self._append(level + 1, self._node(row))
            row = self._levels[level]
        row.append(link)

    def _node(self, children: Sequence[DagLink]) -> DagLink:
        filesize = sum(child.filesize for child in children)
        data = encode_unixfs(
            UNIXFS_FILE, filesize=filesize, blocksizes=[child.filesize for child in children]
        )
        links = [encode_pb_link(child.cid, b"", child.tsize) for child in children]
        block = encode_pb_node(links, data)
        cid = _dag_pb(self._version, block, self._sink)
        return DagLink(cid, len(block) + sum(child.tsize for child in children), filesize)

    def finish(self) -> DagLink:
        """Close every open node and return the root."""
        if self._leaves == 0:
            if self._version == 1:
                digest = hashlib.sha256(b"").digest()
                _store(self._sink, digest, (b"",))
                return DagLink(Cid(1, CODEC_RAW, digest), 0, 0)
            cid = _dag_pb(0, _EMPTY_V0_FILE, self._sink)
            return DagLink(cid, len(_EMPTY_V0_FILE), 0)
        level = 0
        while True:
            row = self._levels[level]
            if level == len(self._levels) - 1 and len(row) == 1:
                return row[0]
            self._levels[level] = []
            if row:
                self._append(level + 1, self._node(row))
            level += 1


def dag_for_bytes(
    data: bytes | memoryview,
    cid_version: int = 1,
    sink: BlockSink | None = None,
    layout: Layout = DEFAULT_LAYOUT,
) -> DagLink:
    """Build the DAG ``ipfs add`` would build for a file holding ``data``."""
    view = memoryview(data)
    dag = FileDag(cid_version, sink, layout)
    for offset in range(0, len(view), layout.chunk_size):
        dag.add_chunk(view[offset : offset + layout.chunk_size])
    return dag.finish()


# --------------------------------------------------------------------------------- directories


@dataclass(frozen=True)
class DirEntry:
    """One named child of a directory."""

    name: bytes
    cid: Cid
    tsize: int


def symlink_node(target: bytes, cid_version: int, sink: BlockSink | None) -> DagLink:
    """Build the UnixFS Symlink node kubo stores for a symbolic link."""
    block = encode_pb_node([], encode_unixfs(UNIXFS_SYMLINK, data=target))
    return DagLink(_dag_pb(cid_version, block, sink), len(block), 0)


def directory_node(
    entries: Sequence[DirEntry],
    cid_version: int,
    sink: BlockSink | None,
    layout: Layout = DEFAULT_LAYOUT,
) -> DagLink:
    """Build a directory as kubo does: a basic Directory node, or a HAMT past the threshold."""
    ordered = sorted(entries, key=lambda entry: entry.name)
    for before, after in itertools.pairwise(ordered):
        if before.name == after.name:
            raise InputError(f"duplicate directory entry {os.fsdecode(before.name)!r}")
    estimate = sum(len(entry.name) + len(entry.cid.to_bytes()) for entry in ordered)
    if estimate > layout.hamt_sharding_size:
        return _hamt_shard(
            [(murmur3_x64_64(entry.name), entry) for entry in ordered], 0, cid_version, sink
        )
    links = [encode_pb_link(entry.cid, entry.name, entry.tsize) for entry in ordered]
    block = encode_pb_node(links, encode_unixfs(UNIXFS_DIRECTORY))
    cid = _dag_pb(cid_version, block, sink)
    return DagLink(cid, len(block) + sum(entry.tsize for entry in ordered), 0)


def _hamt_shard(
    items: Sequence[tuple[bytes, DirEntry]], depth: int, cid_version: int, sink: BlockSink | None
) -> DagLink:
    """Build one HAMT shard: a bucket with one entry links it, a bucket with more gets a shard."""
    if depth >= 8:
        names = ", ".join(repr(os.fsdecode(entry.name)) for _, entry in items)
        raise InputError(f"cannot shard directory: names with the same 64-bit hash: {names}")
    buckets: dict[int, list[tuple[bytes, DirEntry]]] = {}
    for item in items:
        buckets.setdefault(item[0][depth], []).append(item)
    links: list[bytes] = []
    bitfield = 0
    children_size = 0
    for index in sorted(buckets):
        group = buckets[index]
        bitfield |= 1 << index
        prefix = f"{index:02X}".encode("ascii")
        if len(group) == 1:
            entry = group[0][1]
            links.append(encode_pb_link(entry.cid, prefix + entry.name, entry.tsize))
            children_size += entry.tsize
        else:
            child = _hamt_shard(group, depth + 1, cid_version, sink)
            links.append(encode_pb_link(child.cid, prefix, child.tsize))
            children_size += child.tsize
    # go-bitfield: bit i is (value >> i) & 1 of a big-endian number, leading zero bytes dropped.
    bits = bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big")
    data = encode_unixfs(
        UNIXFS_HAMT_SHARD, data=bits, hash_type=MULTIHASH_MURMUR3_X64_64, fanout=HAMT_FANOUT
    )
    block = encode_pb_node(links, data)
    return DagLink(_dag_pb(cid_version, block, sink), len(block) + children_size, 0)


_MASK64 = (1 << 64) - 1


def _rotl64(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (64 - shift))) & _MASK64


def _fmix64(value: int) -> int:
    value ^= value >> 33
    value = (value * 0xFF51AFD7ED558CCD) & _MASK64
    value ^= value >> 33
    value = (value * 0xC4CEB9FE1A85EC53) & _MASK64
    value ^= value >> 33
    return value


def murmur3_x64_64(data: bytes) -> bytes:
    """Return the first 64 bits of MurmurHash3 x64 128 (seed 0), big-endian, as kubo's HAMT uses."""
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1 = h2 = 0
    whole = len(data) - len(data) % 16
    for offset in range(0, whole, 16):
        k1 = int.from_bytes(data[offset : offset + 8], "little")
        k2 = int.from_bytes(data[offset + 8 : offset + 16], "little")
        k1 = (_rotl64((k1 * c1) & _MASK64, 31) * c2) & _MASK64
        h1 ^= k1
        h1 = (_rotl64(h1, 27) + h2) & _MASK64
        h1 = (h1 * 5 + 0x52DCE729) & _MASK64
        k2 = (_rotl64((k2 * c2) & _MASK64, 33) * c1) & _MASK64
        h2 ^= k2
        h2 = (_rotl64(h2, 31) + h1) & _MASK64
        h2 = (h2 * 5 + 0x38495AB5) & _MASK64
    tail = data[whole:]
    if len(tail) > 8:
        k2 = int.from_bytes(tail[8:], "little")
        h2 ^= (_rotl64((k2 * c2) & _MASK64, 33) * c1) & _MASK64
    if tail:
        k1 = int.from_bytes(tail[:8], "little")
        h1 ^= (_rotl64((k1 * c1) & _MASK64, 31) * c2) & _MASK64
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & _MASK64
    h2 = (h2 + h1) & _MASK64
    h1 = _fmix64(h1)
    h2 = _fmix64(h2)
    h1 = (h1 + h2) & _MASK64
    return h1.to_bytes(8, "big")


# ------------------------------------------------------------------------- the one-pass hasher


class _Progress:
    """Adds up bytes from every hashing thread and reports the running total."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._done = 0
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        if self._callback is None:
            return
        with self._lock:
            self._done += count
            self._callback(self._done)


def _fill(stream: FileIO, view: memoryview) -> int:
    """Read until ``view`` is full or the file ends; return the bytes read."""
    got = 0
    while got < len(view):
        count = stream.readinto(view[got:])
        if not count:
            break
        got += count
    return got


@dataclass(frozen=True)
class FileDigest:
    """What one read of a file gives: its sha256, its size and its DAG root."""

    sha256: str
    size: int
    root: DagLink


def _require_unchanged(
    path: str | bytes,
    display: str,
    size: int,
    before: os.stat_result,
    after: os.stat_result,
    *,
    follow_symlinks: bool,
) -> None:
    """Refuse a file that changed while it was read.

    Its size or time moved, or a new file now stands at ``path``. ``size``: the bytes read;
    ``before`` / ``after``: the open file's status around the read.
    """
    if (
        size != before.st_size
        or after.st_size != before.st_size
        or after.st_mtime_ns != before.st_mtime_ns
    ):
        raise _changed(display)
    try:
        now = os.stat(path, follow_symlinks=follow_symlinks)
    except OSError:
        raise _changed(display) from None
    if (now.st_ino, now.st_dev) != (after.st_ino, after.st_dev):
        raise _changed(display)


def _changed(display: str) -> InputError:
    return InputError(
        f"{display} changed while it was being hashed",
        hint="hash it again once nothing is writing to it",
    )


def _os_error(display: str, exc: OSError) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return InputError(f"no such file or directory: {display}")
    if isinstance(exc, PermissionError):
        return InputError(f"cannot read {display}: permission denied")
    return InputError(f"cannot read {display}: {exc.strerror or exc}")


def hash_file(
    path: bytes,
    display: str,
    cid_version: int,
    *,
    sink: BlockSink | None = None,
    progress: _Progress | None = None,
    layout: Layout = DEFAULT_LAYOUT,
    follow_symlinks: bool = False,
) -> FileDigest:
    """Read a regular file once; return its sha256 and the root of its UnixFS DAG.

    The chunk digests (and block writes) run on the calling thread while the plain sha256 of
    the same buffers runs on a helper thread: hashlib releases the GIL on large buffers, so the
    two digests use two cores. Two buffers alternate so that reading the next one overlaps
    hashing the previous one.

    Raises:
        InputError: the file is missing, unreadable, not a regular file, or changed meanwhile.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not follow_symlinks and os.path.islink(path):
            raise _symlink_refused(display) from exc
        raise _os_error(display, exc) from exc
    try:
        with os.fdopen(fd, "rb", buffering=0) as stream:
            before = os.fstat(stream.fileno())
            if not stat.S_ISREG(before.st_mode):
                raise InputError(f"{display} is not a regular file or directory")
            digest, size, root = _digest_stream(
                stream, before.st_size, cid_version, sink, progress, layout
            )
            after = os.fstat(stream.fileno())
    except OSError as exc:
        raise _os_error(display, exc) from exc
    _require_unchanged(path, display, size, before, after, follow_symlinks=follow_symlinks)
    return FileDigest(digest, size, root)


class _Batch:
    """Holds blocks until they can be written; keeps them in the order they were made."""

    def __init__(self) -> None:
        self.items: list[tuple[bytes, Sequence[bytes | memoryview]]] = []

    def put(self, digest: bytes, parts: Sequence[bytes | memoryview]) -> None:
        self.items.append((digest, parts))

    def take(self) -> list[tuple[bytes, Sequence[bytes | memoryview]]]:
        items, self.items = self.items, []
        return items


#: Threads writing block files during an import (see ``_pipeline``).
WRITER_THREADS = 4


def _write_all(
    sink: BlockSink, items: Sequence[tuple[bytes, Sequence[bytes | memoryview]]]
) -> None:
    for digest, parts in items:
        sink.put(digest, parts)


def _digest_stream(
    stream: FileIO,
    expected_size: int,
    cid_version: int,
    sink: BlockSink | None,
    progress: _Progress | None,
    layout: Layout,
) -> tuple[str, int, DagLink]:
    chunk = layout.chunk_size
    capacity = layout.read_size()
    # A file that fits in one buffer (with a byte to spare to see growth) is read in one go.
    small = expected_size < capacity
    size_hint = (expected_size // chunk + 1) * chunk if small else capacity
    first = memoryview(bytearray(size_hint))
    batch = _Batch()
    # A sink holding the file's bytes already (a pack copy) records raw leaves by offset, from
    # this thread and in order, so every leaf is findable before the root is written.
    leaves = sink if isinstance(sink, LeafSink) else None
    dag = FileDag(cid_version, batch if sink is not None else None, layout, leaves)
    sha = hashlib.sha256()

    count = _fill(stream, first)
    if count < len(first):
        data = first[:count]
        if cid_version == 1 and count <= chunk:
            # A single raw leaf: its CID digest is the file's sha256, one hash gives both.
            whole = hashlib.sha256(data).digest()
            if count:
                dag.add_chunk(data, whole)
            digest = whole.hex()
        else:
            sha.update(data)
            for offset in range(0, count, chunk):
                dag.add_chunk(data[offset : offset + chunk])
            digest = sha.hexdigest()
        root = dag.finish()
        if sink is not None:
            _write_all(sink, batch.take())
        if progress is not None:
            progress.add(count)
        return digest, count, root

    total = _pipeline(stream, first, count, dag, batch, sink, sha, progress, layout)
    root = dag.finish()
    if sink is not None:
        _write_all(sink, batch.take())
    return sha.hexdigest(), total, root


def _pipeline(
    stream: FileIO,
    first: memoryview,
    count: int,
    dag: FileDag,
    batch: _Batch,
    sink: BlockSink | None,
    sha: hashlib._Hash,
    progress: _Progress | None,
    layout: Layout,
) -> int:
    """Hash a large file through two alternating buffers and up to three threads.

    The calling thread reads and computes the chunk digests; a helper thread feeds the same
    buffer to the file's sha256, and a small pool writes the blocks. The root is written by the
    caller only after every other block is on disk, so a stored root still means a whole DAG.
    A buffer is refilled only once the helpers are done with it, so memory stays at two
    buffers whatever the file size.
    """
    chunk = layout.chunk_size
    buffers = [first, memoryview(bytearray(len(first)))]
    pending: list[list[Future[None]]] = [[], []]
    total = 0
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="proml-sha256") as hasher,
        # Block files are written by several threads: creating many files is slow on some
        # filesystems (0.2-0.7 ms each measured here), and the kernel overlaps them well.
        ThreadPoolExecutor(max_workers=WRITER_THREADS, thread_name_prefix="proml-blocks") as writer,
    ):
        try:
            index = 0
            while count:
                data = buffers[index][:count]
                if layout.threaded:
                    pending[index].append(hasher.submit(sha.update, data))
                else:
                    sha.update(data)
                for offset in range(0, count, chunk):
                    dag.add_chunk(data[offset : offset + chunk])
                if sink is not None:
                    for digest, parts in batch.take():
                        pending[index].append(writer.submit(sink.put, digest, parts))
                total += count
                if progress is not None:
                    progress.add(count)
                if count < len(buffers[index]):
                    break
                index ^= 1
                for waiting in pending[index]:
                    waiting.result()  # both helpers are done with this buffer: reuse it
                pending[index] = []
                count = _fill(stream, buffers[index])
        finally:
            for futures in pending:
                for waiting in futures:
                    waiting.result()
    return total


# ------------------------------------------------------------------- hashing while copying


class FileCopySink(BlockSink, Protocol):
    """A sink that keeps the file's bytes itself: raw leaves are kept where they lie in the file."""

    def write_leaves(
        self, data: memoryview, offset: int, leaves: Sequence[tuple[bytes, int, int]]
    ) -> None:
        """Keep the raw leaves listed (digest, file offset, size), all inside ``data``.

        ``data`` is the file's bytes from ``offset``, a whole number of chunks but at the end.
        Calls come in file order, from one thread, each before the blocks built over it.
        """

    def settle(self) -> None:
        """Called once every leaf is kept, before the root block is put."""


@runtime_checkable
class LargeFileSink(BlockSink, Protocol):
    """A sink that stores large files of a directory by a path of its own (see ``copy_file``)."""

    def put_large_file(
        self, path: bytes, display: str, on_bytes: Callable[[int], None]
    ) -> FileDigest | None:
        """Store the CIDv1 file at ``path`` whole; None to have it imported block by block."""


class _Leaves:
    """Collects the raw leaves one buffer holds, for the writer to keep after its bytes."""

    def __init__(self) -> None:
        self.items: list[tuple[bytes, int, int]] = []

    def put(self, digest: bytes, parts: Sequence[bytes | memoryview]) -> None:
        raise AssertionError("raw leaves are recorded by offset")  # pragma: no cover

    def put_leaf(self, digest: bytes, offset: int, size: int) -> None:
        self.items.append((digest, offset, size))

    def take(self) -> list[tuple[bytes, int, int]]:
        items, self.items = self.items, []
        return items


#: Buffers in flight between the reader, the chunk hasher and the writer of ``copy_file``, and
#: their size at most: 8 MiB in all, as the two 4 MiB buffers of ``hash_file`` (1, 2 and 4 MiB
#: buffers measured alike; bench/memory.py keeps a 4 GiB run's peak RSS in its limit). A mapped
#: file's windows are the same size, and as many are in flight.
COPY_BUFFERS = 4
COPY_BUFFER_SIZE = 2 * 1024 * 1024

#: A file is read through a mapping only where a writer that asks for it waits at least this
#: long (the kernel's ``lease-break-time``) before its open or truncate goes ahead: the windows
#: in flight are done in milliseconds, far within it (see ``_Mapped``).
MIN_LEASE_BREAK_SECONDS = 10
_LEASE_BREAK_TIME = "/proc/sys/fs/lease-break-time"

_Blocks = list[tuple[bytes, Sequence[bytes | memoryview]]]
#: buffer slot, the bytes, their file offset, their raw leaves, the blocks built meanwhile
_Written = tuple[int, memoryview, int, list[tuple[bytes, int, int]], _Blocks]


class _Mapped:
    """A regular file mapped read-only while this process holds a read lease on it.

    Reading a file through a mapping saves copying every byte into a buffer (0.26 s of CPU per
    GiB measured, on the reader's thread beside its 0.6 s of sha256; with the pack's direct
    writes from the page cache's pages, the store's CPU per GiB fell from 1.76 s to 1.42 s, two
    sha256 passes being 1.2 s of it). A mapping alone would be unsafe: a file cut
    short under it turns a read into SIGBUS, which kills the process. The read lease
    (``F_SETLEASE``) closes that: while it is held, another open for writing or a truncate of
    the file waits, so the mapped bytes cannot change or vanish, and the kernel grants the lease
    only if no one has the file open for writing. A writer that asks meanwhile breaks the lease:
    :meth:`is_held` turns false, the reader maps no further window, lets the ones in flight
    finish (milliseconds), then :meth:`close` lets the writer in and the rest is read with
    ``pread``; the check after the read sees what it changed. The lease's break signal is
    SIGURG, which a process ignores by default (SIGIO, the default, would end it). Where there
    is no lease (another filesystem, another owner, a writer already there) the file is read.
    A read error of the disk under a mapping is a SIGBUS too: that is the cost of this path.
    """

    def __init__(self, fd: int, size: int) -> None:
        import mmap

        self._fd = fd
        self._mapping = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        self._mapping.madvise(mmap.MADV_SEQUENTIAL)
        self.view = memoryview(self._mapping)
        self.size = size

    @classmethod
    def open(cls, fd: int) -> _Mapped | None:
        """Lease and map the open regular file ``fd``; None where that is not offered.

        The file's size is read after the lease is taken: from then on it cannot change.
        """
        import fcntl
        import signal

        if not hasattr(fcntl, "F_SETLEASE") or not _lease_break_allows_mapping():
            return None
        try:
            fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        except OSError:
            return None  # no leases here, not the owner, or someone has it open for writing
        try:
            size = os.fstat(fd).st_size
            if size:
                return cls(fd, size)
        except (OSError, ValueError):
            pass
        _unlease(fd)
        return None

    def is_held(self) -> bool:
        """Whether the lease still stands (False once a writer asked for the file)."""
        import fcntl

        return fcntl.fcntl(self._fd, fcntl.F_GETLEASE) == fcntl.F_RDLCK

    def drop(self, offset: int, size: int) -> None:
        """Unmap a finished window's pages from this process (they stay in the page cache)."""
        import mmap

        self._mapping.madvise(mmap.MADV_DONTNEED, offset, size)

    def close(self) -> None:
        """Unmap the file, then give up the lease (no thread reads the mapping any more)."""
        with contextlib.suppress(BufferError):  # a slice still referenced: unmapped with it
            self.view.release()
            self._mapping.close()
        _unlease(self._fd)


def _lease_break_allows_mapping() -> bool:
    try:
        with open(_LEASE_BREAK_TIME, "rb") as setting:
            return int(setting.read()) >= MIN_LEASE_BREAK_SECONDS
    except (OSError, ValueError):
        return False


def _unlease(fd: int) -> None:
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)


def _fill_at(fd: int, view: memoryview, offset: int) -> int:
    """Read from ``offset`` until ``view`` is full or the file ends; return the bytes read."""
    got = 0
    while got < len(view):
        count = os.preadv(fd, [view[got:]], offset + got)
        if not count:
            break
        got += count
    return got


#: A single file at least this large (CIDv1) is hashed by ``copy_file`` with nothing kept, so
#: that it is read through a mapping where one can be held (as a stored product is).
MAPPED_HASH_MIN = 8 * 1024 * 1024


class _Discard:
    """The sink of ``copy_file`` when a file is only hashed: it keeps nothing."""

    def write_leaves(
        self, data: memoryview, offset: int, leaves: Sequence[tuple[bytes, int, int]]
    ) -> None:
        pass

    def put(self, digest: bytes, parts: Sequence[bytes | memoryview]) -> None:
        pass

    def settle(self) -> None:
        pass


def copy_file(
    path: bytes,
    display: str,
    sink: FileCopySink,
    *,
    on_bytes: Callable[[int], None] | None = None,
    layout: Layout = DEFAULT_LAYOUT,
) -> FileDigest:
    """Read a regular file once: its sha256, its CIDv1 DAG, and its bytes handed to ``sink``.

    Three threads share a ring of :data:`COPY_BUFFERS` windows of the file. One takes each
    window and adds it to the file's sha256; the calling thread hashes its 256 KiB chunks (the
    raw leaves) and builds the DAG; one hands the window to the sink and gives it back. hashlib
    and writes release the GIL, so on two cores this costs about one sha256 pass. A window is
    the file's own pages where it can be mapped under a read lease (``layout.mapped``, see
    :class:`_Mapped`: no copy into this process), else a page-aligned buffer it is read into;
    either way page-aligned, so a sink may write it with direct I/O. The bytes the sink keeps
    are the bytes that were hashed (the same window); the root block is put last, after
    ``sink.settle()``. Memory is the ring, whatever the file size. Symlinks are refused.
    ``on_bytes`` is called with the size of each window hashed (not a running total).

    Raises:
        InputError: the file is missing, unreadable, not a regular file, or changed meanwhile.
        ContentError: the sink could not keep the bytes (as the sink raised it).
    """
    import mmap
    import queue

    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.islink(path):
            raise _symlink_refused(display) from exc
        raise _os_error(display, exc) from exc
    chunk = layout.chunk_size
    size = max(1, min(layout.buffer_size, COPY_BUFFER_SIZE) // chunk) * chunk
    views = [memoryview(mmap.mmap(-1, size)) for _ in range(COPY_BUFFERS)]
    free: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    hashed: queue.SimpleQueue[tuple[int, memoryview, int] | None] = queue.SimpleQueue()
    to_write: queue.SimpleQueue[_Written | None] = queue.SimpleQueue()
    for slot in range(COPY_BUFFERS):
        free.put(slot)
    stop = threading.Event()
    sha = hashlib.sha256()
    source: list[_Mapped | None] = [None]

    def read() -> None:
        offset = 0
        windows: dict[int, tuple[int, int]] = {}  # slot -> the mapped window it holds
        try:
            while (slot := free.get()) is not None and not stop.is_set():
                mapping = source[0]
                window = windows.pop(slot, None)
                if mapping is not None and window is not None:
                    mapping.drop(*window)
                if mapping is not None and not mapping.is_held():
                    # A writer asked for the file: finish the windows in flight, let it in.
                    spare = []
                    while windows:
                        back = free.get()
                        if back is None:
                            return
                        windows.pop(back, None)
                        spare.append(back)
                    source[0] = None
                    mapping.close()
                    mapping = None
                    for back in spare:
                        free.put(back)
                if mapping is not None:
                    count = min(size, mapping.size - offset)
                    data = mapping.view[offset : offset + count]
                    windows[slot] = (offset, count)
                else:
                    count = _fill_at(fd, views[slot], offset)
                    data = views[slot][:count]
                if count:
                    sha.update(data)
                    hashed.put((slot, data, offset))
                    offset += count
                del data
                if count < size:
                    return
        finally:
            hashed.put(None)  # the end, or a failure (raised by the future)

    def write() -> None:
        is_done = False
        try:
            while (work := to_write.get()) is not None:
                slot, data, offset, leaves, blocks = work
                sink.write_leaves(data, offset, leaves)
                for digest, parts in blocks:
                    sink.put(digest, parts)
                del work, data
                free.put(slot)
            is_done = True
        finally:
            if not is_done:  # a failure (raised by the future): stop the reader
                stop.set()
                free.put(None)

    leaves = _Leaves()
    batch = _Batch()
    dag = FileDag(1, batch, layout, leaves)
    total = 0
    try:
        with os.fdopen(fd, "rb", buffering=0) as stream:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InputError(f"{display} is not a regular file or directory")
            source[0] = _Mapped.open(fd) if layout.mapped else None
            try:
                before = os.fstat(fd)  # under the lease, if any: the size is final
                with ThreadPoolExecutor(max_workers=2, thread_name_prefix="proml-copy") as pool:
                    reading = pool.submit(read)
                    writing = pool.submit(write)
                    try:
                        while (work := hashed.get()) is not None:
                            _, data, _ = work
                            count = len(data)
                            for start in range(0, count, chunk):
                                dag.add_chunk(data[start : start + chunk])
                            to_write.put((*work, leaves.take(), batch.take()))
                            del work, data
                            total += count
                            if on_bytes is not None:
                                on_bytes(count)
                    finally:
                        stop.set()  # the reader ends at its next window, if it has not yet
                        free.put(None)  # and wakes if it waits for one
                        to_write.put(None)
                    writing.result()  # the sink's error, as it raised it
                    reading.result()  # an OSError: a read error, below
                after = os.fstat(stream.fileno())
            finally:
                if source[0] is not None:
                    source[0].close()
    except OSError as exc:
        raise _os_error(display, exc) from exc
    _require_unchanged(path, display, total, before, after, follow_symlinks=False)
    root = dag.finish()
    sink.settle()
    for digest, parts in batch.take():  # the nodes closed by finish(), the root last
        sink.put(digest, parts)
    return FileDigest(sha.hexdigest(), total, root)


# ---------------------------------------------------------------------------- whole-path import


@dataclass(frozen=True)
class ImportResult:
    """The outcome of importing a file or a directory tree."""

    kind: str
    size: int
    sha256: str
    root: DagLink
    files: int


def _symlink_refused(display: str) -> InputError:
    return InputError(
        f"{display} is a symbolic link; symlinks are refused unless explicitly allowed",
        hint="hash the link's target, or allow symlinks (--allow-symlinks)",
    )


@dataclass
class _Tree:
    """A directory found by the walk: subdirectories, files and symlinks by name."""

    dirs: dict[bytes, _Tree] = field(default_factory=dict)
    files: dict[bytes, bytes] = field(default_factory=dict)  # name -> relative path
    links: dict[bytes, bytes] = field(default_factory=dict)  # name -> link target


def _walk(root: bytes, rel: bytes, tree: _Tree, allow_symlinks: bool, found: list[bytes]) -> None:
    here = os.path.join(root, rel) if rel else root
    try:
        with os.scandir(here) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        raise _os_error(os.fsdecode(here), exc) from exc
    for entry in entries:
        name = entry.name
        relpath = rel + b"/" + name if rel else name
        display = os.fsdecode(os.path.join(root, relpath))
        if b"\n" in name or b"\r" in name:
            raise InputError(
                f"file name with a line break cannot be listed in the manifest: {display!r}"
            )
        try:
            if entry.is_symlink():
                if not allow_symlinks:
                    raise _symlink_refused(display)
                tree.links[name] = os.readlink(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                sub = tree.dirs[name] = _Tree()
                _walk(root, relpath, sub, allow_symlinks, found)
            elif entry.is_file(follow_symlinks=False):
                tree.files[name] = relpath
                found.append(relpath)
            else:
                raise InputError(f"{display} is not a regular file or directory")
        except OSError as exc:
            raise _os_error(display, exc) from exc


def manifest_line(sha256_hex: str, size_field: str, relpath: bytes) -> bytes:
    """Return one line of the directory manifest (see ``proml_cli.content`` for the format)."""
    return sha256_hex.encode("ascii") + b"  " + size_field.encode("ascii") + b"  " + relpath + b"\n"


def import_path(
    path: Path,
    cid_version: int = 1,
    *,
    sink: BlockSink | None = None,
    progress: ProgressCallback | None = None,
    allow_symlinks: bool = False,
    layout: Layout = DEFAULT_LAYOUT,
) -> ImportResult:
    """Hash (and with a sink, store) a file or a directory tree exactly as ``ipfs add`` would.

    Raises:
        InputError: the path is missing, unreadable, a refused symlink, a special file, or a
            file changed while it was read.
    """
    if cid_version not in (0, 1):
        raise InputError(f"CID version must be 0 or 1, not {cid_version}")
    display = str(path)
    raw = os.fsencode(path)
    try:
        info = os.lstat(raw)
    except OSError as exc:
        raise _os_error(display, exc) from exc
    follow = False
    if stat.S_ISLNK(info.st_mode):
        if not allow_symlinks:
            raise _symlink_refused(display)
        follow = True  # an explicitly named, allowed link is followed, like --dereference-args
        try:
            info = os.stat(raw)
        except OSError as exc:
            raise _os_error(display, exc) from exc
    counter = _Progress(progress)
    if stat.S_ISREG(info.st_mode):
        if (
            sink is None
            and cid_version == 1
            and layout.mapped
            and layout.threaded
            and not follow
            and info.st_size >= MAPPED_HASH_MIN
        ):
            # Hashing alone, a large file: read as a product is stored, mapped under a read
            # lease where one is granted (no copy into this process), nothing kept.
            digest = copy_file(raw, display, _Discard(), on_bytes=counter.add, layout=layout)
            return ImportResult("file", digest.size, digest.sha256, digest.root, 1)
        digest = hash_file(
            raw,
            display,
            cid_version,
            sink=sink,
            progress=counter,
            layout=layout,
            follow_symlinks=follow,
        )
        return ImportResult("file", digest.size, digest.sha256, digest.root, 1)
    if not stat.S_ISDIR(info.st_mode):
        raise InputError(f"{display} is not a regular file or directory")
    return _import_tree(raw, cid_version, sink, counter, allow_symlinks, layout)


def _import_tree(
    root: bytes,
    cid_version: int,
    sink: BlockSink | None,
    counter: _Progress,
    allow_symlinks: bool,
    layout: Layout,
) -> ImportResult:
    tree = _Tree()
    found: list[bytes] = []
    _walk(root, b"", tree, allow_symlinks, found)

    large = sink if cid_version == 1 and isinstance(sink, LargeFileSink) else None

    def one(relpath: bytes) -> FileDigest:
        full = os.path.join(root, relpath)
        if large is not None:
            stored = large.put_large_file(full, os.fsdecode(full), counter.add)
            if stored is not None:
                return stored
        return hash_file(
            full, os.fsdecode(full), cid_version, sink=sink, progress=counter, layout=layout
        )

    workers = min(MAX_FILE_WORKERS, max(1, len(found)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="proml-hash") as pool:
        digests = dict(zip(found, pool.map(one, found), strict=True))

    lines: list[tuple[bytes, bytes]] = []  # (relative path, manifest line)

    def build(node: _Tree) -> DagLink:
        entries: list[DirEntry] = []
        for name, sub in node.dirs.items():
            link = build(sub)
            entries.append(DirEntry(name, link.cid, link.tsize))
        for name, relpath in node.files.items():
            digest = digests[relpath]
            entries.append(DirEntry(name, digest.root.cid, digest.root.tsize))
            lines.append((relpath, manifest_line(digest.sha256, str(digest.size), relpath)))
        for name, target in node.links.items():
            link = symlink_node(target, cid_version, sink)
            entries.append(DirEntry(name, link.cid, link.tsize))
        return directory_node(entries, cid_version, sink, layout)

    # Symlinks are listed by the relative path of the link, under the sha256 of their target.
    def collect_links(node: _Tree, rel: bytes) -> None:
        for name, target in node.links.items():
            relpath = rel + b"/" + name if rel else name
            line = manifest_line(hashlib.sha256(target).hexdigest(), "symlink", relpath)
            lines.append((relpath, line))
        for name, sub in node.dirs.items():
            collect_links(sub, rel + b"/" + name if rel else name)

    root_link = build(tree)
    collect_links(tree, b"")
    manifest = hashlib.sha256()
    for _, line in sorted(lines):
        manifest.update(line)
    size = sum(digest.size for digest in digests.values())
    return ImportResult("directory", size, manifest.hexdigest(), root_link, len(found))
