"""What a process that keeps results between reads (the node) reuses, and what it asks again.

Kept answers are pure functions of inputs compared whole: the last decoded events only while
every input is equal, a record's step once its bytes were read and checked by the store, never
a record the store could not give (it may be pulled later). A process that keeps nothing
computes every answer afresh.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proml_cli.errors import ContentNotFoundError
from proml_cli.history import _record_step
from proml_cli.ledger import _storage
from proml_cli.record import RECORD_TYPE_RUN, canonical_bytes

CID = "bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


class _Store:
    """A content store that counts reads and gives what it holds (the real one checks CIDs)."""

    def __init__(self) -> None:
        self.held: dict[str, bytes] = {}
        self.reads = 0

    def cat(self, cid: str) -> bytes:
        self.reads += 1
        if cid not in self.held:
            raise ContentNotFoundError(f"{cid} is not in the store")
        return self.held[cid]


@pytest.fixture
def kept() -> Iterator[None]:
    _storage.keep_across_reads()
    yield
    _storage.keep_across_reads(False)


def test_a_record_s_step_is_read_once_and_a_missing_one_asked_again(kept: None) -> None:
    store = _Store()
    assert _record_step(store, CID) is None
    assert _record_step(store, CID) is None
    assert store.reads == 2  # not in the store: asked again, it may be pulled meanwhile
    store.held[CID] = canonical_bytes({"type": RECORD_TYPE_RUN, "step": "train"})
    assert _record_step(store, CID) == "step train"
    assert _record_step(store, CID) == "step train"
    assert store.reads == 3


def test_bytes_that_are_no_record_are_settled_once_read(kept: None) -> None:
    store = _Store()
    store.held[CID] = b"not a record"
    assert _record_step(store, CID) is None
    assert _record_step(store, CID) is None
    assert store.reads == 1


def test_nothing_is_kept_unless_asked() -> None:
    store = _Store()
    store.held[CID] = canonical_bytes({"type": RECORD_TYPE_RUN, "step": "train"})
    assert _record_step(store, CID) == "step train"
    assert _record_step(store, CID) == "step train"
    assert store.reads == 2
    calls: list[int] = []
    assert _storage.remembered_last("x", [1], lambda: calls.append(1) or [1]) == [1]
    assert _storage.remembered_last("x", [1], lambda: calls.append(1) or [1]) == [1]
    assert len(calls) == 2


def test_the_last_answer_is_reused_only_for_equal_inputs(kept: None) -> None:
    calls: list[tuple[int, ...]] = []

    def answer(rows: tuple[int, ...]) -> list[int]:
        calls.append(rows)
        return list(rows)

    first = _storage.remembered_last("rows", (1, 2), lambda: answer((1, 2)))
    again = _storage.remembered_last("rows", (1, 2), lambda: answer((1, 2)))
    assert first == again == [1, 2]
    again.append(99)  # a caller's list is its own
    assert _storage.remembered_last("rows", (1, 2), lambda: answer((1, 2))) == [1, 2]
    assert _storage.remembered_last("rows", (1, 3), lambda: answer((1, 3))) == [1, 3]
    assert calls == [(1, 2), (1, 3)]
