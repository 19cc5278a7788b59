"""The content digest: one type owns the ``sha256:`` form records and reports use.

The ledger and the content store speak bare hex; records, ``--json`` output and the public API
speak ``sha256:<hex>``. :class:`Digest` converts between the two, so no other code adds or
strips the prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proml_cli.errors import InputError

PREFIX = "sha256:"
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, order=True)
class Digest:
    """A SHA-256 content digest.

    Attributes:
        hex: the 64 lowercase hex digits (the ledger's form).
    """

    hex: str

    def __post_init__(self) -> None:
        if not _HEX.fullmatch(self.hex):
            raise InputError(f"not a sha256 digest: {self.hex!r}")

    @classmethod
    def parse(cls, text: str) -> Digest:
        """A digest from ``sha256:<hex>`` or bare hex.

        Raises:
            InputError: not 64 hex digits after the optional prefix.
        """
        return cls(text.removeprefix(PREFIX).lower())

    @property
    def prefixed(self) -> str:
        """The ``sha256:<hex>`` form records and reports hold."""
        return PREFIX + self.hex

    @property
    def short(self) -> str:
        """``sha256:`` and the first 12 hex digits, for messages."""
        return PREFIX + self.hex[:12]

    def __str__(self) -> str:
        return self.prefixed


def prefixed(hex_digest: str) -> str:
    """``sha256:<hex>`` for a bare hex digest (no validation: for output of trusted values)."""
    return PREFIX + hex_digest


def bare(text: str) -> str:
    """The hex of ``sha256:<hex>`` (or of bare hex), without validation."""
    return text.removeprefix(PREFIX)
