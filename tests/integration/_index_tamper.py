"""What an attacker does to the history index in ``.proml/chain/chain.sqlite``, for the tests
that check it is never believed (cold processes and a warm node alike)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any


def index_db(root: Path) -> sqlite3.Connection:
    """The project's chain database, opened for editing (autocommit)."""
    return sqlite3.connect(root / ".proml" / "chain" / "chain.sqlite", isolation_level=None)


def index_steps(root: Path, artefact: str) -> list[tuple[Any, ...]]:
    """The history index's step rows of ``artefact``, in chain order."""
    with index_db(root) as db:
        return db.execute(
            "SELECT * FROM hist_steps WHERE artefact = ? ORDER BY block, log_index", (artefact,)
        ).fetchall()


def insert_forged_version(root: Path, artefact: str, path: Path) -> str:
    """Insert rows for a version of ``artefact`` with ``path``'s bytes that was never recorded:
    a copy of its first registration and transition, moved to a later block. Its digest (hex).
    """
    from eth_utils.crypto import keccak

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    vkey = bytes(keccak(artefact.encode().ljust(32, b"\0") + bytes.fromhex(digest)))
    register, move = index_steps(root, artefact)[:2]
    with index_db(root) as db:
        for offset, row in enumerate((register, move)):
            forged = list(row)
            forged[0], forged[1], forged[4], forged[6] = 10_000, offset, vkey, digest
            db.execute(f"INSERT INTO hist_steps VALUES ({','.join('?' * len(forged))})", forged)  # noqa: S608
    return digest
