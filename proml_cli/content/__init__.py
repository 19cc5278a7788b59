r"""Content addressing: kubo-identical CIDs and sha256 digests, and the stores that keep the bytes.

Identifiers. ``hash_path`` gives, from one read of every file, the sha256 and the CID that
``ipfs add`` (kubo defaults) would print: CIDv1 with raw leaves by default (``ipfs add
--cid-version 1``), CIDv0 on request (plain ``ipfs add``). Directories are hashed as
``ipfs add -r --hidden`` builds them: hidden files are included, empty directories too, and a
directory whose entries exceed kubo's 256 KiB estimate becomes a HAMT-sharded directory exactly
as kubo shards it. Symbolic links are refused unless ``allow_symlinks`` is set; then a link
inside a directory is recorded as a UnixFS symlink (as kubo does) and a link given as the path
itself is followed.

Directory digest. The ``sha256`` of a directory is the sha256 of its manifest: one line per
regular file, ``b"<sha256 hex>  <size>  <relpath>\n"`` (lowercase hex of the file's sha256, two
spaces, its size in bytes as a decimal integer, two spaces, its path relative to the directory,
POSIX separators, as raw file-system bytes), sorted by ``relpath`` byte-wise. An allowed symlink
is listed as ``b"<sha256 hex of the link target>  symlink  <relpath>\n"``. Directories themselves,
empty or not, add no line (the CID covers them). File names holding a line break are refused.
For example, a directory with ``a.txt`` = ``b"hi\n"`` and ``sub/b`` empty has the manifest::

    98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4  3  a.txt
    e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  0  sub/b

Stores. ``open_store`` returns a :class:`ContentStore`; the embedded store keeps blocks under a
project's ``.proml/`` directory and can export any stored DAG as a CAR v1 file for
``ipfs dag import``. Records go in with ``put_bytes``, which always gives the same bytes the same
CID: the CID ``ipfs add --cid-version 1`` gives a file holding them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from proml_cli.content import _unixfs
from proml_cli.errors import ContentError, InputError

__all__ = [
    "DEFAULT_CAT_LIMIT",
    "ContentStore",
    "HashResult",
    "ProgressCallback",
    "StoredContent",
    "bytes_cid",
    "cid_from_bytes",
    "cid_to_bytes",
    "hash_path",
    "open_store",
]

#: Called with the running total of bytes read; may be called from worker threads.
ProgressCallback = Callable[[int], None]

#: ``cat`` refuses content larger than this by default: use ``get`` to stream big content.
DEFAULT_CAT_LIMIT = 64 * 1024 * 1024

ContentType = Literal["file", "directory"]


@dataclass(frozen=True)
class HashResult:
    """The identity of a file or directory.

    Attributes:
        path: the path that was hashed, as given.
        type: ``"file"`` or ``"directory"``.
        size: file size in bytes; for a directory the total of its regular files.
        sha256: lowercase hex sha256 of the file, or of the directory's manifest.
        cid: the CID kubo would give it (text form: ``bafy…``/``bafk…`` or ``Qm…``).
    """

    path: Path
    type: ContentType
    size: int
    sha256: str
    cid: str


@dataclass(frozen=True)
class StoredContent:
    """What ``put_path`` stored.

    Attributes:
        path: the path that was stored, as given.
        type: ``"file"`` or ``"directory"``.
        size: as in :class:`HashResult`.
        sha256: as in :class:`HashResult`.
        cid: the root CID; ``get(cid, …)`` gives the bytes back.
        blocks_added: blocks that were not in the store before.
        bytes_added: bytes of those blocks.
    """

    path: Path
    type: ContentType
    size: int
    sha256: str
    cid: str
    blocks_added: int
    bytes_added: int


class ContentStore(Protocol):
    """A content-addressed block store speaking CIDs (the embedded store now, kubo later)."""

    def put_path(
        self,
        path: Path,
        *,
        cid_version: int = 1,
        allow_symlinks: bool = False,
        progress: ProgressCallback | None = None,
    ) -> StoredContent:
        """Store a file or directory in one read pass; return its identity.

        Raises:
            InputError: the path is missing, unreadable, refused, or changed while read.
        """
        ...

    def put_bytes(self, data: bytes) -> str:
        """Store a small document (a record); return its CIDv1, the same for the same bytes."""
        ...

    def cat(self, cid: str, *, limit: int = DEFAULT_CAT_LIMIT) -> bytes:
        """Return the bytes of a stored file.

        Raises:
            InputError: the CID is malformed, names a directory, or is larger than ``limit``.
            ContentError: a block is missing or does not hash to its CID.
        """
        ...

    def get(self, cid: str, dest: Path) -> None:
        """Write stored content to ``dest`` (which must not exist), streaming, byte-identical.

        Raises:
            InputError: the CID is malformed or ``dest`` exists.
            ContentError: a block is missing or does not hash to its CID.
        """
        ...

    def has(self, cid: str) -> bool:
        """Return whether the root block of ``cid`` is stored."""
        ...

    def check(self, cid: str) -> None:
        """Walk the whole DAG under ``cid`` and rehash every block.

        Raises:
            ContentError: a block is missing, malformed, or does not hash to its CID.
        """
        ...

    def export_car(self, cid: str, dest: Path) -> None:
        """Write the DAG under ``cid`` as a CAR v1 file (one root) for ``ipfs dag import``.

        Raises:
            ContentError: a block is missing or does not hash to its CID.
        """
        ...

    def unpushed(self) -> list[str]:
        """CIDs kept only locally because a network node was unreachable (none when local)."""
        ...

    def flush(self) -> list[str]:
        """Send what :meth:`unpushed` lists to the network node; return what was sent.

        Raises:
            BackendUnavailable: the node is still unreachable.
        """
        ...


def hash_path(
    path: Path,
    *,
    cid_version: int = 1,
    allow_symlinks: bool = False,
    progress: ProgressCallback | None = None,
) -> HashResult:
    """Compute the sha256 and the kubo CID of a file or directory, reading each file once.

    Args:
        path: a regular file or a directory.
        cid_version: 1 (``ipfs add --cid-version 1``, raw leaves) or 0 (plain ``ipfs add``).
        allow_symlinks: record symlinks instead of refusing them (see the module docstring).
        progress: called with the running total of bytes read.

    Raises:
        InputError: the path is missing, unreadable, a refused symlink, a special file, or a
            file changed while it was read.
    """
    result = _unixfs.import_path(
        path, cid_version, progress=progress, allow_symlinks=allow_symlinks
    )
    return HashResult(
        path, _content_type(result.kind), result.size, result.sha256, str(result.root.cid)
    )


def bytes_cid(data: bytes) -> str:
    """Return the CID ``put_bytes`` gives ``data``, without storing it."""
    return str(_unixfs.dag_for_bytes(data, 1).cid)


def open_store(
    kind: str, *, root: Path, url: str | None = None, timeout: float = 20.0
) -> ContentStore:
    """Open a content store.

    Args:
        kind: ``"embedded"``, a block store in ``root`` (e.g. ``<project>/.proml/content``).
        root: the store's directory; created on first write.
        url: the node's RPC address, for network backends.
        timeout: seconds to wait for the node's answer (network backends).

    Raises:
        InputError: the kind is unknown or not available yet.
    """
    if kind == "embedded":
        from proml_cli.content._local import EmbeddedStore

        _ = url
        return EmbeddedStore(root)
    if kind == "kubo":
        if not url:
            raise InputError(
                "storage.backend is ipfs but no node URL is set", hint="set storage.ipfs"
            )
        from proml_cli.content._kubo import KuboStore

        return KuboStore(root, url, timeout=timeout)
    raise InputError(f"unknown content store kind {kind!r} (known: embedded, kubo)")


def cid_to_bytes(cid: str) -> bytes:
    """The binary form of a CID (what the ledger stores: shorter than the text).

    Raises:
        InputError: not a CID.
    """
    return _unixfs.Cid.parse(cid).to_bytes()


def cid_from_bytes(raw: bytes) -> str:
    """The canonical text form (CIDv0 base58btc, CIDv1 base32) of a binary CID.

    Raises:
        ContentError: the bytes are not a whole CID.
    """
    cid, end = _unixfs.Cid.from_bytes(raw, 0)
    if end != len(raw):
        raise ContentError("trailing bytes after a CID")
    return str(cid)


def _content_type(kind: str) -> ContentType:
    return "directory" if kind == "directory" else "file"
