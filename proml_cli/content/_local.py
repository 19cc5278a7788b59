"""The embedded content store: kubo-compatible blocks kept under a project's ``.proml/``.

Layout under the store root::

    blocks/<first two hex digits>/<sha256 hex>   small blocks: one file each
    packs/<token>.pack                           large blocks of one import, appended
    packs/<token>.idx                            44-byte entries: digest, offset, length
    packs.midx                                   most packs' entries in one sorted file
    packs.log                                    each pack's name, appended by its import
    tmp/                                         blocks being replaced, a packs.midx being written

Every block is named by the sha256 of its bytes, so the same bytes stored as CIDv0 and CIDv1
are kept once. Large blocks (file chunks, 64 KiB and more) go to one pack file per import:
creating one file per 256 KiB chunk cost three times the hashing on the filesystems measured
(bench/hash.py), appending to one file costs almost nothing. A pack's index entry is appended
only after the block's bytes, and an import writes its root (a small block file) last, after
every pack entry: a root that is present means the whole DAG under it is findable. The
per-pack indexes are the truth; ``packs.midx`` (the combined index, :class:`_CombinedIndex`)
copies the entries of finished packs so that a process reads one file, not one per pack, and
is checked, masked or ignored, never trusted beyond them.

A single large file (CIDv1, :data:`COPY_MIN` and up) gets a pack of its own holding its bytes
at their offsets in the file: a copy-on-write clone where the filesystem offers one (FICLONE),
else written while it is hashed (``copy_file``: one read, through a mapping of the file held
under a read lease where the kernel grants one, so no byte is copied into the process; leaves
the store already holds leave holes), with direct I/O, so that a big product is not throttled
as dirty page cache on a busy machine (bench/run_overhead.py). Never a hard link: the user's
later writes would change the stored bytes. Durability: a pack so written and its index are
flushed (one fdatasync each) before the file's root is written; after direct I/O the flush
only commits the device's cache and the file's size (a few milliseconds per GiB measured), so
a recorded version never names bytes a crash could lose. Other blocks are not fsynced one by
one; a block damaged by a power loss is caught instead, because every read rehashes the block
against its CID, and a damaged block is replaced by the next put or fetch.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import itertools
import logging
import os
import re
import secrets
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from proml_cli.content import DEFAULT_CAT_LIMIT, ProgressCallback, StoredContent
from proml_cli.content._car import write_car
from proml_cli.content._unixfs import (
    CODEC_DAG_PB,
    CODEC_RAW,
    HAMT_FANOUT,
    UNIXFS_DIRECTORY,
    UNIXFS_FILE,
    UNIXFS_HAMT_SHARD,
    UNIXFS_RAW,
    UNIXFS_SYMLINK,
    Cid,
    FileDigest,
    PBNode,
    UnixFSData,
    _Progress,
    copy_file,
    dag_for_bytes,
    decode_pb_node,
    decode_unixfs,
    import_path,
)
from proml_cli.errors import ContentError, DamagedStoreError, InputError

logger = logging.getLogger(__name__)

#: Kubo refuses blocks over 2 MiB; anything bigger in the store is not one of ours.
_MAX_BLOCK = 4 * 1024 * 1024


#: Blocks at least this large are appended to the import's pack; smaller ones get a file.
PACK_MIN = 64 * 1024
_INDEX_ENTRY = struct.Struct(">32sQI")  # digest, offset, length


#: The combined index, beside ``packs/`` (see :class:`_CombinedIndex`).
COMBINED_INDEX = "packs.midx"
_COMBINED_MAGIC = b"PROMLMIX"
_COMBINED_VERSION = 1
#: magic, version, packs, entries, bytes of the names, bytes of the outside names, log offset
_COMBINED_HEAD = struct.Struct(">8sIIQIIQ")
_COMBINED_FANOUT = struct.Struct(">256Q")  # entries whose digest starts with 0..n
_COMBINED_RECORD = struct.Struct(">32sIQI")  # digest, pack number, offset, length
_COMBINED_SUM = 32  # a sha256 of everything before it ends the file
#: Pack names without their suffix, as ``_Pack`` makes them, one a line.
_PACK_STEM = re.compile(rb"[0-9]{20}-[0-9a-f]{8}")
_PACK_STEMS = re.compile(rb"[0-9]{20}-[0-9a-f]{8}(?:\n[0-9]{20}-[0-9a-f]{8})*")
#: Each import appends the name of the pack it writes to (see ``EmbeddedStore._announce``).
PACK_LOG = "packs.log"
#: An import rewrites the combined index when this many packs (or entries) are outside it:
#: a store is read with one combined file plus at most this many pack indexes.
_UNCOVERED_PACKS = 16
_UNCOVERED_ENTRIES = 8192


class _CombinedIndex:
    """The entries of many finished packs in one file, sorted by digest (like git's midx).

    Reading 1,000 pack indexes cost 1,000 opens per process (0.01 to 0.05 s, more on a busy
    machine; 10x that at 10,000 packs); this file is one read, and a lookup is a binary search
    in it, so neither grows with the number of packs. It is derived data and never trusted
    beyond the per-pack indexes it copies: a file that is torn, altered or of another version
    fails its checksum or its shape and is ignored (the pack indexes are read instead, and the
    next import writes a good one); a pack it names that is gone (``fsck --repair``) is masked;
    it holds only packs no import still writes (their indexes cannot grow), and one entry per
    digest (the copy a read of the pack indexes would have chosen). Dedup still checks that a
    found entry's bytes are in its pack, and every read still rehashes what it reads.

    Which packs exist is found without listing ``packs/`` (20,000 names at 10,000 packs cost
    more than all the rest): every import appends its pack's name to ``packs.log``; this file
    records how far into that log it has accounted for every pack (``log_offset``), and the
    packs named there it left outside (``outside``: still being written). A reader takes those
    and the log's tail. A pack the log does not name (a failed append, an older proml) is found
    by the listing a read that misses makes, and by the one each rewrite makes.

    Layout: header (magic, version, pack count, entry count, length of the names, length of
    the outside names, log offset), the pack names (one a line), the outside names (one a
    line), a 256-slot fanout (entries whose first byte is at most each value), the entries (48
    bytes: digest, pack number, offset, length; sorted by digest), and the sha256 of all that.
    """

    def __init__(
        self,
        names: list[str],
        records: bytes,
        fanout: Sequence[int],
        outside: Sequence[str] = (),
        log_offset: int = 0,
    ) -> None:
        self.names = names
        self.records = records
        self.count = len(records) // _COMBINED_RECORD.size
        self._fanout = fanout
        self.outside = outside
        self.log_offset = log_offset
        #: Pack numbers whose pack is gone: their entries are not served.
        self.masked: set[int] = set()

    @classmethod
    def parse(cls, data: bytes) -> _CombinedIndex | None:
        """The index in ``data``; None unless it is whole, of this version and well formed."""
        head = _COMBINED_HEAD.size
        if len(data) < head + _COMBINED_FANOUT.size + _COMBINED_SUM:
            return None
        if hashlib.sha256(memoryview(data)[:-_COMBINED_SUM]).digest() != data[-_COMBINED_SUM:]:
            return None
        magic, version, packs, entries, size, more, log_offset = _COMBINED_HEAD.unpack_from(data)
        if magic != _COMBINED_MAGIC or version != _COMBINED_VERSION:
            return None
        start = head + size + more + _COMBINED_FANOUT.size
        if len(data) != start + entries * _COMBINED_RECORD.size + _COMBINED_SUM:
            return None
        names = _stems(data[head : head + size])
        outside = _stems(data[head + size : head + size + more])
        if names is None or outside is None or len(names) != packs:
            return None
        fanout = _COMBINED_FANOUT.unpack_from(data, head + size + more)
        if fanout[-1] != entries or any(a > b for a, b in itertools.pairwise(fanout)):
            return None
        return cls(names, data[start:-_COMBINED_SUM], fanout, outside, log_offset)

    @classmethod
    def build(
        cls, names: list[str], records: bytes, outside: Sequence[str] = (), log_offset: int = 0
    ) -> tuple[_CombinedIndex, bytes]:
        """The index of sorted, unique ``records`` over ``names``, and its file's bytes."""
        size = _COMBINED_RECORD.size
        count = len(records) // size
        fanout: list[int] = []
        low = 0
        for first in range(256):  # the first entry whose digest starts above ``first``
            high = count
            while low < high:
                middle = (low + high) // 2
                if records[middle * size] <= first:
                    low = middle + 1
                else:
                    high = middle
            fanout.append(low)
        text = "\n".join(names).encode("ascii")
        more = "\n".join(outside).encode("ascii")
        head = _COMBINED_HEAD.pack(
            _COMBINED_MAGIC, _COMBINED_VERSION, len(names), count, len(text), len(more), log_offset
        )
        body = b"".join((head, text, more, _COMBINED_FANOUT.pack(*fanout), records))
        index = cls(names, records, fanout, outside, log_offset)
        return index, body + hashlib.sha256(body).digest()

    def _position(self, digest: bytes) -> int:
        """Where ``digest`` is or would be among the sorted entries."""
        first = digest[0]
        low = self._fanout[first - 1] if first else 0
        high = self._fanout[first]
        records, size = self.records, _COMBINED_RECORD.size
        while low < high:
            middle = (low + high) // 2
            at = middle * size
            if records[at : at + 32] < digest:
                low = middle + 1
            else:
                high = middle
        return low

    def find(self, digest: bytes) -> tuple[str, int, int] | None:
        """The pack name (no suffix), offset and length of ``digest``; None if not here."""
        position = self._position(digest)
        if position >= self.count:
            return None
        found, pack, offset, length = _COMBINED_RECORD.unpack_from(
            self.records, position * _COMBINED_RECORD.size
        )
        if found != digest or pack >= len(self.names) or pack in self.masked:
            return None
        return self.names[pack], offset, length

    def merged(
        self,
        added: list[str],
        entries: dict[bytes, tuple[int, int, int]],
        outside: Sequence[str],
        log_offset: int,
    ) -> tuple[_CombinedIndex, bytes]:
        """This index with the packs ``added`` (numbered after its own) and their ``entries``.

        ``entries`` maps a digest to (pack number, offset, length); it wins over an entry of
        this index for the same digest. The old entries are copied in runs, not decoded.
        """
        size = _COMBINED_RECORD.size
        pieces: list[bytes] = []
        done = 0
        for digest in sorted(entries):
            position = self._position(digest)
            pieces.append(self.records[done * size : position * size])
            pieces.append(_COMBINED_RECORD.pack(digest, *entries[digest]))
            at = position * size
            is_replaced = position < self.count and self.records[at : at + 32] == digest
            done = position + 1 if is_replaced else position
        pieces.append(self.records[done * size :])
        return _CombinedIndex.build([*self.names, *added], b"".join(pieces), outside, log_offset)


class _Pack:
    """One import's pack file and its index, appended to under a lock by the writer threads."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        # Time first: index files sort in creation order, so a block re-stored after damage
        # (a later entry) wins when the indexes are read back.
        token = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        self.path = os.path.join(directory, f"{token}.pack")
        self._data = os.open(self.path, flags, 0o644)
        # Held until close (or the process dies, kill -9 included): `proml fsck --repair`
        # never reclaims a pack an import is still writing.
        fcntl.flock(self._data, fcntl.LOCK_EX)
        self._index = os.open(os.path.join(directory, f"{token}.idx"), flags, 0o644)
        self._offset = 0
        self._lock = threading.Lock()
        self._direct: int | None = None  # a second descriptor with O_DIRECT, see write_at

    def write_at(self, data: memoryview, offset: int) -> None:
        """Write a run of leaves at its offset in the file (a whole file streamed, see below).

        The aligned part goes through a direct-I/O descriptor when the filesystem has one: it
        bypasses the page cache, so a large product is not throttled as dirty memory on a busy
        machine (bench/run_overhead.py: 1 GiB in 0.4 s where a buffered copy took 1 to 6 s)
        and does not evict the caller's cache. The unaligned tail is written buffered.
        """
        aligned = 0
        direct = self._open_direct() if offset % _DIRECT_ALIGN == 0 else None
        if direct is not None:
            aligned = len(data) - len(data) % _DIRECT_ALIGN
            try:
                _pwrite_all(direct, data[:aligned], offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._close_direct()  # this filesystem or buffer refuses direct I/O
                aligned = 0
        _pwrite_all(self._data, data[aligned:], offset + aligned)
        self._offset = max(self._offset, offset + len(data))

    def _open_direct(self) -> int | None:
        """The direct-I/O descriptor, opened on first use; None where there is none."""
        if self._direct is None:
            self._direct = -1  # not offered here (tmpfs, no O_DIRECT): buffered writes only
            with contextlib.suppress(OSError, AttributeError):
                self._direct = os.open(
                    self.path, os.O_WRONLY | os.O_DIRECT | getattr(os, "O_CLOEXEC", 0)
                )
        return self._direct if self._direct >= 0 else None

    def _close_direct(self) -> None:
        if self._direct is not None and self._direct >= 0:
            os.close(self._direct)
        self._direct = -1

    def add_entries(self, entries: Sequence[tuple[bytes, int, int]]) -> None:
        """Append index entries (digest, offset, length) for bytes already written."""
        with self._lock:
            os.write(self._index, b"".join(_INDEX_ENTRY.pack(*entry) for entry in entries))

    def sync(self) -> None:
        """Make the pack's bytes and its index durable (one fdatasync each)."""
        os.fdatasync(self._data)
        os.fdatasync(self._index)

    def clone_from(self, path: Path) -> bool:
        """Make the empty pack a copy-on-write clone of ``path`` (FICLONE); False if refused.

        Only filesystems that share extents (btrfs, XFS, bcachefs...) offer it; nothing is
        written. Never a hard link: the user's later writes would change the stored bytes.

        Raises:
            InputError: the file changed while it was cloned, or cannot be read.
        """
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            before = os.stat(path, follow_symlinks=False)
            source = os.open(path, flags)
            try:
                fcntl.ioctl(self._data, _FICLONE, source)
            finally:
                os.close(source)
        except OSError as exc:
            if exc.errno in _NO_CLONE:
                return False
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
        after = os.stat(path, follow_symlinks=False)
        size = os.fstat(self._data).st_size
        if size != after.st_size or (before.st_size, before.st_mtime_ns, before.st_ino) != (
            after.st_size,
            after.st_mtime_ns,
            after.st_ino,
        ):
            raise InputError(f"{path} changed while it was being stored")
        self._offset = size
        return True

    def append(self, digest: bytes, parts: Sequence[bytes | memoryview], size: int) -> int:
        with self._lock:
            offset = self._offset
            for part in parts:
                view = memoryview(part)
                while view:
                    view = view[os.write(self._data, view) :]
            self._offset += size
            # The entry follows the bytes: an entry never points at bytes not yet written.
            os.write(self._index, _INDEX_ENTRY.pack(digest, offset, size))
            return offset

    def index(self, digest: bytes, offset: int, size: int) -> None:
        """Record a block already in the pack (copied there whole, see ``_copy_file``)."""
        with self._lock:
            os.write(self._index, _INDEX_ENTRY.pack(digest, offset, size))

    def remove(self) -> None:
        """Delete the pack and its index (nothing in it is needed)."""
        for name in (self.path, self.path.removesuffix(".pack") + ".idx"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def close(self) -> None:
        self._close_direct()
        os.close(self._data)
        os.close(self._index)


#: Offsets and lengths written with direct I/O are multiples of this (a page: every device's
#: logical block fits in it).
_DIRECT_ALIGN = 4096
#: ioctl FICLONE: share a whole file's extents with another file.
_FICLONE = 0x40049409
#: What a filesystem answers when it cannot clone (then the bytes are copied).
_NO_CLONE = frozenset(
    {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM}
)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        count = os.pwrite(fd, data, offset)
        data = data[count:]
        offset += count


class _BlockWriter:
    """The import sink: writes each new block once and counts what it added."""

    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._pack: _Pack | None = None
        self.blocks = 0
        self.bytes = 0

    def put(self, digest: bytes, parts: Sequence[bytes | memoryview]) -> None:
        size = sum(len(part) for part in parts)
        if size >= PACK_MIN:
            written = self._store.pack_block(self._pack_for_import, digest, parts, size)
        else:
            written = self._store.write_block(digest, parts, size)
        if written:
            with self._lock:
                self.blocks += 1
                self.bytes += size

    def put_large_file(
        self, path: bytes, display: str, on_bytes: Callable[[int], None]
    ) -> FileDigest | None:
        """Store a large file of a directory in a pack of its own (see ``put_large_file``)."""
        try:
            size = os.stat(path, follow_symlinks=False).st_size
        except OSError:
            return None  # the importer reports it
        if size < COPY_MIN:
            return None
        with _LARGE_AT_ONCE:  # each uses both cores and 8 MiB: memory stays flat in their number
            digest, blocks, added = self._store.put_large_file(path, display, on_bytes)
        with self._lock:
            self.blocks += blocks
            self.bytes += added
        return digest

    def _pack_for_import(self) -> _Pack:
        with self._lock:
            if self._pack is None:
                self._pack = _Pack(str(self._store.root / "packs"))
            return self._pack

    def close(self) -> None:
        if self._pack is not None:
            self._pack.close()


#: Large files of one directory are stored one at a time (small ones go on meanwhile).
_LARGE_AT_ONCE = threading.Lock()


class _CopiedFileWriter(_BlockWriter):
    """The sink for a file copied whole into a pack: leaves are indexed where they already are."""

    def __init__(self, store: EmbeddedStore, pack: _Pack) -> None:
        super().__init__(store)
        self._copy = pack
        self.leaves_added = 0

    def put_leaf(self, digest: bytes, offset: int, size: int) -> None:
        if self._store.has_usable_block(digest):
            return
        self._copy.index(digest, offset, size)
        self._store.remember_packed(digest, self._copy.path, offset, size)
        with self._lock:
            self.leaves_added += 1
            self.blocks += 1
            self.bytes += size


class _StreamedFileWriter(_BlockWriter):
    """The sink of ``copy_file``: new raw leaves are written to the pack where they lie.

    Leaves the store holds already leave a hole in the pack; the others are indexed.
    """

    def __init__(self, store: EmbeddedStore, pack: _Pack) -> None:
        super().__init__(store)
        self._copy = pack
        self.leaves_added = 0

    def write_leaves(
        self, data: memoryview, offset: int, leaves: Sequence[tuple[bytes, int, int]]
    ) -> None:
        new: list[tuple[bytes, int, int]] = []
        chosen: set[bytes] = set()
        for digest, at, size in leaves:
            if digest not in chosen and not self._store.has_usable_block(digest):
                chosen.add(digest)
                new.append((digest, at, size))
        if not new:
            return
        try:
            start = end = new[0][1]
            for _, at, size in new:
                if at != end:  # a run ends: write it, skip what the store holds
                    self._copy.write_at(data[start - offset : end - offset], start)
                    start = at
                end = at + size
            self._copy.write_at(data[start - offset : end - offset], start)
            # The entries follow the bytes: an entry never points at bytes not yet written.
            self._copy.add_entries(new)
        except OSError as exc:
            raise self._store.write_error(exc) from exc
        for digest, at, size in new:
            self._store.remember_packed(digest, self._copy.path, at, size)
        with self._lock:
            self.leaves_added += len(new)
            self.blocks += len(new)
            self.bytes += sum(size for _, _, size in new)

    def settle(self) -> None:
        if self.leaves_added:
            try:
                self._copy.sync()
            except OSError as exc:
                raise self._store.write_error(exc) from exc


#: A single file at least this large (CIDv1) is stored whole in a pack of its own: cloned where
#: the filesystem can, else streamed (``copy_file``): its raw leaves are indexed in place.
COPY_MIN = 8 * 1024 * 1024


class EmbeddedStore:
    """A content-addressed block store in a local directory (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blocks = root / "blocks"
        self._tmp = root / "tmp"
        self._made: set[str] = set()
        # digest -> (pack file, offset, length); loaded from the .idx files when first needed.
        self._packed: dict[bytes, tuple[str, int, int]] = {}
        self._loaded: dict[str, int] = {}  # index file -> bytes of it already read
        self._is_scanned = False  # the indexes were read at least once by this object
        self._index_lock = threading.Lock()
        # Packed blocks a read found damaged: the next put appends a good copy (later entries
        # of a re-stored block win over the damaged one).
        self._damaged: set[bytes] = set()
        # The combined index read on the first scan, and the index files whose entries it holds
        # (finished packs: never read or statted again). See _CombinedIndex.
        self._combined: _CombinedIndex | None = None
        self._covered: set[str] = set()
        self._is_deep = False  # every index file was read whole once (a read missed)
        self._listed: set[str] = set()  # the index files the last scan found
        self._own_packs: set[str] = set()  # packs this object wrote blocks to
        self._log_offset = 0  # bytes of packs.log accounted for

    def _load_indexes(self, *, is_deep: bool = False, is_listed: bool = False) -> None:
        """Read what is new in the pack indexes (other processes may have added packs).

        With a combined index, the packs are those it covers or names as outside plus those
        ``packs.log`` names past its offset: ``packs/`` is not listed, and only the indexes
        outside it are read (at most a few dozen, whatever the number of packs). ``is_listed``
        lists ``packs/`` as well (a read that missed, a rewrite; always without a combined
        index): packs the log does not name are found, covered packs that are gone are
        masked. ``is_deep`` also reads the indexes the combined index covers, once, for
        entries it left out (see _pack_entry). Plain ``os`` calls, not pathlib.
        """
        directory = os.path.join(self.root, "packs")
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
        with self._index_lock:
            if not self._is_scanned:
                self._is_scanned = True
                self._adopt_combined()
            if self._combined is None or is_listed or is_deep:
                try:
                    listed = _index_names(directory)
                except (FileNotFoundError, NotADirectoryError):
                    return
                self._listed = listed | self._read_log()
                self._mask_gone(listed)
            else:
                self._listed |= self._read_log()
            names = self._listed
            combined = self._combined if is_deep else None
            for name in sorted(names if is_deep else names.difference(self._covered)):
                is_covered = name in self._covered
                if is_covered and name in self._loaded:
                    continue
                done = self._loaded.get(name, 0)
                index = os.path.join(directory, name)
                try:
                    size = os.stat(index).st_size
                    if size - done < _INDEX_ENTRY.size:
                        continue
                    fd = os.open(index, flags)
                except FileNotFoundError:
                    continue  # removed since it was listed (fsck --repair)
                try:
                    data = os.pread(fd, size - done, done)
                finally:
                    os.close(fd)
                pack = index.removesuffix(".idx") + ".pack"
                # A torn last entry (a crash mid-write) is left for later: never half-read.
                usable = len(data) - len(data) % _INDEX_ENTRY.size
                for digest, offset, length in _INDEX_ENTRY.iter_unpack(data[:usable]):
                    if is_covered and (
                        digest in self._packed
                        or (combined is not None and combined.find(digest) is not None)
                    ):
                        continue  # the copy the combined index chose (or a later one) stays
                    self._packed[digest] = (pack, offset, length)
                self._loaded[name] = done + usable
            if is_deep:
                self._is_deep = True

    def _adopt_combined(self) -> None:
        """Take the combined index if it is whole (else the packs are listed and read)."""
        path = os.path.join(self.root, COMBINED_INDEX)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.warning("not using the combined pack index %s: %s", path, exc.strerror or exc)
            return
        combined = _CombinedIndex.parse(data)
        if combined is None:
            # Rebuilt by the next import from the pack indexes, which are read meanwhile.
            logger.warning("not using the combined pack index %s: damaged or unknown", path)
            return
        self._combined = combined
        self._covered = {f"{stem}.idx" for stem in combined.names}
        self._listed = self._covered | {f"{stem}.idx" for stem in combined.outside}
        self._log_offset = combined.log_offset

    def _mask_gone(self, listed: set[str]) -> None:
        """Stop serving the entries of covered packs a listing no longer shows (fsck --repair).

        A combined index with masked packs is rewritten without them by the next import.
        """
        gone = self._covered.difference(listed)
        if self._combined is not None and gone:
            self._combined.masked |= {
                at for at, stem in enumerate(self._combined.names) if f"{stem}.idx" in gone
            }
            self._covered -= gone

    def _read_log(self) -> set[str]:
        """The index files ``packs.log`` names past where this object last read it."""
        try:
            fd = os.open(os.path.join(self.root, PACK_LOG), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return set()  # none yet (or unreadable: the listings still find every pack)
        try:
            size = os.fstat(fd).st_size
            if size < self._log_offset:
                self._log_offset = 0  # a new log: read it whole
            data = os.pread(fd, size - self._log_offset, self._log_offset)
        except OSError:
            return set()
        finally:
            os.close(fd)
        end = data.rfind(b"\n") + 1  # a line still being appended is read next time
        self._log_offset += end
        lines = data[:end].split(b"\n")
        return {f"{line.decode('ascii')}.idx" for line in lines if _PACK_STEM.fullmatch(line)}

    def _announce(self, pack: str) -> None:
        """Append the name of a pack this object writes to ``packs.log`` (see _CombinedIndex).

        One short ``O_APPEND`` write per pack. If it fails, the pack is found by listings only.
        """
        line = os.path.basename(pack).removesuffix(".pack").encode("ascii") + b"\n"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(os.path.join(self.root, PACK_LOG), flags, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            logger.warning("cannot append to %s: %s", PACK_LOG, exc.strerror or exc)

    def _combined_entry(self, digest: bytes) -> tuple[str, int, int] | None:
        combined = self._combined
        found = None if combined is None else combined.find(digest)
        if found is None:
            return None
        stem, offset, length = found
        return os.path.join(self.root, "packs", f"{stem}.pack"), offset, length

    def _pack_entry(self, digest: bytes, *, is_fresh: bool = True) -> tuple[str, int, int] | None:
        """Where a packed block is; None if it is not in any pack index.

        A read (``is_fresh``) that misses re-reads the indexes: another process may have just
        stored the block. A write-side lookup (``is_fresh=False``) does not: a new leaf misses
        by definition, and re-reading every index for each one made storing a file into a
        store of 1,000 packs several times slower than into an empty one (bench/store_packs.py).
        The indexes are re-read once per import instead (see :meth:`_refresh_indexes`); a block
        another process packs meanwhile is at worst stored twice, and either copy serves.
        Entries read from the pack indexes since the combined index was written win over it.
        A read that still misses lists ``packs/`` (a pack ``packs.log`` does not name), then
        reads every index whole once: the combined index holds one copy per digest, and that
        copy's pack may be gone.
        """
        entry = self._packed.get(digest) or self._combined_entry(digest)
        if entry is None and (is_fresh or not self._is_scanned):
            self._load_indexes()
            entry = self._packed.get(digest) or self._combined_entry(digest)
            if entry is None and is_fresh and self._combined is not None:
                self._load_indexes(is_listed=True)
                entry = self._packed.get(digest) or self._combined_entry(digest)
                if entry is None and not self._is_deep:
                    self._load_indexes(is_deep=True)
                    entry = self._packed.get(digest)
        return entry

    def _refresh_indexes(self) -> None:
        """Pick up packs other processes added since this object last looked (once per import)."""
        self._load_indexes()

    def _update_combined(self) -> None:
        """After an import: rewrite the combined index if too many packs are outside it.

        Decided without a listing: the packs the import's scan found and the ones it wrote.
        The rewrite lists ``packs/`` (every 16 imports or so). Only finished packs go in (no
        import holds them: their indexes cannot grow); the others are named as outside.
        Written under a temporary name in ``tmp/`` and renamed into place, so a reader sees
        the old file or the new one; a kill leaves a temporary file (``fsck --repair`` removes
        it) and the old index. Two imports writing at once: the last rename wins, and the
        packs only the other one added are read from their own indexes until the next
        rewrite. Not fsynced: a file a crash damaged fails its checksum and is rebuilt.
        """
        directory = os.path.join(self.root, "packs")
        own = {f"{os.path.basename(pack).removesuffix('.pack')}.idx" for pack in self._own_packs}
        outside = sorted((self._listed | own).difference(self._covered))
        try:
            entries = sum(
                os.stat(os.path.join(directory, name)).st_size
                if name in own
                else self._loaded.get(name, 0)
                for name in outside
            )
        except OSError:
            return  # removed meanwhile (nothing in it was new): the next import looks again
        combined = self._combined
        if not (combined is not None and combined.masked) and (
            len(outside) < _UNCOVERED_PACKS and entries < _UNCOVERED_ENTRIES * _INDEX_ENTRY.size
        ):
            return
        self._load_indexes(is_listed=True)  # every pack there; the gone ones masked
        is_stale = combined is not None and bool(combined.masked)
        outside = sorted(self._listed.difference(self._covered))
        finished = [name for name in outside if _is_finished(os.path.join(directory, name))]
        if not finished and not is_stale:
            return  # only packs imports still write: nothing to add yet
        self._load_indexes()  # what the finished packs' indexes hold now is all they will hold
        with self._index_lock:
            stems = [name.removesuffix(".idx") for name in finished]
            left = [
                name.removesuffix(".idx")
                for name in sorted(self._listed.difference(self._covered, finished))
            ]
            log_offset = self._log_offset
            number = {
                os.path.join(directory, f"{stem}.pack"): at
                for at, stem in enumerate(
                    stems, start=0 if combined is None else len(combined.names)
                )
            }
            added = {
                digest: (number[pack], offset, length)
                for digest, (pack, offset, length) in self._packed.items()
                if pack in number
            }
        if combined is None:
            index, data = _CombinedIndex.build(stems, _records(added), left, log_offset)
        elif is_stale:
            names, records = _without_masked(combined, stems, added)
            index, data = _CombinedIndex.build(names, records, left, log_offset)
        else:
            index, data = combined.merged(stems, added, left, log_offset)
        if not self._write_combined(data):
            return
        with self._index_lock:
            self._combined = index
            self._covered = {f"{stem}.idx" for stem in index.names}

    def _write_combined(self, data: bytes) -> bool:
        """Put ``data`` in place as the combined index; False (and a log line) if refused."""
        tmp = os.path.join(self._tmp, f"{COMBINED_INDEX}.{secrets.token_hex(8)}")
        try:
            os.makedirs(self._tmp, exist_ok=True)
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644
            )
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, os.path.join(self.root, COMBINED_INDEX))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            logger.warning("cannot write the combined pack index: %s", exc.strerror or exc)
            return False
        return True

    def _usable_pack_entry(self, digest: bytes) -> bool:
        """An entry whose bytes are all there and not known to be damaged (else re-store)."""
        entry = self._pack_entry(digest, is_fresh=False)
        if entry is None or digest in self._damaged:
            return False
        pack, offset, length = entry
        try:
            return os.stat(pack).st_size >= offset + length
        except FileNotFoundError:
            return False

    def has_usable_block(self, digest: bytes) -> bool:
        """Whether an intact-looking copy of the block is stored (a file, or a whole pack entry)."""
        return os.path.isfile(self._block_path(digest)) or self._usable_pack_entry(digest)

    def remember_packed(self, digest: bytes, pack: str, offset: int, size: int) -> None:
        """Note a block this process just indexed in a pack."""
        with self._index_lock:
            self._packed[digest] = (pack, offset, size)
            if pack not in self._own_packs:
                self._own_packs.add(pack)
                self._announce(pack)
            self._damaged.discard(digest)

    def _has_block(self, digest: bytes) -> bool:
        return os.path.isfile(self._block_path(digest)) or self._pack_entry(digest) is not None

    def pack_block(
        self,
        pack: Callable[[], _Pack],
        digest: bytes,
        parts: Sequence[bytes | memoryview],
        size: int,
    ) -> bool:
        """Append a large block to the import's pack unless the store has it; True if added."""
        if self._usable_pack_entry(digest) or os.path.isfile(self._block_path(digest)):
            return False
        target = pack()
        offset = target.append(digest, parts, size)
        self.remember_packed(digest, target.path, offset, size)
        return True

    # ------------------------------------------------------------------ writing

    def _block_path(self, digest: bytes) -> str:
        name = digest.hex()
        return os.path.join(self._blocks, name[:2], name)

    def write_block(
        self,
        digest: bytes,
        parts: Sequence[bytes | memoryview],
        size: int,
        *,
        is_repair: bool = False,
    ) -> bool:
        """Write one block unless an intact copy exists; return whether it was written.

        Args:
            digest: the block's sha256.
            parts: the block's bytes, in pieces.
            size: the block's length.
            is_repair: replace an existing file even when its size looks right (a verified
                copy is replacing one that failed its hash check).

        Raises:
            ContentError: the store directory cannot be written.
        """
        final = self._block_path(digest)
        try:
            if os.stat(final).st_size == size and not is_repair:
                return False
            logger.warning("rewriting block %s: damaged on disk", digest.hex())
        except FileNotFoundError:
            # A new block is created under its final name: a rename per block cost more than
            # the hashing (measured in bench/hash.py). A crash can leave it short, never long;
            # the next put rewrites a block of the wrong size and every read rehashes.
            if self._create(final, parts):
                return True
        except OSError as exc:
            raise self.write_error(exc) from exc
        shard = os.path.dirname(final)
        tmp = os.path.join(self._tmp, f"{digest.hex()}.{secrets.token_hex(8)}")
        try:
            # Replacing a damaged block (rare): via tmp/ and a rename, never torn in place.
            os.makedirs(shard, exist_ok=True)
            os.makedirs(self._tmp, exist_ok=True)
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o444
            )
            try:
                for part in parts:
                    view = memoryview(part)
                    while view:
                        view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise self.write_error(exc) from exc
        return True

    def _create(self, final: str, parts: Sequence[bytes | memoryview]) -> bool:
        """Create a new block file; False when another writer created it first."""
        shard = os.path.dirname(final)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            if shard not in self._made:
                os.makedirs(shard, exist_ok=True)
                self._made.add(shard)
            fd = os.open(final, flags, 0o444)
        except FileExistsError:
            return False
        except OSError as exc:
            raise self.write_error(exc) from exc
        try:
            for part in parts:
                view = memoryview(part)
                while view:
                    view = view[os.write(fd, view) :]
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(final)
            raise self.write_error(exc) from exc
        os.close(fd)
        return True

    def write_error(self, exc: OSError) -> ContentError:
        return ContentError(f"cannot write to the content store {self.root}: {exc.strerror or exc}")

    def put_path(
        self,
        path: Path,
        *,
        cid_version: int = 1,
        allow_symlinks: bool = False,
        progress: ProgressCallback | None = None,
    ) -> StoredContent:
        """Store a file or directory in one read pass (see ``ContentStore.put_path``).

        Raises:
            InputError: the path is missing, unreadable, refused, or changed while read.
            ContentError: the store cannot be written.
        """
        is_large_file = not path.is_symlink() and path.is_file() and path.stat().st_size >= COPY_MIN
        self._refresh_indexes()
        if cid_version == 1 and is_large_file:
            counter = _Progress(progress)
            digest, blocks, added = self.put_large_file(os.fsencode(path), str(path), counter.add)
            self._update_combined()
            return StoredContent(
                path, "file", digest.size, digest.sha256, str(digest.root.cid), blocks, added
            )
        writer = _BlockWriter(self)
        try:
            result = import_path(
                path, cid_version, sink=writer, progress=progress, allow_symlinks=allow_symlinks
            )
        finally:
            writer.close()
        self._update_combined()
        return StoredContent(
            path,
            "directory" if result.kind == "directory" else "file",
            result.size,
            result.sha256,
            str(result.root.cid),
            writer.blocks,
            writer.bytes,
        )

    def put_large_file(
        self, path: bytes, display: str, on_bytes: Callable[[int], None] | None = None
    ) -> tuple[FileDigest, int, int]:
        """Store a large file whole in a pack of its own, its raw leaves indexed in place.

        Where the filesystem can clone (FICLONE), the pack shares the file's extents and is
        hashed from there (the bytes hashed are the bytes stored). Elsewhere the file is read
        once by ``copy_file``: its sha256, its leaves and the pack's writes overlap on three
        threads, from the file's own pages where it can be mapped under a read lease (a
        writer's open or truncate waits meanwhile), the pack written with direct I/O from
        them. Durability: that pack and its index are
        flushed (one fdatasync each) before the root block is written, so a root that is
        present names leaves that are on disk; block files (and a clone) stay unsynced, as
        elsewhere.

        Returns:
            The file's digest, and the blocks and bytes this added to the store.

        Raises:
            InputError: the file is missing, unreadable, not a regular file, or changed.
            ContentError: the store cannot be written.
        """
        try:
            pack = _Pack(str(self.root / "packs"))
        except OSError as exc:
            raise self.write_error(exc) from exc
        is_kept = False
        writer: _BlockWriter | None = None
        try:
            if pack.clone_from(Path(os.fsdecode(path))):
                cloned = _CopiedFileWriter(self, pack)
                writer = cloned
                done = [0]

                def step(total: int) -> None:  # import_path reports running totals
                    if on_bytes is not None:
                        on_bytes(total - done[0])
                    done[0] = total

                result = import_path(Path(pack.path), 1, sink=cloned, progress=step)
                digest = FileDigest(result.sha256, result.size, result.root)
                is_kept = cloned.leaves_added > 0
            else:
                streamed = _StreamedFileWriter(self, pack)
                writer = streamed
                digest = copy_file(path, display, streamed, on_bytes=on_bytes)
                is_kept = streamed.leaves_added > 0
        finally:
            pack.close()
            if writer is not None:
                writer.close()
            if not is_kept:
                pack.remove()  # every chunk was stored already: the copy is not needed
        return digest, writer.blocks, writer.bytes

    def put_bytes(self, data: bytes) -> str:
        """Store a small document as ``ipfs add --cid-version 1`` would; return its CID.

        Raises:
            ContentError: the store cannot be written.
        """
        writer = _BlockWriter(self)
        try:
            return str(dag_for_bytes(data, 1, sink=writer).cid)
        finally:
            writer.close()

    # ------------------------------------------------------------------ reading

    def read_block(self, cid: Cid) -> bytes:
        """Return a block's bytes after checking they hash to ``cid``.

        Raises:
            ContentError: the block is missing.
            DamagedStoreError: the block's file (or pack) is damaged, too large, unreadable, or
                does not hash to its CID.
        """
        path = self._block_path(cid.digest)
        where = _shown(Path(path))
        try:
            with open(path, "rb") as block_file:
                if os.fstat(block_file.fileno()).st_size > _MAX_BLOCK:
                    raise self._damage(f"block file {where} is too large to be a block")
                block = block_file.read()
        except FileNotFoundError:
            block, where = self._read_packed(cid)
        except OSError as exc:
            raise self._damage(f"cannot read block file {where}: {exc.strerror or exc}") from exc
        if not cid.matches(block):
            raise self._damage(f"{where} does not hash to its CID {cid}: the store was altered")
        return block

    def _damage(self, text: str) -> DamagedStoreError:
        return DamagedStoreError(
            f"the content store is damaged: {text}",
            hint="run `proml fsck`; a block held elsewhere is restored by `proml pull`/`sync`",
        )

    def _read_packed(self, cid: Cid, *, is_retry: bool = False) -> tuple[bytes, str]:
        """A packed block's bytes (unchecked) and where they were, for messages.

        A pack that is gone (``fsck --repair``; the combined index learns it from a listing)
        makes the lookup run again once, after listing ``packs/``.
        """
        entry = self._pack_entry(cid.digest)
        if entry is None:
            raise ContentError(f"block {cid} is missing from the content store {self.root}")
        pack, offset, length = entry
        where = f"{_shown(Path(pack))} at offset {offset}"
        if length > _MAX_BLOCK:
            raise self._damage(
                f"the index of {_shown(Path(pack))} gives block {cid} {length} bytes, more than "
                "a block can hold"
            )
        try:
            with open(pack, "rb") as handle:
                handle.seek(offset)
                block = handle.read(length)
        except FileNotFoundError as exc:
            if not is_retry and self._combined is not None:
                self._load_indexes(is_listed=True)  # masks the pack: the entry is not served
                return self._read_packed(cid, is_retry=True)
            raise self._damage(f"cannot read {where}: {exc.strerror or exc}") from exc
        except OSError as exc:
            raise self._damage(f"cannot read {where}: {exc.strerror or exc}") from exc
        if len(block) != length:
            self._damaged.add(cid.digest)
            raise self._damage(f"{where} is truncated (block {cid})")
        if not cid.matches(block):
            self._damaged.add(cid.digest)
        return block, where

    def _node(self, cid: Cid, block: bytes) -> tuple[PBNode, UnixFSData]:
        if cid.codec != CODEC_DAG_PB:
            raise ContentError(f"{cid}: unsupported codec 0x{cid.codec:x}")
        node = decode_pb_node(block)
        return node, decode_unixfs(node.data)

    def _file_pieces(self, cid: Cid, block: bytes) -> Iterator[bytes]:
        """Yield a file's bytes in order, one block at a time."""
        if cid.codec == CODEC_RAW:
            yield block
            return
        node, unixfs = self._node(cid, block)
        if unixfs.type not in (UNIXFS_FILE, UNIXFS_RAW):
            raise ContentError(f"{cid} is not part of a file")
        if node.links and len(node.links) != len(unixfs.blocksizes):
            raise ContentError(f"{cid}: links and blocksizes differ in number")
        if unixfs.data:
            yield unixfs.data
        for link in node.links:
            yield from self._file_pieces(link.cid, self.read_block(link.cid))

    def _file_size(self, cid: Cid, block: bytes) -> int | None:
        """Return the size a file root declares, or None if ``cid`` is not a file."""
        if cid.codec == CODEC_RAW:
            return len(block)
        _, unixfs = self._node(cid, block)
        if unixfs.type not in (UNIXFS_FILE, UNIXFS_RAW):
            return None
        return unixfs.filesize or 0

    def cat(self, cid: str, *, limit: int = DEFAULT_CAT_LIMIT) -> bytes:
        """Return the bytes of a stored file (see ``ContentStore.cat``).

        Raises:
            InputError: the CID is malformed, names a directory, or exceeds ``limit``.
            ContentError: a block is missing or does not hash to its CID.
        """
        root = Cid.parse(cid)
        block = self.read_block(root)
        size = self._file_size(root, block)
        if size is None:
            raise InputError(f"{cid} is not a file", hint=f"use get to write it out: {cid}")
        if size > limit:
            raise InputError(f"{cid} holds {size} bytes, more than the {limit} cat returns")
        data = b"".join(self._file_pieces(root, block))
        if len(data) != size:
            raise ContentError(f"{cid}: the file's blocks add up to {len(data)} bytes, not {size}")
        return data

    def has(self, cid: str) -> bool:
        """Return whether the root block of ``cid`` is stored (see the module docstring).

        Raises:
            InputError: the CID is malformed.
        """
        return self._has_block(Cid.parse(cid).digest)

    def get(self, cid: str, dest: Path) -> None:
        """Write stored content to ``dest``, which must not exist yet; streaming.

        The content is assembled beside ``dest`` under a temporary name and renamed into place,
        so ``dest`` appears complete or not at all.

        Raises:
            InputError: the CID is malformed or ``dest`` already exists.
            ContentError: a block is missing, malformed, or does not hash to its CID.
        """
        root = Cid.parse(cid)
        if dest.exists() or dest.is_symlink():
            raise InputError(f"{dest} already exists", hint="choose a new destination path")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.proml-{secrets.token_hex(6)}.tmp"
        try:
            self._materialize(root, tmp)
            os.replace(tmp, dest)
        except BaseException:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            raise

    def _materialize(self, cid: Cid, dest: Path) -> None:
        block = self.read_block(cid)
        size = self._file_size(cid, block)
        if size is not None:
            self._write_file(cid, block, size, dest)
            return
        node, unixfs = self._node(cid, block)
        if unixfs.type == UNIXFS_SYMLINK:
            os.symlink(os.fsdecode(unixfs.data or b""), dest)
        elif unixfs.type in (UNIXFS_DIRECTORY, UNIXFS_HAMT_SHARD):
            dest.mkdir()
            for name, child in self._entries(cid, node, unixfs):
                self._materialize(child, dest / _safe_name(cid, name))
        else:
            raise ContentError(f"{cid}: unsupported UnixFS type {unixfs.type}")

    def _write_file(self, cid: Cid, block: bytes, size: int, dest: Path) -> None:
        written = 0
        try:
            with dest.open("xb") as out:
                for piece in self._file_pieces(cid, block):
                    out.write(piece)
                    written += len(piece)
        except OSError as exc:
            raise InputError(f"cannot write {dest}: {exc.strerror or exc}") from exc
        if written != size:
            raise ContentError(f"{cid}: the file's blocks add up to {written} bytes, not {size}")

    def _entries(self, cid: Cid, node: PBNode, unixfs: UnixFSData) -> Iterator[tuple[bytes, Cid]]:
        """Yield a directory's (name, CID) pairs, walking HAMT shards."""
        if unixfs.type == UNIXFS_DIRECTORY:
            for link in node.links:
                yield link.name, link.cid
            return
        fanout = unixfs.fanout or 0
        if fanout != HAMT_FANOUT and (fanout < 8 or fanout > 1024 or fanout & (fanout - 1)):
            raise ContentError(f"{cid}: bad HAMT fanout {fanout}")
        width = len(f"{fanout - 1:X}")
        for link in node.links:
            if len(link.name) == width:
                sub_node, sub_unixfs = self._node(link.cid, self.read_block(link.cid))
                if sub_unixfs.type != UNIXFS_HAMT_SHARD:
                    raise ContentError(f"{link.cid}: HAMT child without a HAMT shard")
                yield from self._entries(link.cid, sub_node, sub_unixfs)
            elif len(link.name) > width:
                yield link.name[width:], link.cid
            else:
                raise ContentError(f"{cid}: malformed HAMT link name {link.name!r}")

    # ------------------------------------------------------------------ integrity and export

    def _walk_blocks(self, root: Cid) -> Iterator[tuple[Cid, bytes]]:
        """Yield every block of the DAG once, depth-first, parents before children."""
        seen: set[bytes] = set()
        stack = [root]
        while stack:
            cid = stack.pop()
            key = cid.to_bytes()
            if key in seen:
                continue
            seen.add(key)
            block = self.read_block(cid)
            yield cid, block
            if cid.codec == CODEC_DAG_PB:
                node = decode_pb_node(block)
                stack.extend(link.cid for link in reversed(node.links))
            elif cid.codec != CODEC_RAW:
                raise ContentError(f"{cid}: unsupported codec 0x{cid.codec:x}")

    def check(self, cid: str) -> None:
        """Rehash every block of the DAG under ``cid``.

        Raises:
            InputError: the CID is malformed.
            ContentError: a block is missing, malformed, or does not hash to its CID.
        """
        for _ in self._walk_blocks(Cid.parse(cid)):
            pass

    def unpushed(self) -> list[str]:
        """Nothing: the embedded store is the whole store."""
        return []

    def flush(self) -> list[str]:
        """Nothing to send: the embedded store is the whole store."""
        return []

    def export_car(self, cid: str, dest: Path) -> None:
        """Write the DAG under ``cid`` as a CAR v1 file with that one root.

        Raises:
            InputError: the CID is malformed or ``dest`` cannot be written.
            ContentError: a block is missing, malformed, or does not hash to its CID.
        """
        root = Cid.parse(cid)
        try:
            write_car(dest, [root], self._walk_blocks(root))
        except OSError as exc:
            raise InputError(f"cannot write {dest}: {exc.strerror or exc}") from exc


def _stems(text: bytes) -> list[str] | None:
    """Pack names one a line, as the combined index keeps them; None if malformed."""
    if not text:
        return []
    if not _PACK_STEMS.fullmatch(text):
        return None
    return text.decode("ascii").split("\n")


def _index_names(directory: str) -> set[str]:
    """The pack index files in ``directory`` (one listing, names only)."""
    return {name for name in os.listdir(directory) if name.endswith(".idx")}


def _is_finished(index: str) -> bool:
    """Whether the pack of ``index`` exists and no import holds it (see ``_Pack``).

    An index is created after its pack is locked, so a listed index whose pack is unlocked
    belongs to an import that ended (or died): it will not grow.
    """
    try:
        return _pack_held(index.removesuffix(".idx") + ".pack") is False
    except OSError:
        return False


def _records(entries: dict[bytes, tuple[int, int, int]]) -> bytes:
    """Combined-index entries, sorted by digest."""
    return b"".join(_COMBINED_RECORD.pack(digest, *entries[digest]) for digest in sorted(entries))


def _without_masked(
    combined: _CombinedIndex, stems: list[str], added: dict[bytes, tuple[int, int, int]]
) -> tuple[list[str], bytes]:
    """The names and entries of ``combined`` less its masked packs, plus ``stems``' ``added``.

    ``added`` numbers its packs after all of ``combined``'s; every entry is renumbered.
    """
    names: list[str] = []
    renumbered: dict[int, int] = {}
    for number, stem in enumerate([*combined.names, *stems]):
        if number not in combined.masked:
            renumbered[number] = len(names)
            names.append(stem)
    entries: dict[bytes, tuple[int, int, int]] = {}
    for digest, number, offset, length in _COMBINED_RECORD.iter_unpack(combined.records):
        if number in renumbered:
            entries[digest] = (renumbered[number], offset, length)
    for digest, (number, offset, length) in added.items():
        entries[digest] = (renumbered[number], offset, length)
    return names, _records(entries)


def is_pack_in_use(pack: Path) -> bool:
    """Whether an import still holds ``pack`` open for writing (see ``_Pack``)."""
    return _pack_held(pack) is True


def _pack_held(pack: str | Path) -> bool | None:
    """Whether an import holds ``pack`` (its lock); None when there is no such pack.

    Raises:
        OSError: the pack cannot be opened or locked for another reason.
    """
    try:
        fd = os.open(pack, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock taken just now
    return False


def _shown(path: Path) -> str:
    """A path as messages show it: relative to the working directory when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


def _safe_name(cid: Cid, name: bytes) -> str:
    """Refuse directory entry names that would escape the destination or cannot be files."""
    if name in (b"", b".", b"..") or b"/" in name or b"\0" in name:
        raise ContentError(f"{cid}: unsafe directory entry name {name!r}")
    return os.fsdecode(name)
