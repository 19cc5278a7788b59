"""An attacker's rewrite of the embedded chain's state: a version's storage word set by hand.

The embedded chain is a local database with no consensus: anyone who can write ``.proml/`` can
append a block of their own making whose state root commits to storage the contract never
wrote. :func:`append_block_with_state` does exactly that, with py-evm's own trie and header
code: an empty block (no transactions, no receipts, no logs) after the head, identical to it
but for its state root, in which one version's word has another state.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import rlp
from eth.constants import BLANK_ROOT_HASH
from eth.db.schema import SchemaV1
from trie import HexaryTrie

from proml_cli.ledger import VersionRef
from proml_cli.ledger._client import version_key
from proml_cli.ledger._embedded import _open_tester
from proml_cli.ledger._layout import VERSIONS_SLOT, mapping_slot
from proml_cli.ledger._storage import keccak

#: Where the version word keeps its state number (see the contract's ``_versions``).
STATE_SHIFT = 16


def append_block_with_state(
    root: Path, artefact: str, path: str, state: int, ledger: str, *, move_head_only: bool = False
) -> None:
    """Append an empty block whose state gives (``artefact``, sha256 of ``path``) ``state``.

    ``move_head_only``: instead, a copy of the head block with that state, which only the
    chain's head pointer names (the block stored at its height stays the real one).
    """
    digest = hashlib.sha256((root / path).read_bytes()).hexdigest()
    slot = mapping_slot(version_key(VersionRef(artefact, digest)), VERSIONS_SLOT)
    conn = sqlite3.connect(root / ".proml" / "chain" / "chain.sqlite", isolation_level=None)
    try:
        chain = _open_tester(conn).backend.chain
        db = chain.chaindb.db
        head = chain.get_canonical_head()
        accounts = HexaryTrie(db, head.state_root)
        account_key = keccak(bytes.fromhex(ledger.removeprefix("0x")))
        account = rlp.decode(accounts[account_key])
        storage = HexaryTrie(db, account[2])
        word = int.from_bytes(rlp.decode(storage[keccak(slot)]), "big")
        word = (word & ~(0xFF << STATE_SHIFT)) | (state << STATE_SHIFT)
        storage[keccak(slot)] = rlp.encode(word.to_bytes(32, "big").lstrip(b"\0"))
        account[2] = storage.root_hash
        accounts[account_key] = rlp.encode(account)
        if move_head_only:
            forged = head.copy(state_root=accounts.root_hash)
            db[forged.hash] = rlp.encode(forged)
            db[SchemaV1.make_canonical_head_hash_lookup_key()] = forged.hash
            return
        child = head.copy(
            parent_hash=head.hash,
            block_number=head.block_number + 1,
            timestamp=head.timestamp + 1,
            state_root=accounts.root_hash,
            transaction_root=BLANK_ROOT_HASH,
            receipt_root=BLANK_ROOT_HASH,
            gas_used=0,
            bloom=0,
        )
        chain.chaindb.persist_header(child)
    finally:
        conn.close()
