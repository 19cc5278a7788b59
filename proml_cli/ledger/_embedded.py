"""The embedded chain: py-evm (through web3's tester backend) persisted in one SQLite file.

Why SQLite under py-evm rather than replaying transactions or pickling state:

* py-evm keeps every trie node, block and receipt in a plain key-value store. Backing that store
  with a SQLite table makes loading O(1) in the chain's length: opening reads the head header
  and nothing else (replaying 10,000 transactions would take minutes; a pickle grows linearly).
* Each ledger operation runs inside one SQLite transaction that is committed only after the
  block is mined and its logs are indexed. A kill -9 at any point leaves the last committed
  chain, never a torn one: the interrupted transaction is simply absent and
  :meth:`tx_status` says so.
* An exclusive file lock, held from open to close, serialises proml processes on one project:
  a second writer waits for the first and then sees its blocks.

Contract logs are also indexed into a table as they are mined, so reading the history is one
query instead of a scan of every block.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rlp
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from filelock import FileLock, Timeout
from web3 import EthereumTesterProvider, Web3
from web3.types import Wei

from proml_cli.errors import BackendUnavailable, InputError
from proml_cli.ledger._client import ContractLedger

logger = logging.getLogger(__name__)

DB_NAME = "chain.sqlite"
LOCK_NAME = "chain.lock"
#: How long a second proml process waits for the first to release the chain (seconds);
#: ``PROML_LOCK_TIMEOUT`` overrides it.
LOCK_TIMEOUT = 600.0
#: Wei given to a local account that has none, from the embedded chain's genesis funds.
FUNDING = 10**21

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash BLOB NOT NULL,
    tx_index INTEGER NOT NULL, address TEXT NOT NULL, topics BLOB NOT NULL, data BLOB NOT NULL,
    timestamp INTEGER NOT NULL,
    PRIMARY KEY (block, log_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""


class _SqliteKV(BaseDB):
    """py-evm's key-value database interface over one SQLite table."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __getitem__(self, key: bytes) -> bytes:
        row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def __delitem__(self, key: bytes) -> None:
        cur = self._conn.execute("DELETE FROM kv WHERE key = ?", (key,))
        if cur.rowcount == 0:
            raise KeyError(key)

    def _exists(self, key: bytes) -> bool:
        row = self._conn.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone()
        return row is not None


