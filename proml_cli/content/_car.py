"""CAR v1 files: writing a DAG for ``ipfs dag import`` and reading one back, checking every block.

Layout (ipld.io/specs/transport/car/carv1): ``varint(len(header)) header`` where the header is
the dag-cbor map ``{"roots": [CID…], "version": 1}`` (keys in dag-cbor order: shorter first),
each CID as CBOR tag 42 over a byte string holding a 0x00 prefix then the binary CID; then, for
each block, ``varint(len(cid) + len(block)) cid block`` with the binary CID (a CIDv0 is its bare
34-byte multihash).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from io import BufferedReader
from pathlib import Path
from types import TracebackType

from proml_cli.content._unixfs import Cid, decode_varint, encode_varint
from proml_cli.errors import ContentError

#: A section larger than this is refused on read: kubo blocks are at most 2 MiB.
MAX_SECTION = 8 * 1024 * 1024
_MAX_HEADER = 1024 * 1024


def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes(((major << 5) | value,))
    for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * width):
            return bytes(((major << 5) | extra,)) + value.to_bytes(width, "big")
    raise ValueError("CBOR value too large")  # a programming error: header values are tiny


def encode_header(roots: Sequence[Cid]) -> bytes:
    """Return the dag-cbor CAR v1 header for ``roots``, without its length prefix."""
    out = bytearray(_cbor_head(5, 2))
    out += _cbor_head(3, 5) + b"roots"
    out += _cbor_head(4, len(roots))
    for root in roots:
        link = b"\x00" + root.to_bytes()
        out += b"\xd8\x2a" + _cbor_head(2, len(link)) + link
    out += _cbor_head(3, 7) + b"version" + _cbor_head(0, 1)
    return bytes(out)


def write_car(dest: Path, roots: Sequence[Cid], blocks: Iterable[tuple[Cid, bytes]]) -> int:
    """Write a CAR v1 file atomically (temp file + rename); return the number of blocks.

    Raises:
        OSError: the destination cannot be written.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    count = 0
    try:
        with os.fdopen(fd, "wb") as out:
            header = encode_header(roots)
            out.write(encode_varint(len(header)) + header)
            for cid, block in blocks:
                raw = cid.to_bytes()
                out.write(encode_varint(len(raw) + len(block)))
                out.write(raw)
                out.write(block)
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return count


class _Cbor:
    """Decodes the small subset of dag-cbor a CAR header uses."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise ContentError("malformed CAR header: truncated CBOR")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def _argument(self, info: int) -> int:
        if info < 24:
            return info
        widths = {24: 1, 25: 2, 26: 4, 27: 8}
        if info not in widths:
            raise ContentError("malformed CAR header: indefinite or reserved CBOR length")
        return int.from_bytes(self._take(widths[info]), "big")

    def value(self) -> object:
        initial = self._take(1)[0]
        major, info = initial >> 5, initial & 31
        if major == 7:
            simple = {20: False, 21: True, 22: None}
            if info not in simple:
                raise ContentError("malformed CAR header: unsupported CBOR simple value")
            return simple[info]
        argument = self._argument(info)
        if major == 0:
            return argument
        if major == 2:
            return self._take(argument)
        if major == 3:
            try:
                return self._take(argument).decode("utf-8")
            except UnicodeDecodeError:
                raise ContentError("malformed CAR header: bad UTF-8") from None
        if major == 4:
            return [self.value() for _ in range(argument)]
        if major == 5:
            mapping: dict[object, object] = {}
            for _ in range(argument):
                key = self.value()
                mapping[key] = self.value()
            return mapping
        if major == 6 and argument == 42:
            link = self.value()
            if not isinstance(link, bytes) or not link.startswith(b"\x00"):
                raise ContentError("malformed CAR header: bad CID link")
            cid, end = Cid.from_bytes(link, 1)
            if end != len(link):
                raise ContentError("malformed CAR header: trailing bytes after a root CID")
            return cid
        raise ContentError(f"malformed CAR header: unsupported CBOR major type {major}")


def decode_header(data: bytes) -> list[Cid]:
    """Return the roots of a CAR v1 header.

    Raises:
        ContentError: the header is not a CAR v1 header.
    """
    reader = _Cbor(data)
    header = reader.value()
    if reader.pos != len(data) or not isinstance(header, dict):
        raise ContentError("malformed CAR header")
    if header.get("version") != 1:
        raise ContentError(f"unsupported CAR version {header.get('version')!r}")
    roots = header.get("roots")
    if not isinstance(roots, list) or not all(isinstance(root, Cid) for root in roots):
        raise ContentError("malformed CAR header: roots must be a list of CIDs")
    return [root for root in roots if isinstance(root, Cid)]


class CarReader:
    """Reads a CAR v1 file, streaming; every block is checked against its CID as it is read.

    Use as a context manager: ``roots`` is set on entry; iterate for ``(cid, block)`` pairs.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: BufferedReader | None = None
        self.roots: list[Cid] = []

    def __enter__(self) -> CarReader:
        self._file = self._path.open("rb")
        try:
            length = self._varint(allow_eof=False)
            if length is None or length > _MAX_HEADER:
                raise ContentError(f"{self._path}: malformed CAR header length")
            self.roots = decode_header(self._read(length))
        except BaseException:
            self._file.close()
            self._file = None
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _stream(self) -> BufferedReader:
        if self._file is None:
            raise RuntimeError("CarReader is used outside its 'with' block")
        return self._file

    def _read(self, count: int) -> bytes:
        data = self._stream().read(count)
        if len(data) != count:
            raise ContentError(f"{self._path}: truncated CAR file")
        return data

    def _varint(self, *, allow_eof: bool) -> int | None:
        stream = self._stream()
        raw = bytearray()
        while True:
            byte = stream.read(1)
            if not byte:
                if allow_eof and not raw:
                    return None
                raise ContentError(f"{self._path}: truncated CAR file")
            raw += byte
            if not byte[0] & 0x80:
                return decode_varint(bytes(raw), 0)[0]
            if len(raw) > 9:
                raise ContentError(f"{self._path}: malformed varint")

    def __iter__(self) -> Iterator[tuple[Cid, bytes]]:
        while True:
            length = self._varint(allow_eof=True)
            if length is None:
                return
            if length > MAX_SECTION:
                raise ContentError(f"{self._path}: CAR section of {length} bytes is too large")
            section = self._read(length)
            cid, end = Cid.from_bytes(section, 0)
            block = section[end:]
            if not cid.matches(block):
                raise ContentError(f"{self._path}: block {cid} does not hash to its CID")
            yield cid, block
