"""The ledger contract's views, answered from its storage words instead of by the EVM.

``kindOf``, ``transitionOf``, ``versionOf``, ``kindNames`` and ``roleNames`` only read storage
and decode it. Given a reader of storage words (one that checks every trie node against the
head's state root, see :mod:`proml_cli.ledger._storage`), this module asks for the same words
and decodes them the same way, without interpreting the contract's code: a handful of trie
walks instead of one EVM run per view, each answer exactly what the view returns.

The slot numbers and packings are those of ``contracts/ProMLLedger.sol`` (Solidity's storage
layout: a mapping's value at keccak256(key ‖ slot), a dynamic array's length at its slot and
its items from keccak256(slot) on). The integration tests compare every answer here with the
contract's own view on a real chain, so a change of layout fails them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from proml_cli.ledger import Kind, Transition, VersionRef, VersionState
from proml_cli.ledger._storage import StorageError, keccak

#: ``words(slots)``: the storage words at these 32-byte slots (0 where unset).
Words = Callable[[Sequence[bytes]], list[int]]

# Slots of the contract's state variables, in declaration order (constants take none).
ROLE_NAMES_SLOT = 3
ROLES_OF_SLOT = 4
KINDS_SLOT = 5
KIND_NAMES_SLOT = 6
KIND_STATES_SLOT = 7
KIND_TRANSITIONS_SLOT = 8
TRANSITIONS_SLOT = 9
ARTEFACTS_SLOT = 10
VERSIONS_SLOT = 12

#: The contract's own bounds (MAX_ROLES, MAX_STATES, uint16 kind indexes); storage claiming
#: longer arrays is damage, never a reason to read millions of slots.
MAX_ROLES = 128
MAX_STATES = 64
MAX_KINDS = (1 << 16) - 2
MAX_TRANSITIONS = 1 << 16

_USED = 1 << 255
_ROLE_MASK = (1 << 128) - 1
_STATE_MASK = (1 << 64) - 1
_STEPS_MASK = (1 << 40) - 1
_HEAD_MASK = ((1 << 256) - 1) ^ ((1 << 64) - 1)


def _word(number: int) -> bytes:
    return number.to_bytes(32, "big")


def _text(word: int) -> str:
    """A bytes32 name as text (as ``text32`` decodes the view's answer)."""
    return _word(word).rstrip(b"\0").decode("ascii", errors="replace")


@lru_cache(maxsize=1 << 16)
def mapping_slot(key: bytes, slot: int | bytes) -> bytes:
    """The slot of ``key`` (32 bytes) in the mapping at ``slot``.

    Kept: a history reads the same versions' slots again and again.
    """
    return keccak(key + (slot if isinstance(slot, bytes) else _word(slot)))


def array_items(slot: bytes, count: int) -> list[bytes]:
    """The slots of the first ``count`` items of the dynamic array at ``slot``."""
    first = int.from_bytes(keccak(slot), "big")
    return [_word(first + i) for i in range(count)]


def _length(number: int, limit: int, what: str) -> int:
    if number > limit:
        raise StorageError(f"the contract's storage claims {number} {what} (at most {limit})")
    return number


def _array(words: Words, slot: bytes, limit: int, what: str) -> list[int]:
    """A dynamic array of words: its length, then its items."""
    (length,) = words([slot])
    return words(array_items(slot, _length(length, limit, what))) if length else []


def role_names(words: Words) -> tuple[str, ...]:
    """What ``roleNames()`` returns."""
    names = _array(words, _word(ROLE_NAMES_SLOT), MAX_ROLES, "roles")
    return tuple(_text(n) for n in names)


def kind_names(words: Words) -> tuple[str, ...]:
    """What ``kindNames()`` returns."""
    names = _array(words, _word(KIND_NAMES_SLOT), MAX_KINDS, "kinds")
    return tuple(_text(n) for n in names)


def roles_of(words: Words, account: bytes) -> tuple[str, ...]:
    """What ``rolesOf(account)`` returns (``account``: the 20-byte address)."""
    (mask,) = words([mapping_slot(account.rjust(32, b"\0"), ROLES_OF_SLOT)])
    return _masked(mask, role_names(words)) if mask else ()


def artefact_kind(words: Words, name: bytes) -> str:
    """What ``artefactKind(name)`` returns, as text ("" when the artefact is unbound)."""
    (packed,) = words([mapping_slot(name, ARTEFACTS_SLOT)])
    if packed == 0:
        return ""
    index1 = packed & 0xFFFF
    names_slot = _word(KIND_NAMES_SLOT)
    (kinds,) = words([names_slot])
    if not 0 < index1 <= kinds:
        raise StorageError(f"artefact word names kind {index1}: not in storage")
    (kind_name,) = words([array_items(names_slot, index1)[-1]])
    return _text(kind_name)


def _masked(mask: int, names: Sequence[str]) -> tuple[str, ...]:
    """The names whose bit is set in ``mask``, in order (the contract's ``_namesOf`` loop)."""
    return tuple(name for i, name in enumerate(names) if (mask >> i) & 1)


def kind(words: Words, name: bytes) -> Kind | None:
    """What ``kindOf`` and ``transitionOf`` tell of kind ``name`` (bytes32); None if unknown."""
    (packed,) = words([mapping_slot(name, KINDS_SLOT)])
    if packed == 0:
        return None
    index1 = _word(packed & 0xFFFF)
    states_slot = mapping_slot(index1, KIND_STATES_SLOT)
    moves_slot = mapping_slot(index1, KIND_TRANSITIONS_SLOT)
    state_count, move_count, role_count = words([states_slot, moves_slot, _word(ROLE_NAMES_SLOT)])
    state_count = _length(state_count, MAX_STATES, "states")
    move_count = _length(move_count, MAX_TRANSITIONS, "transitions")
    role_count = _length(role_count, MAX_ROLES, "roles")
    found = words(
        [
            *array_items(states_slot, state_count),
            *array_items(moves_slot, move_count),
            *array_items(_word(ROLE_NAMES_SLOT), role_count),
        ]
    )
    states = [_text(s) for s in found[:state_count]]
    moves = found[state_count : state_count + move_count]
    roles = [_text(r) for r in found[state_count + move_count :]]
    inner = mapping_slot(index1, TRANSITIONS_SLOT)
    rules = words([mapping_slot(_word(m), inner) for m in moves])
    transitions = []
    for move, rule in zip(moves, rules, strict=True):
        if rule == 0:
            raise StorageError(f"kind transition {_text(move)!r} has no rule in storage")
        transitions.append(
            Transition(
                _text(move),
                _masked(rule & _STATE_MASK, states),
                _state(states, (rule >> 64) & 0xFF),
                _masked((rule >> 80) & _ROLE_MASK, roles),
            )
        )
    initial = _state(states, (packed >> 24) & 0xFF)
    return Kind.of(
        _text(int.from_bytes(name, "big")),
        tuple(states),
        initial,
        _masked((packed >> 32) & _ROLE_MASK, roles),
        transitions,
        _masked((packed >> 160) & _STATE_MASK, states),
        in_use=bool(packed & _USED),
    )


def _state(states: Sequence[str], index: int) -> str:
    if index >= len(states):
        raise StorageError(f"a state number {index} beyond the kind's {len(states)} states")
    return states[index]


def version(words: Words, ref: VersionRef, key: bytes) -> VersionState | None:
    """What ``versionOf`` tells of ``ref`` (whose version key is ``key``); None if unknown."""
    (packed,) = words([mapping_slot(key, VERSIONS_SLOT)])
    if packed == 0:
        return None
    index1 = packed & 0xFFFF
    names_slot = _word(KIND_NAMES_SLOT)
    states_slot = mapping_slot(_word(index1), KIND_STATES_SLOT)
    state = (packed >> 16) & 0xFF
    kinds, states = words([names_slot, states_slot])
    if not 0 < index1 <= kinds or state >= states:
        raise StorageError(f"version word names kind {index1} state {state}: not in storage")
    kind_name, state_name = words(
        [array_items(names_slot, index1)[-1], array_items(states_slot, state + 1)[-1]]
    )
    return VersionState(
        ref.artefact,
        ref.digest,
        _text(kind_name),
        _text(state_name),
        steps=(packed >> 24) & _STEPS_MASK,
        head="0x" + _word(packed & _HEAD_MASK).hex(),
    )