class EmbeddedLedger(ContractLedger):
    """The ledger on the in-process chain; see the module docstring for the persistence model."""

    _revert_errors = (*ContractLedger._revert_errors, TransactionFailed)

    def __init__(self, state_dir: Path, signer: Any, address: str | None) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(state_dir / LOCK_NAME))
        try:
            self._lock.acquire(timeout=_lock_timeout())
        except Timeout as exc:
            raise BackendUnavailable(
                f"the embedded chain in {state_dir} is locked by another process"
            ) from exc
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = _connect(state_dir / DB_NAME)
            self._conn.execute("BEGIN IMMEDIATE")
            self._tester = _open_tester(self._conn)
            super().__init__(Web3(EthereumTesterProvider(self._tester)), signer, address)
            self._commit()
        except BaseException:
            self.close()
            raise

    def _prepare_signer(self, signer: Any) -> None:
        # A local account starts with nothing: give it gas money from the genesis funds.
        w3 = self._w3
        if w3.eth.get_balance(signer.address) >= FUNDING // 10:
            return
        faucet = self._tester.get_accounts()[0]
        tx_hash = w3.eth.send_transaction(
            {"from": faucet, "to": signer.address, "value": Wei(FUNDING)}
        )
        w3.eth.wait_for_transaction_receipt(tx_hash)
        if self._conn is not None and not self._is_view:
            self._commit()

    def _supports_tip(self) -> bool:
        # eth-tester has no eth_maxPriorityFeePerGas; a zero tip is mined just the same.
        return False

    def _wait(self, tx_hash: Any) -> Any:
        # Transactions are mined as they are sent: the receipt is there already.
        return self._w3.eth.get_transaction_receipt(tx_hash)

    def _after_receipt(self, receipt: Any) -> None:
        assert self._conn is not None  # noqa: S101 - open while the ledger is
        # The block's time is stored beside its logs: reading history needs no block lookups.
        stamp = self._block_time(int(receipt["blockNumber"])) if receipt["logs"] else 0
        rows = [_row(log, stamp) for log in receipt["logs"]]
        self._conn.executemany("INSERT OR REPLACE INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self._commit()

    def _commit(self) -> None:
        assert self._conn is not None  # noqa: S101 - open while the ledger is
        self._conn.execute("COMMIT")
        self._conn.execute("BEGIN IMMEDIATE")

    def _logs(self, from_block: int) -> list[dict[str, Any]]:
        assert self._conn is not None  # noqa: S101 - open while the ledger is
        cur = self._conn.execute(
            "SELECT block, log_index, tx_hash, tx_index, address, topics, data, timestamp "
            "FROM logs WHERE block >= ? AND address = ? ORDER BY block, log_index",
            (from_block, self._contract.address),
        )
        return [
            {
                "blockNumber": block,
                "logIndex": log_index,
                "transactionHash": tx_hash,
                "transactionIndex": tx_index,
                "address": address,
                "topics": [topics[i : i + 32] for i in range(0, len(topics), 32)],
                "data": data,
                "blockHash": b"\0" * 32,
                "timestamp": timestamp,
            }
            for block, log_index, tx_hash, tx_index, address, topics, data, timestamp in cur
        ]

    def index_problems(self) -> list[str]:
        """Compare the event index (table ``logs``) with the logs in the chain's own receipts.

        The index is a copy made as blocks are mined; the receipts are part of the chain (each
        block's receipts root commits to them). This reads every block's receipts, so it costs
        O(transactions): a check for ``fsck``-like tools, not for every command (those compare
        each version with contract storage instead, see :mod:`proml_cli.history`).

        Returns:
            One line per row missing from, added to or changed in the index (empty: intact).
        """
        expected = {row[:2]: row for row in self._receipt_rows()}
        actual = {row[:2]: row for row in self._index_rows()}
        problems = []
        for key in sorted(expected.keys() - actual.keys()):
            problems.append(f"block {key[0]} log {key[1]}: missing from the index")
        for key in sorted(actual.keys() - expected.keys()):
            problems.append(f"block {key[0]} log {key[1]}: in the index, not in the chain")
        for key in sorted(expected.keys() & actual.keys()):
            if expected[key] != actual[key]:
                problems.append(f"block {key[0]} log {key[1]}: differs from the chain's receipt")
        return problems

    def rebuild_index(self) -> int:
        """Rewrite the event index from the chain's receipts; return the number of rows."""
        assert self._conn is not None  # noqa: S101 - open while the ledger is
        rows = self._receipt_rows()
        self._conn.execute("DELETE FROM logs")
        self._conn.executemany("INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self._commit()
        return len(rows)

    def _receipt_rows(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        w3 = self._w3
        for number in range(int(w3.eth.block_number) + 1):
            block = w3.eth.get_block(number)
            for tx_hash in block["transactions"]:
                receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
                stamp = int(block["timestamp"])
                rows.extend(_row(log, stamp) for log in receipt["logs"])
        return rows

    def _index_rows(self) -> list[tuple[Any, ...]]:
        assert self._conn is not None  # noqa: S101 - open while the ledger is
        cur = self._conn.execute(
            "SELECT block, log_index, tx_hash, tx_index, address, topics, data, timestamp "
            "FROM logs ORDER BY block, log_index"
        )
        return [(b, i, bytes(h), t, a, bytes(tp), bytes(d), ts) for b, i, h, t, a, tp, d, ts in cur]

    # -- raw chain data, straight from py-evm's database (no JSON round trip)

    def head_number(self) -> int:
        """The canonical head's number."""
        return int(self._tester.backend.chain.get_canonical_head().block_number)

    def raw_header(self, number: int) -> bytes:
        """Block ``number``'s RLP header."""
        header = self._tester.backend.chain.get_canonical_block_header_by_number(number)
        return bytes(rlp.encode(header))

    def raw_block(self, number: int) -> tuple[bytes, list[bytes], list[bytes]]:
        """Block ``number``: RLP header, transactions and receipts, as its tries hold them."""
        chain = self._tester.backend.chain
        header = chain.get_canonical_block_header_by_number(number)
        db = chain.chaindb.db
        txs = _trie_values(db, header.transaction_root)
        receipts = _trie_values(db, header.receipt_root)
        return bytes(rlp.encode(header)), txs, receipts

    def state_proof(
        self, slots: Sequence[bytes], number: int
    ) -> tuple[list[bytes], list[list[bytes]]]:
        """What ``eth_getProof`` answers, from the state trie in py-evm's database."""
        from eth_utils.crypto import keccak
        from trie.hexary import HexaryTrie

        chain = self._tester.backend.chain
        header = chain.get_canonical_block_header_by_number(number)
        db = chain.chaindb.db
        address = bytes.fromhex(self.address.removeprefix("0x"))
        state = HexaryTrie(db, header.state_root)
        account_nodes = state.get_proof(bytes(keccak(address)))  # type: ignore[no-untyped-call]
        account = rlp.decode(state.get(bytes(keccak(address))))
        storage = HexaryTrie(db, bytes(account[2]))
        proofs = []
        for slot in slots:
            nodes = storage.get_proof(bytes(keccak(slot)))  # type: ignore[no-untyped-call]
            proofs.append([bytes(rlp.encode(n)) for n in nodes])
        return [bytes(rlp.encode(n)) for n in account_nodes], proofs

    def close(self) -> None:
        """Roll back anything uncommitted, close the database and release the lock."""
        if getattr(self, "_is_view", False):
            return
        if self._conn is not None:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._conn.close()
            self._conn = None
        if self._lock.is_locked:
            self._lock.release()


def _row(log: Any, stamp: int) -> tuple[Any, ...]:
    """A receipt's log as a row of the event index."""
    return (
        int(log["blockNumber"]),
        int(log["logIndex"]),
        bytes(log["transactionHash"]),
        int(log["transactionIndex"]),
        str(log["address"]),
        b"".join(bytes(t) for t in log["topics"]),
        bytes(log["data"]),
        stamp,
    )


def _trie_values(db: Any, root: bytes) -> list[bytes]:
    """The values of a block's transactions or receipts trie (keys rlp(0), rlp(1), ...)."""
    from trie.hexary import HexaryTrie

    trie = HexaryTrie(db, root)
    values: list[bytes] = []
    while True:
        value = trie.get(rlp.encode(len(values)))
        if not value:
            return values
        values.append(bytes(value))


def _lock_timeout() -> float:
    raw = os.environ.get("PROML_LOCK_TIMEOUT")
    if raw is None:
        return LOCK_TIMEOUT
    try:
        return max(0.0, float(raw))
    except ValueError as exc:
        raise InputError(f"PROML_LOCK_TIMEOUT is not a number of seconds: {raw!r}") from exc


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=60.0)
    # WAL + synchronous=FULL: a committed block survives power loss; readers never see a torn one.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(_SCHEMA)
    path.chmod(0o600)
    return conn


def _open_tester(conn: sqlite3.Connection) -> EthereumTester:
    """An EthereumTester whose py-evm chain lives in ``conn`` (created at genesis if empty)."""
    backend = PyEVMBackend()
    chain_class = type(backend.chain)
    base_db = AtomicDB(_SqliteKV(conn))
    row = conn.execute("SELECT value FROM meta WHERE key = 'genesis'").fetchone()
    if row is None:
        genesis_params = PyEVMBackend.generate_genesis_params()
        genesis_state = PyEVMBackend.generate_genesis_state()
        chain = chain_class.from_genesis(base_db, genesis_params, genesis_state)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('genesis', ?)",
            (chain.get_canonical_block_header_by_number(0).hash.hex(),),
        )
    else:
        chain = chain_class(base_db)
    backend.chain = chain
    return EthereumTester(backend=backend)


def open_embedded(state_dir: Path, *, signer: Any, address: str | None) -> EmbeddedLedger:
    """Open (and lock) the embedded chain under ``state_dir``; deploy when ``address`` is None."""
    return EmbeddedLedger(state_dir, signer, address)
