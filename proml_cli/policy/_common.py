"""Constants and message helpers shared by the policy's stages."""

from __future__ import annotations

import importlib.resources
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable


SUPPORTED_VERSION = 1
# Names travel to the contract as bytes32, state sets as a 64-bit mask and role ids as uint8.
NAME_MAX_BYTES = 32
MAX_STATES = 64
MAX_ROLES = 128  # the ledger contract keeps role membership in a 128-bit mask
# A policy is a hand-written file of a few KiB; the caps bound what a hostile file can cost.
MAX_POLICY_BYTES = 1 << 20
_MAX_NODES = 100_000

DEFAULT_ROLES: tuple[str, ...] = ("data-admin", "developer", "verifier", "auditor", "operator")

TEMPLATE_PATH: Traversable = importlib.resources.files("proml_cli") / "templates" / "proml.yaml"
_TEMPLATE_PROJECT = "my-project"
#: Seconds to wait for a network chain's or IPFS node's answer (``chain.timeout`` /
#: ``storage.timeout``): a hung backend then fails a command with exit 3 within 30 s (the
#: one wait plus start-up, measured at 34-37 s with a 30 s wait on 2 busy cores).
DEFAULT_TIMEOUT = 20.0
MAX_TIMEOUT = 3600.0

_NAME_CHARS = re.compile(r"[a-z0-9._-]*")
_URL_SCHEMES_CHAIN = ("http", "https", "ws", "wss")
_URL_SCHEMES_IPFS = ("http", "https")
_LIST_LIMIT = 12

_KeyPath: TypeAlias = tuple[str | int, ...]
_Mark: TypeAlias = tuple[int, int]

_TAG = "tag:yaml.org,2002:"
_STR_TAG = _TAG + "str"
_MAP_TAG = _TAG + "map"
_SEQ_TAG = _TAG + "seq"
_MERGE_TAG = _TAG + "merge"
_TIMESTAMP_TAG = _TAG + "timestamp"
_TYPED_SCALAR_TAGS = frozenset(_TAG + t for t in ("null", "bool", "int", "float"))


# --------------------------------------------------------------------------- text helpers


def _dotted(path: _KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _q(text: str, limit: int = 60) -> str:
    """Quote user text for a message: one line, escaped, shortened."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def _one_line(text: str) -> str:
    """Escape anything that could break the one-line message (newlines, other controls)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _listing(names: Iterable[str]) -> str:
    items = list(names)
    shown = ", ".join(items[:_LIST_LIMIT])
    if len(items) > _LIST_LIMIT:
        shown += f", ... ({len(items) - _LIST_LIMIT} more)"
    return shown


def _describe(value: object, raw: str | None) -> str:
    """Describe a YAML value for an "expected X, got Y" message."""
    if value is None:
        return "null" if raw else "an empty value"
    if isinstance(value, bool):
        return f"the boolean {raw or str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {raw or value}"
    if isinstance(value, float):
        return f"the number {raw or value}"
    if isinstance(value, str):
        return f"the string {_q(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
