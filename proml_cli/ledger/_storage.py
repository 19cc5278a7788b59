"""Contract storage read in one walk of its trie, each node checked against its hash.

Reading thousands of storage words one at a time (py-evm's ``get_storage``) walks the storage
trie from its root for every word: the upper nodes are read and decoded again and again. This
module reads a batch of slots in one breadth-first walk instead: every node on the way to a
wanted slot is read once (level by level, many per database query) and decoded once.

Each node read from the database is hashed and compared with the reference its parent (or the
state root) holds; a node that does not match is refused (the chain database was damaged or
edited). So what a walk returns is a function of the storage root alone, which makes these
caches sound:

* decoded nodes, by hash (a hash names one content);
* the words found under a storage root, by root and slot (same root, same storage), and what
  was found under each inner node (a walk from a new root descends only where it changed);
* the answers of the contract's view functions, by storage root and code hash.

Beside them, :func:`remembered_pure`, :func:`remember` and :func:`remembered_last` keep answers
of pure computations by every one of their inputs, compared whole (``==``), never by a digest:
the history's step-chain heads by every field they hash, decoded index rows by the row, a
record's step by its CID once the store checked its bytes. A kept answer is what computing it
again would give; the inputs themselves (index rows, the storage root) are read afresh for
every request, so an edit made between two requests is seen as before.

A process that serves many requests (the node) keeps them with :func:`keep_across_reads`; other
processes keep nothing between two reads. Nothing here trusts a local index: storage is the
contract's own state, as committed by the head block's state root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

#: keccak256 of rlp(b""): the root of an empty trie.
EMPTY_ROOT = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
#: keccak256(b""): the code hash of an account without code.
EMPTY_CODE_HASH = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")

#: Decoded nodes (and pure answers) kept at most, and storage roots whose words are kept.
MAX_NODES = 1 << 17
MAX_ROOTS = 8
#: Inner trie nodes whose walked keys are kept (a trie of 5,000 slots has about 330).
MAX_SUBTREES = 1 << 13

Node = list[Any]
#: ``fetch(hashes)``: the stored bytes of these nodes (absent ones left out).
Fetch = Callable[[Sequence[bytes]], dict[bytes, bytes]]


class StorageError(Exception):
    """A trie node is missing, malformed, or does not hash to the reference that names it."""


def keccak(data: bytes) -> bytes:
    """keccak256 (the C implementation eth-tester installs where there is one)."""
    return _keccak(data)


def _load_keccak() -> Callable[[bytes], bytes]:
    try:
        from sha3 import keccak_256  # type: ignore[import-untyped]  # safe-pysha3, required by eth-tester's py-evm extra
    except ImportError:  # pragma: no cover - another interpreter: the portable one
        from eth_utils.crypto import keccak as portable

        return lambda data: bytes(portable(data))
    return lambda data: keccak_256(data).digest()


_keccak = _load_keccak()


@lru_cache(maxsize=1 << 16)
def _trie_key(slot: bytes) -> bytes:
    """Where a storage slot sits in the storage trie (its keccak)."""
    return _keccak(slot)


class Caches:
    """What reads keep: decoded nodes by hash, words by storage root, view answers by state.

    The process's own (:func:`keep_across_reads`), or one reader's for its life (a ledger
    opened in a process that keeps nothing across reads): every entry is a function of the
    hash or root it is kept by, so either is sound; both are trimmed to the same bounds.
    """

    def __init__(self) -> None:
        self.nodes: dict[bytes, Node] = {}
        self.words: dict[bytes, dict[bytes, bytes]] = {}
        self.answers: dict[tuple[bytes, bytes], dict[object, Any]] = {}
        self.pure: dict[object, Any] = {}
        self.last: dict[str, tuple[Any, Any]] = {}
        self.subtrees: dict[bytes, dict[str, bytes]] = {}

    def trim(self) -> None:
        if len(self.nodes) > MAX_NODES:
            self.nodes.clear()
        if len(self.pure) > MAX_NODES:
            self.pure.clear()
        if len(self.subtrees) > MAX_SUBTREES:
            self.subtrees.clear()
        while len(self.words) > MAX_ROOTS:
            self.words.pop(next(iter(self.words)))
        while len(self.answers) > MAX_ROOTS:
            self.answers.pop(next(iter(self.answers)))


_kept: Caches | None = None


def keep_across_reads(keep: bool = True) -> None:
    """Keep decoded nodes and found words between reads in this process (or stop and drop them)."""
    global _kept  # one cache per process, switched on by the node
    _kept = Caches() if keep else None


def keeping() -> bool:
    """Whether this process keeps caches between reads (see :func:`keep_across_reads`)."""
    return _kept is not None


def kept_sizes() -> tuple[int, int]:
    """How many decoded nodes and storage roots are kept (0, 0 when nothing is)."""
    return (len(_kept.nodes), len(_kept.words)) if _kept is not None else (0, 0)


def remembered_pure(question: Any, answer: Callable[[], Any]) -> Any:
    """``answer()``, kept by ``question`` when caches are kept: for pure functions only.

    ``question`` must hold every input of the computation (it is compared whole, never by a
    digest), so a kept answer is exactly what computing it again would give.
    """
    if _kept is None:
        return answer()
    try:
        return _kept.pure[question]
    except KeyError:
        found = _kept.pure[question] = answer()
        _kept.trim()
        return found


def recalled(question: Any) -> Any:
    """What :func:`remember` kept for ``question`` (None when nothing is, or nothing is kept)."""
    return _kept.pure.get(question) if _kept is not None else None


def remember(question: Any, answer: Any) -> None:
    """Keep ``answer`` for ``question`` when caches are kept (a pure function's answer only)."""
    if _kept is not None:
        _kept.pure[question] = answer
        _kept.trim()


def remembered_last(name: str, inputs: Any, answer: Callable[[], list[Any]]) -> list[Any]:
    """``answer()`` (a list, returned as a new one), kept by ``name`` with all its ``inputs``.

    The last answer is reused only when ``inputs`` equal (``==``, whole) the ones it was
    computed from, so it is exactly what computing it again would give. Kept only when caches
    are kept (see :func:`keep_across_reads`).
    """
    if _kept is None:
        return answer()
    last = _kept.last.get(name)
    if last is not None and last[0] == inputs:
        return list(last[1])
    found = answer()
    _kept.last[name] = (inputs, list(found))
    return found


def forget_last(name: str) -> None:
    """Drop what :func:`remembered_last` keeps by ``name`` (an answer not to be reused)."""
    if _kept is not None:
        _kept.last.pop(name, None)


# ---------------------------------------------------------------------------- RLP


def _item(data: bytes, pos: int) -> tuple[Any, int]:
    """One RLP item at ``pos``: bytes or a list of items; and where the next one starts."""
    first = data[pos]
    if first < 0x80:
        return data[pos : pos + 1], pos + 1
    if first < 0xB8:
        end = pos + 1 + first - 0x80
        return data[pos + 1 : end], end
    if first < 0xC0:
        size = first - 0xB7
        start = pos + 1 + size
        end = start + int.from_bytes(data[pos + 1 : start], "big")
        return data[start:end], end
    if first < 0xF8:
        start, end = pos + 1, pos + 1 + first - 0xC0
    else:
        size = first - 0xF7
        start = pos + 1 + size
        end = start + int.from_bytes(data[pos + 1 : start], "big")
    items = []
    while start < end:
        item, start = _item(data, start)
        items.append(item)
    if start != end:
        raise StorageError("an RLP list overruns its length")
    return items, end


def decode(data: bytes) -> Any:
    """A whole RLP document.

    Raises:
        StorageError: it is cut short or has bytes after its end.
    """
    try:
        item, end = _item(data, 0)
    except IndexError:
        raise StorageError("an RLP item is cut short") from None
    if end != len(data):
        raise StorageError("bytes after an RLP item")
    return item


def _path(encoded: bytes) -> tuple[str, bool]:
    """A leaf's or extension's hex-prefix path as nibbles (hex text), and whether it is a leaf."""
    text = encoded.hex()
    if not text:
        raise StorageError("a trie node has an empty path")
    flag = text[0]
    if flag not in "0123":
        raise StorageError("a trie node's path has an unknown flag")
    return (text[1:] if flag in "13" else text[2:]), flag in "23"


# ---------------------------------------------------------------------------- the walk


def _using(caches: Caches | None) -> tuple[Caches, bool]:
    """The caches a read uses and fills: the process's, else the reader's, else throwaway ones."""
    if _kept is not None:
        return _kept, True
    if caches is not None:
        return caches, True
    return Caches(), False


def read(
    root: bytes, keys: Iterable[bytes], fetch: Fetch, caches: Caches | None = None
) -> dict[bytes, bytes]:
    """The leaf values (raw RLP) stored under ``keys`` (32-byte trie keys) in trie ``root``.

    Keys absent from the trie are absent from the answer. Kept caches (see
    :func:`keep_across_reads`), else ``caches``, are used and filled.

    Raises:
        StorageError: a node is missing, malformed or does not match its hash.
    """
    caches, keeps = _using(caches)
    known = caches.words.get(root)
    wanted = list(dict.fromkeys(keys))
    found: dict[bytes, bytes] = {}
    if known is not None:
        missing = []
        for key in wanted:
            value = known.get(key)
            if value is None:
                missing.append(key)
            elif value:
                found[key] = value
        wanted = missing
    if wanted:
        walked = _walk(root, wanted, caches.nodes, fetch, caches.subtrees if keeps else None)
        found.update(walked)
        if keeps:
            record = caches.words.setdefault(root, {})
            for key in wanted:
                record[key] = walked.get(key, b"")  # b"": known to be absent
            caches.trim()
    return found


#: A walk's frontier item: a node's hash or the node itself, depth, wanted keys (hex text),
#: the inner nodes above it (by hash).
_Item = tuple[Any, int, list[str], tuple[bytes, ...]]


def _walk(
    root: bytes,
    keys: Sequence[bytes],
    nodes: dict[bytes, Node],
    fetch: Fetch,
    subtrees: dict[bytes, dict[str, bytes]] | None = None,
) -> dict[bytes, bytes]:
    """Breadth-first, level by level: the nodes of one level are fetched in one batch.

    ``subtrees``: what earlier walks found under each inner node (by its hash, keys as hex
    text, b"" for absent), used and filled; a walk from a new root then stops at every
    subtree it has walked before and descends only where the trie changed.
    """
    if root == EMPTY_ROOT or not keys:
        return {}
    by_text = {key.hex(): key for key in keys}
    results: dict[str, bytes] = {}  # b"": not in the trie
    seen: dict[bytes, dict[str, bytes]] = {}  # this walk's results under each inner node

    def settle(text: str, value: bytes, above: tuple[bytes, ...]) -> None:
        results[text] = value
        for inner in above:
            seen[inner][text] = value

    frontier: list[_Item] = [(root, 0, sorted(by_text), ())]
    while frontier:
        if subtrees is not None:
            rest: list[_Item] = []
            for item in frontier:
                known = subtrees.get(item[0]) if isinstance(item[0], bytes) else None
                if known is not None and all(t in known for t in item[2]):
                    for text in item[2]:
                        settle(text, known[text], item[3])
                else:
                    rest.append(item)
            frontier = rest
        hashes = [ref for ref, _, _, _ in frontier if isinstance(ref, bytes) and ref not in nodes]
        if hashes:
            _load(list(dict.fromkeys(hashes)), nodes, fetch)
        following: list[_Item] = []
        for ref, depth, texts, above in frontier:
            node = nodes[ref] if isinstance(ref, bytes) else ref
            inner = len(node) == 17 or (len(node) == 2 and not _path(node[0])[1])
            if subtrees is not None and inner and isinstance(ref, bytes):
                seen[ref] = {}
                above = (*above, ref)
            if len(node) == 17:
                groups: dict[str, list[str]] = {}
                for text in texts:
                    groups.setdefault(text[depth], []).append(text)
                for nibble, group in groups.items():
                    child = node[int(nibble, 16)]
                    if child == b"":
                        for text in group:
                            settle(text, b"", above)
                    else:
                        following.append((_ref(child), depth + 1, group, above))
            elif len(node) == 2:
                path, leaf = _path(node[0])
                end = depth + len(path)
                if leaf:
                    if not isinstance(node[1], bytes):
                        raise StorageError("a trie leaf holds a list")
                    for text in texts:
                        settle(text, node[1] if text[depth:] == path else b"", above)
                else:
                    group = []
                    for text in texts:
                        if text[depth:end] == path:
                            group.append(text)
                        else:
                            settle(text, b"", above)
                    if group:
                        following.append((_ref(node[1]), end, group, above))
            else:
                raise StorageError(f"a trie node has {len(node)} items")
        frontier = following
    if subtrees is not None:
        for inner_ref, part in seen.items():
            subtrees.setdefault(inner_ref, {}).update(part)
    return {by_text[t]: v for t, v in results.items() if v}


def _ref(child: Any) -> Any:
    """A child reference: a 32-byte hash, or a node small enough to be held inline (a list)."""
    if isinstance(child, list):
        return child
    if len(child) != 32:
        raise StorageError("a trie node names a child that is not a hash")
    return child


def _load(hashes: list[bytes], nodes: dict[bytes, Node], fetch: Fetch) -> None:
    stored = fetch(hashes)
    for ref in hashes:
        data = stored.get(ref)
        if data is None:
            raise StorageError(f"trie node 0x{ref.hex()} is missing")
        if _keccak(data) != ref:
            raise StorageError(f"trie node 0x{ref.hex()} does not match its hash")
        node = decode(data)
        if not isinstance(node, list):
            raise StorageError(f"trie node 0x{ref.hex()} is not a list")
        nodes[ref] = node


# ---------------------------------------------------------------------------- contract storage


def account(
    state_root: bytes, address: bytes, fetch: Fetch, caches: Caches | None = None
) -> tuple[bytes, bytes]:
    """The storage root and code hash of account ``address`` in the state trie ``state_root``.

    Raises:
        StorageError: a node is missing, malformed or does not match its hash.
    """
    kept, keeps = _using(caches)
    key = _keccak(address)
    value = _walk(state_root, [key], kept.nodes, fetch).get(key)
    if keeps:
        kept.trim()
    if value is None:
        return EMPTY_ROOT, b""
    found = decode(value)
    if not (
        isinstance(found, list)
        and len(found) == 4
        and isinstance(found[2], bytes)
        and isinstance(found[3], bytes)
    ):
        raise StorageError("the contract's account is not [nonce, balance, storage, code]")
    return bytes(found[2]), bytes(found[3])


def storage_root(
    state_root: bytes, address: bytes, fetch: Fetch, caches: Caches | None = None
) -> bytes:
    """The storage root of account ``address`` in the state trie ``state_root``.

    Raises:
        StorageError: a node is missing, malformed or does not match its hash.
    """
    return account(state_root, address, fetch, caches)[0]


def remembered(state: tuple[bytes, bytes], question: object, answer: Callable[[], Any]) -> Any:
    """What a view of a contract answers, kept per (storage root, code hash) when caches are.

    A contract's view functions read only its code and storage: the same pair gives the same
    answer. ``answer`` computes it when it is not kept (or nothing is kept).
    """
    if _kept is None:
        return answer()
    kept = _kept.answers.setdefault(state, {})
    if question not in kept:
        kept[question] = answer()
        _kept.trim()
    return kept[question]


def words(
    state_root: bytes,
    address: bytes,
    slots: Sequence[bytes],
    fetch: Fetch,
    caches: Caches | None = None,
) -> list[int]:
    """The storage words at ``slots`` (32-byte slot numbers) of ``address``, 0 where unset.

    Raises:
        StorageError: a node is missing, malformed or does not match its hash.
    """
    root = storage_root(state_root, address, fetch, caches)
    keys = [_trie_key(slot) for slot in slots]
    values = read(root, keys, fetch, caches)
    found = []
    for key in keys:
        value = values.get(key)
        if value is None:
            found.append(0)
            continue
        number = decode(value)
        if not isinstance(number, bytes) or number[:1] == b"\0":
            raise StorageError("a storage value is not a minimal big-endian integer")
        found.append(int.from_bytes(number, "big"))
    return found
