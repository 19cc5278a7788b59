"""Contract storage read in one walk of its trie (proml_cli.ledger._storage) against py-evm's trie.

The walk must find exactly what ``HexaryTrie.get`` finds, key by key, for present and absent
keys, nodes held inline and by hash; a node that does not hash to its reference is refused;
and the caches a node process keeps answer as a fresh walk would, for the same root and for a
changed one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import pytest
import rlp
from trie.hexary import HexaryTrie

from proml_cli.ledger import _storage
from proml_cli.ledger._storage import StorageError, keccak


class _Store(dict[bytes, bytes]):
    """py-evm's key-value view of trie nodes, with the batched fetch the walk uses."""

    fetched: int = 0

    def fetch(self, hashes: Sequence[bytes]) -> dict[bytes, bytes]:
        self.fetched += len(hashes)
        return {h: self[h] for h in hashes if h in self}


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    _storage.keep_across_reads(False)
    yield
    _storage.keep_across_reads(False)


def _trie(items: dict[bytes, int]) -> tuple[_Store, HexaryTrie]:
    store = _Store()
    trie = HexaryTrie(store)
    for key, value in items.items():
        trie[key] = rlp.encode(value)
    return store, trie


def _keys(count: int, seed: int, *, shared: bytes = b"") -> list[bytes]:
    """``count`` distinct keys (deterministic), each starting with ``shared``."""
    made = (keccak(f"{seed}:{i}".encode()) for i in range(count))
    return [shared + k[: 32 - len(shared)] for k in made]


@pytest.mark.parametrize("shared", [b"", b"\x12" * 30], ids=["hashed keys", "long shared prefix"])
def test_the_walk_finds_what_the_trie_holds_and_nothing_else(shared: bytes) -> None:
    # Keys with 30 bytes in common end in short leaves that are held inline in their branch.
    present = _keys(300, 1, shared=shared)
    values = [1, 255, 2**64, 2**256 - 1]
    items = {k: values[i % 4] for i, k in enumerate(present)}
    store, trie = _trie(items)
    absent = _keys(50, 3, shared=shared)
    found = _storage.read(trie.root_hash, [*present, *absent], store.fetch)
    assert set(found) == set(present)
    for key in [*present, *absent]:
        assert found.get(key, b"") == trie.get(key)


def test_without_kept_caches_a_second_read_walks_again() -> None:
    present = _keys(50, 12)
    store, trie = _trie(dict.fromkeys(present, 3))
    _storage.read(trie.root_hash, present, store.fetch)
    first, store.fetched = store.fetched, 0
    _storage.read(trie.root_hash, present, store.fetch)
    assert store.fetched == first > 0


def test_every_node_is_read_once_per_walk() -> None:
    present = _keys(500, 4)
    store, trie = _trie(dict.fromkeys(present, 7))
    _storage.read(trie.root_hash, present, store.fetch)
    assert store.fetched <= len(store)  # one-at-a-time lookups would read each upper node ~500x


def test_an_empty_trie_holds_nothing() -> None:
    assert _storage.read(_storage.EMPTY_ROOT, _keys(3, 5), _Store().fetch) == {}


def test_a_node_that_does_not_match_its_hash_is_refused() -> None:
    present = _keys(40, 6)
    store, trie = _trie(dict.fromkeys(present, 9))
    root = rlp.decode(store[trie.root_hash])
    victim = next(c for c in root if isinstance(c, bytes) and len(c) == 32)  # a child of the root
    node = rlp.decode(store[victim])
    store[victim] = rlp.encode([*node[:-1], b"forged"])
    with pytest.raises(StorageError, match="does not match its hash"):
        _storage.read(trie.root_hash, present, store.fetch)


def test_a_missing_node_is_refused() -> None:
    present = _keys(40, 7)
    store, trie = _trie(dict.fromkeys(present, 9))
    del store[trie.root_hash]
    with pytest.raises(StorageError, match="is missing"):
        _storage.read(trie.root_hash, present, store.fetch)


@pytest.fixture(params=["process", "reader"])
def caches(request: pytest.FixtureRequest) -> _storage.Caches | None:
    """Kept caches two ways: the process's (a node), or one reader's own (an open ledger)."""
    if request.param == "process":
        _storage.keep_across_reads()
        return None
    return _storage.Caches()


def test_kept_caches_answer_as_a_fresh_walk_for_the_same_and_a_changed_root(
    caches: _storage.Caches | None,
) -> None:
    read = functools.partial(_storage.read, caches=caches)
    present = _keys(200, 8)
    store, trie = _trie(dict.fromkeys(present, 1))
    first = read(trie.root_hash, present, store.fetch)
    store.fetched = 0
    assert read(trie.root_hash, present, store.fetch) == first
    assert store.fetched == 0  # same root: the words found under it
    old_root = trie.root_hash
    trie[present[0]] = rlp.encode(2)
    del trie[present[1]]
    store.fetched = 0
    found = read(trie.root_hash, present, store.fetch)
    assert found[present[0]] == rlp.encode(2)
    assert present[1] not in found
    assert all(found[k] == trie.get(k) for k in present[2:])
    assert 0 < store.fetched < 20  # only the nodes on the changed paths are new
    others = [*present[100:150], *_keys(20, 9)]  # another set of keys, some absent
    found = read(trie.root_hash, others, store.fetch)
    assert all(found.get(k, b"") == trie.get(k) for k in others)
    assert read(old_root, present[:2], store.fetch) == {
        present[0]: rlp.encode(1),
        present[1]: rlp.encode(1),
    }


def test_storage_words_decode_and_refuse_a_non_minimal_integer() -> None:
    address = b"\x01" * 20
    slots = [i.to_bytes(32, "big") for i in range(5)]
    storage_store, storage = _trie({keccak(s): i * 1000 + 1 for i, s in enumerate(slots[:4])})
    account = rlp.encode([0, 0, storage.root_hash, keccak(b"")])
    state_store = _Store({**storage_store})
    state = HexaryTrie(state_store)
    state[keccak(address)] = account
    words = _storage.words(state.root_hash, address, slots, state_store.fetch)
    assert words == [1, 1001, 2001, 3001, 0]
    storage[keccak(slots[0])] = b"\x82\x00\x01"  # 0x0001: a leading zero
    state_store.update(storage_store)
    state[keccak(address)] = rlp.encode([0, 0, storage.root_hash, keccak(b"")])
    with pytest.raises(StorageError, match="minimal"):
        _storage.words(state.root_hash, address, slots, state_store.fetch)


def test_kept_caches_follow_a_trie_through_many_changes(caches: _storage.Caches | None) -> None:
    read = functools.partial(_storage.read, caches=caches)
    keys = _keys(400, 10)
    store, trie = _trie(dict.fromkeys(keys[:200], 1))
    for step in range(30):
        # Each round: one key added, one changed, one removed; then every key read back.
        trie[keys[200 + step]] = rlp.encode(step + 2)
        trie[keys[step]] = rlp.encode(step + 1000)
        del trie[keys[100 + step]]
        wanted = keys[step * 5 : step * 5 + 250]
        found = read(trie.root_hash, wanted, store.fetch)
        assert {k: found.get(k, b"") for k in wanted} == {k: trie.get(k) for k in wanted}
