"""The contract's views decoded from storage words (a fake word store; the real chain's
answers are compared with the EVM's in tests/integration/test_ledger_state_machine.py)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from proml_cli.ledger import VersionRef
from proml_cli.ledger import _layout as layout
from proml_cli.ledger._client import name32
from proml_cli.ledger._storage import StorageError


class Storage:
    """A contract's storage as a dict of slot to word; counts the slots read."""

    def __init__(self) -> None:
        self.slots: dict[bytes, int] = {}
        self.read: list[bytes] = []

    def __call__(self, slots: Sequence[bytes]) -> list[int]:
        self.read.extend(slots)
        return [self.slots.get(s, 0) for s in slots]

    def array(self, slot: bytes, items: Sequence[int]) -> None:
        self.slots[slot] = len(items)
        for at, item in zip(layout.array_items(slot, len(items)), items, strict=True):
            self.slots[at] = item


def _n(text: str) -> int:
    return int.from_bytes(name32(text), "big")


def _w(number: int) -> bytes:
    return number.to_bytes(32, "big")


def _kind_storage() -> Storage:
    """Roles a, b, c; kind ``model`` (index 1): states new, good, bad; initial new; register
    roles a, c; consumable good; transitions approve (new -> good, roles b) and reject
    (new, good -> bad, roles a, b); in use."""
    s = Storage()
    s.array(_w(layout.ROLE_NAMES_SLOT), [_n("a"), _n("b"), _n("c")])
    s.array(_w(layout.KIND_NAMES_SLOT), [_n("model")])
    packed = 1 | (3 << 16) | (0 << 24) | (0b101 << 32) | (0b010 << 160) | (1 << 255)
    s.slots[layout.mapping_slot(name32("model"), layout.KINDS_SLOT)] = packed
    s.array(layout.mapping_slot(_w(1), layout.KIND_STATES_SLOT), [_n("new"), _n("good"), _n("bad")])
    s.array(layout.mapping_slot(_w(1), layout.KIND_TRANSITIONS_SLOT), [_n("approve"), _n("reject")])
    inner = layout.mapping_slot(_w(1), layout.TRANSITIONS_SLOT)
    s.slots[layout.mapping_slot(name32("approve"), inner)] = 0b001 | (1 << 64) | (0b010 << 80)
    s.slots[layout.mapping_slot(name32("reject"), inner)] = 0b011 | (2 << 64) | (0b011 << 80)
    return s


def test_kind_decodes_every_field() -> None:
    found = layout.kind(_kind_storage(), name32("model"))
    assert found is not None
    assert found.states == ("new", "good", "bad")
    assert found.initial == "new"
    assert found.register == ("a", "c")
    assert found.consumable == ("good",)
    assert found.in_use
    approve, reject = found.transitions["approve"], found.transitions["reject"]
    assert (approve.sources, approve.target, approve.roles) == (("new",), "good", ("b",))
    assert (reject.sources, reject.target, reject.roles) == (("new", "good"), "bad", ("a", "b"))


def test_unknown_kind_and_version_are_none_after_one_read() -> None:
    s = _kind_storage()
    assert layout.kind(s, name32("other")) is None
    assert layout.version(s, VersionRef("m", "0" * 64), b"\1" * 32) is None
    assert len(s.read) == 2


def test_names() -> None:
    s = _kind_storage()
    assert layout.role_names(s) == ("a", "b", "c")
    assert layout.kind_names(s) == ("model",)
    assert layout.role_names(Storage()) == ()


def test_roles_of_an_account_and_the_kind_of_an_artefact() -> None:
    s = _kind_storage()
    account = bytes.fromhex("11" * 20)
    s.slots[layout.mapping_slot(account.rjust(32, b"\0"), layout.ROLES_OF_SLOT)] = 0b110
    s.slots[layout.mapping_slot(name32("m"), layout.ARTEFACTS_SLOT)] = 1 | (3 << 16)
    assert layout.roles_of(s, account) == ("b", "c")
    assert layout.roles_of(s, bytes(20)) == ()
    assert layout.artefact_kind(s, name32("m")) == "model"
    assert layout.artefact_kind(s, name32("unbound")) == ""
    s.slots[layout.mapping_slot(name32("m"), layout.ARTEFACTS_SLOT)] = 2
    with pytest.raises(StorageError, match="kind 2"):
        layout.artefact_kind(s, name32("m"))


def test_version_decodes_kind_state_steps_and_head() -> None:
    s = _kind_storage()
    key = b"\7" * 32
    head = int.from_bytes(b"\xab" * 24, "big") << 64
    s.slots[layout.mapping_slot(key, layout.VERSIONS_SLOT)] = head | (5 << 24) | (2 << 16) | 1
    found = layout.version(s, VersionRef("m", "0" * 64), key)
    assert found is not None
    assert (found.kind, found.state, found.steps) == ("model", "bad", 5)
    assert found.head == "0x" + "ab" * 24 + "00" * 8


@pytest.mark.parametrize(
    ("slot", "value", "message"),
    [
        (_w(layout.ROLE_NAMES_SLOT), layout.MAX_ROLES + 1, "roles"),
        (layout.mapping_slot(_w(1), layout.KIND_STATES_SLOT), layout.MAX_STATES + 1, "states"),
    ],
)
def test_lengths_beyond_the_bounds_are_damage(slot: bytes, value: int, message: str) -> None:
    s = _kind_storage()
    s.slots[slot] = value
    with pytest.raises(StorageError, match=message):
        layout.kind(s, name32("model"))


def test_a_version_naming_a_missing_state_is_damage() -> None:
    s = _kind_storage()
    key = b"\7" * 32
    s.slots[layout.mapping_slot(key, layout.VERSIONS_SLOT)] = (3 << 16) | 1  # state 3 of 3
    with pytest.raises(StorageError, match="not in storage"):
        layout.version(s, VersionRef("m", "0" * 64), key)


def test_a_transition_without_its_rule_is_damage() -> None:
    s = _kind_storage()
    inner = layout.mapping_slot(_w(1), layout.TRANSITIONS_SLOT)
    del s.slots[layout.mapping_slot(name32("reject"), inner)]
    with pytest.raises(StorageError, match="reject"):
        layout.kind(s, name32("model"))
