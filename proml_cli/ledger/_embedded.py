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
query instead of a scan of every block; triggers count every change made to that table, so the
decoded history index built from it (:mod:`proml_cli.ledger._index`, tables ``hist_*`` of the
same file) notices rows edited, removed or inserted behind its back and is rebuilt.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import rlp
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from eth_typing import ChecksumAddress
from filelock import FileLock, Timeout
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.types import Wei

from proml_cli.errors import BackendUnavailable, InputError
from proml_cli.ledger import (
    LOCK_TIMEOUT,
    ChainEvent,
    Kind,
    VersionRef,
    VersionState,
    _layout,
    _storage,
)
from proml_cli.ledger._client import ContractLedger, _address, name32, version_key
from proml_cli.ledger._index import edit_counter

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

DB_NAME = "chain.sqlite"
LOCK_NAME = "chain.lock"
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
INSERT OR IGNORE INTO meta (key, value) VALUES ('log_changes', '0');
"""
_SCHEMA += edit_counter(
    "logs", "meta", "log_changes", ("logs_inserted", "logs_updated", "logs_deleted")
)


class _SqliteKV(BaseDB):
    """py-evm's key-value database interface over one SQLite table."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None) -> None:
        self._conn = conn
        self._path = path

    def _query(self, sql: str, args: tuple[bytes, ...]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, args)
        except sqlite3.DatabaseError as exc:
            # A damaged page found mid-operation: name the file, never a traceback from py-evm.
            raise damaged_database(self._path, exc) from exc

    def __getitem__(self, key: bytes) -> bytes:
        row = self._query("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._query("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def __delitem__(self, key: bytes) -> None:
        cur = self._query("DELETE FROM kv WHERE key = ?", (key,))
        if cur.rowcount == 0:
            raise KeyError(key)

    def _exists(self, key: bytes) -> bool:
        row = self._query("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone()
        return row is not None


class EmbeddedLedger(ContractLedger):
    """The ledger on the in-process chain; see the module docstring for the persistence model."""

    _revert_errors = (*ContractLedger._revert_errors, TransactionFailed)

    def __init__(
        self, state_dir: Path, signer: Any, address: str | None, *, lock_timeout: float
    ) -> None:
        self._lock = _lock(state_dir, lock_timeout)
        self._conn: sqlite3.Connection | None = None
        # What this ledger's storage reads keep while it is open (a process that keeps reads
        # across commands, the node, uses its own instead): a view reads a few words at a
        # time, each read walking from the state root again.
        self._reads = _storage.Caches()
        self._path = state_dir / DB_NAME
        try:
            path = self._path
            # A ledger address means the project lives on this chain already: a missing or
            # empty database is damage to report, never a reason to start a new chain.
            self._conn = _connect(path, must_exist=address is not None, ledger=address)
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise damaged_database(path, exc) from exc
            self._tester = _open_tester(self._conn, path, must_exist=address is not None)
            self._session: _Session | None = _Session.take(self._tester)
            super().__init__(self._session.w3, signer, address)
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
        self._stamp_next_block()
        tx_hash = w3.eth.send_transaction(
            {"from": faucet, "to": signer.address, "value": Wei(FUNDING)}
        )
        w3.eth.wait_for_transaction_receipt(tx_hash)
        if self._conn is not None and not self._is_view:
            self._commit()

    def _send(self, fn: Any) -> Any:
        self._stamp_next_block()
        return super()._send(fn)

    def _gas(self, fn: Any, sender: str) -> int:
        """A dry run of ``fn`` (a refusal raises as an estimate's would); then the block's limit.

        An estimate is a binary search over the gas limit (a dozen EVM runs, 0.07 s of a write
        here); this chain's gas is the project's own faucet's and the transaction is mined at
        once, so the limit only needs to hold it. What it uses, and what its receipt says it
        used, are the same either way: the contract makes no calls that pass on a share of
        the gas left. The cap stays below what the next block may lower its limit to.
        """
        if not hasattr(fn, "call"):  # the deployment (once per project): estimated
            return super()._gas(fn, sender)
        fn.call({"from": sender})
        limit = int(self._tester.backend.chain.get_canonical_head().gas_limit)
        return limit - limit // 1024 - 1

    def _stamp_next_block(self) -> None:
        """Give the block about to be mined the time of now, not of the last one mined.

        py-evm prepares the next header (and its time) as soon as a block is mined, so a block
        sent after the process waited (a node serving commands) would carry the time the
        previous one was mined. A child's time must still exceed its parent's: blocks mined
        faster than one a second take their parent's time + 1 and run ahead of the clock (see
        the README).
        """
        chain = self._tester.backend.chain
        parent = int(chain.get_canonical_head().timestamp)
        chain.header = chain.header.copy(timestamp=max(parent + 1, _now()))

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

    def _logs(self, from_block: int, to_block: int | None = None) -> list[dict[str, Any]]:
        assert self._conn is not None  # noqa: S101 - open while the ledger is
        cur = self._query(
            "SELECT block, log_index, tx_hash, tx_index, address, topics, data, timestamp "
            "FROM logs WHERE block >= ? AND block <= ? AND address = ? ORDER BY block, log_index",
            (from_block, 2**62 if to_block is None else to_block, self._contract.address),
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

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        assert self._conn is not None  # noqa: S101 - open while the ledger is
        try:
            return self._conn.execute(sql, args)
        except sqlite3.DatabaseError as exc:
            raise damaged_database(self._path, exc) from exc

    def _index_connection(self) -> tuple[sqlite3.Connection, Any]:
        # The decoded history lives beside the event index it is built from, in the same
        # transactions: a kill -9 leaves both as they were at the last commit.
        assert self._conn is not None  # noqa: S101 - open while the ledger is
        return self._conn, self._commit

    def _index_changes(self, after_block: int) -> tuple[int, int]:
        row = self._query("SELECT value FROM meta WHERE key = 'log_changes'").fetchone()
        above = self._query("SELECT count(*) FROM logs WHERE block > ?", (after_block,)).fetchone()
        return int(row[0]) if row is not None else -1, int(above[0])

    def events_between(self, first: int, last: int) -> list[ChainEvent]:
        """The indexed events from block ``first`` on, ``last`` ignored.

        Only an edit of the event index puts rows beyond the head: they are read as before,
        so what the contract says of them is reported, not hidden.
        """
        return self._decoded(self._logs(first))

    def version_words(self, refs: Sequence[VersionRef]) -> list[int]:
        """The versions' storage words, read from the head's state.

        What ``versionWords`` returns, without interpreting the contract's loop in the EVM:
        one walk of the contract's storage trie, each node checked against its hash (see
        :mod:`proml_cli.ledger._storage`).
        """
        from proml_cli.ledger._index import _key_of

        return self.version_words_of(
            [_key_of(r.artefact, r.digest) or version_key(r) for r in refs]
        )

    def version_words_of(self, keys: Sequence[bytes]) -> list[int]:
        """:meth:`version_words` by version key (keccak256(artefact32 ‖ digest32))."""
        return self._words([_layout.mapping_slot(key, _layout.VERSIONS_SLOT) for key in keys])

    def _words(self, slots: Sequence[bytes]) -> list[int]:
        """The contract's storage words at ``slots``, at the canonical head (0 where unset).

        Read in one walk of the storage trie, each node checked against the head's state root.
        """
        return self._view(
            lambda: _storage.words(
                self._state_root(), _raw(self.address), slots, self._trie_nodes, self._reads
            )
        )

    def _view(self, read: Callable[[], _T]) -> _T:
        """``read()`` of the contract's state; storage that fails its checks is damage (exit 2)."""
        try:
            return read()
        except _storage.StorageError as exc:
            raise damaged_database(self._path, f"the contract's storage: {exc}") from exc

    def _state_root(self) -> bytes:
        return bytes(self._tester.backend.chain.get_canonical_head().state_root)

    def _contract_state(self) -> tuple[bytes, bytes]:
        """The contract's storage root and code hash at the canonical head."""
        return self._account(self.address)

    def _account(self, address: str) -> tuple[bytes, bytes]:
        """An account's storage root and code hash at the canonical head, from the state trie."""
        return self._view(
            lambda: _storage.account(
                self._state_root(), _raw(address), self._trie_nodes, self._reads
            )
        )

    def kept_state(self) -> tuple[bytes, bytes] | None:
        """The contract's storage root and code hash at the head, when this process keeps reads."""
        return self._contract_state() if _storage.keeping() else None

    def _kept(self, question: object, answer: Callable[[], Any]) -> Any:
        """``answer()``, kept by the contract's storage root and code hash where reads are kept.

        A view of the contract is a function of those two; a process that keeps nothing asks.
        """
        state = self.kept_state()
        return answer() if state is None else _storage.remembered(state, question, answer)

    # The contract's views read its storage and decode it: here they read the same words
    # from the storage trie (every node checked) instead of running the contract in the EVM,
    # which costs 5-25 ms a view; tests compare both on a real chain.

    def kind_names(self) -> tuple[str, ...]:
        """Every kind defined on-chain, in definition order (kept by storage root in a node)."""
        names: tuple[str, ...] = self._kept(
            "kind_names", lambda: self._view(lambda: _layout.kind_names(self._words))
        )
        return names

    def kind(self, name: str) -> Kind | None:
        """A kind's definition, read back from the contract (kept by storage root in a node)."""
        key = name32(name)
        found: Kind | None = self._kept(
            ("kind", name), lambda: self._view(lambda: _layout.kind(self._words, key))
        )
        return found

    def role_names(self) -> tuple[str, ...]:
        """The roles defined on-chain, in bit order (kept by storage root in a node)."""
        names: tuple[str, ...] = self._kept(
            "role_names", lambda: self._view(lambda: _layout.role_names(self._words))
        )
        return names

    def artefact_kind(self, name: str) -> str | None:
        """The kind ``name`` is bound to, or None (read from the contract's storage)."""
        key = name32(name)
        return self._view(lambda: _layout.artefact_kind(self._words, key)) or None

    def roles_of(self, account: str) -> tuple[str, ...]:
        """The roles ``account`` holds (read from the contract's storage)."""
        address = _raw(_address(account))
        return self._view(lambda: _layout.roles_of(self._words, address))

    def version(self, ref: VersionRef) -> VersionState | None:
        """A version's current state, read from the contract's storage."""
        key = version_key(ref)
        return self._view(lambda: _layout.version(self._words, ref, key))

    def _trie_nodes(self, hashes: Sequence[bytes]) -> dict[bytes, bytes]:
        """The stored trie nodes with these hashes (absent ones left out)."""
        found: dict[bytes, bytes] = {}
        for start in range(0, len(hashes), 500):
            part = tuple(hashes[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self._query(f"SELECT key, value FROM kv WHERE key IN ({marks})", part)  # noqa: S608
            found.update((bytes(k), bytes(v)) for k, v in rows)
        if len(found) < len(hashes):
            # Not written through to SQLite yet (py-evm's own batch): ask its database.
            db = self._tester.backend.chain.chaindb.db
            for key in hashes:
                if key not in found and key in db:
                    found[key] = bytes(db[key])
        return found

    def head_block(self) -> tuple[int, str, str]:
        """The canonical head's number, hash and parent's hash."""
        header = self._tester.backend.chain.get_canonical_head()
        return (
            int(header.block_number),
            "0x" + bytes(header.hash).hex(),
            "0x" + bytes(header.parent_hash).hex(),
        )

    def block_hash(self, number: int) -> str | None:
        """The hash of the canonical block ``number`` (None past the head)."""
        from eth.exceptions import HeaderNotFound

        if number < 0:
            return None
        try:
            header = self._tester.backend.chain.get_canonical_block_header_by_number(number)
        except HeaderNotFound:
            return None
        return "0x" + bytes(header.hash).hex()

    def index_problems(self) -> list[str]:
        """What is wrong with the local indexes, checked against the chain's own blocks.

        Two indexes are copies of what the chain holds: the event index (table ``logs``, made
        as blocks are mined) and the decoded history index built from it (tables ``hist_*``).
        This compares the first with the logs of every block's receipts (see
        :func:`log_index_problems`) and, when that is intact, the second with a fresh decode of
        the first. It reads every block, so it costs O(transactions): a check for ``fsck``,
        not for every command (those compare each version with contract storage instead, see
        :mod:`proml_cli.history`).

        Returns:
            One line per kind of damage (empty: both intact).

        Raises:
            ChainDatabaseError: the chain's own block data is damaged (no index can be rebuilt
                from it: restore a backup).
        """
        from proml_cli.ledger._index import HistoryIndex

        assert self._conn is not None  # noqa: S101 - open while the ledger is
        problems = log_index_problems(self._conn, self._tester.backend.chain, self._path)
        if not problems:
            problems = HistoryIndex(self._conn, self._commit).problems(self)
        return problems

    def rebuild_index(self) -> int:
        """Rewrite the event index from the chain's receipts, then the history index from it.

        Returns:
            The number of rows of the event index.

        Raises:
            ChainDatabaseError: the chain's own block data is damaged (nothing is changed).
        """
        assert self._conn is not None  # noqa: S101 - open while the ledger is
        count = rebuild_log_index(self._conn, self._tester.backend.chain, self._path)
        # Asked for, not found stale: the caller reports it, so no note.
        self.history_index(rebuild=True, is_quiet=True)
        return count

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
        address = _raw(self.address)
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
            # A damaged database may fail even to roll back; the error that found the damage
            # is the one to report, so this one is dropped.
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            self._conn.close()
            self._conn = None
        session, self._session = getattr(self, "_session", None), None
        if session is not None:
            session.give_back()
        if self._lock.is_locked:
            self._lock.release()

    def _code_hash(self, address: ChecksumAddress) -> bytes:
        # The code hash in the account's leaf of the state trie (checked against the head's
        # state root), rather than the whole code fetched through the EVM to be compared.
        return self._account(address)[1]

    def _contract_at(self, address: ChecksumAddress, abi: list[dict[str, Any]]) -> Contract:
        assert self._session is not None  # noqa: S101 - open while the ledger is
        return self._session.contract_at(address, abi)


class _Session:
    """A Web3 instance over an embedded chain, reused by the ledgers a process opens in turn.

    Building one (its provider and middleware, and the contract's classes from the ABI) costs
    8 ms, twice per `proml run`; a node serving commands opens ledgers all day. A session is
    lent to one open ledger at a time (another ledger open at once builds its own), pointed at
    that ledger's chain while lent, and at none once given back: nothing of one chain's state
    is kept in it, only the contract's classes, by address.
    """

    #: Sessions kept idle in a process.
    KEPT = 2
    _idle: ClassVar[list[_Session]] = []
    _guard = threading.Lock()

    def __init__(self) -> None:
        self.provider = EthereumTesterProvider(_template_tester())
        self.w3 = Web3(self.provider)
        self._contracts: dict[str, Contract] = {}

    @classmethod
    def take(cls, tester: EthereumTester) -> _Session:
        """An idle session (or a new one), pointed at ``tester``'s chain."""
        with cls._guard:
            session = cls._idle.pop() if cls._idle else None
        if session is None:
            session = cls()
        session.provider.ethereum_tester = tester
        return session

    def give_back(self) -> None:
        """Point the session at no project's chain and keep it for the next ledger opened."""
        self.provider.ethereum_tester = _template_tester()
        with self._guard:
            if len(self._idle) < self.KEPT:
                self._idle.append(self)

    def contract_at(self, address: ChecksumAddress, abi: list[dict[str, Any]]) -> Contract:
        """The contract object at ``address`` (built once per session)."""
        found = self._contracts.get(address)
        if found is None:
            found = self._contracts[address] = self.w3.eth.contract(address=address, abi=abi)
        return found


def _raw(address: str) -> bytes:
    """A ``0x`` address as its 20 bytes."""
    return bytes.fromhex(address.removeprefix("0x"))


def _now() -> int:
    """The wall clock, in whole seconds (a block's time)."""
    return int(time.time())


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


def replay_problems(chain: Any) -> list[str]:
    """Blocks whose header does not follow from executing them again, from genesis on.

    Every canonical block is imported, in order, into a new chain in memory that starts from a
    genesis rebuilt as proml makes it (the default genesis state, the stored genesis's time).
    py-evm checks each imported block's header against what executing its transactions gives:
    the state root (every account and storage word), the transactions and receipts roots, the
    gas used and the logs' bloom. A block appended with a state of someone's making, or a
    state root rewritten in a header, fails here though every trie node hashes correctly.
    O(transactions), about 10 ms a block: for ``fsck``.

    Returns:
        The first block that does not replay, with why (empty: every block does).
    """
    from eth.db.atomic import AtomicDB as MemoryDB

    head = chain.get_canonical_head()
    stored = chain.get_canonical_block_header_by_number(0)
    params = {**PyEVMBackend.generate_genesis_params(), "timestamp": stored.timestamp}
    replay = type(chain).from_genesis(MemoryDB(), params, PyEVMBackend.generate_genesis_state())
    if replay.get_canonical_head().hash != stored.hash:
        return ["the genesis block is not the one proml makes (its state cannot be replayed)"]
    # py-evm logs each block it refuses; the refusal is the finding, reported below.
    refusals = logging.getLogger("eth")
    level = refusals.level
    refusals.setLevel(logging.CRITICAL)
    try:
        for number in range(1, int(head.block_number) + 1):
            try:
                replay.import_block(chain.get_canonical_block_by_number(number))
            except Exception as exc:  # noqa: BLE001 - any failure to replay a block is the finding
                return [
                    f"block {number} does not follow from executing the chain again from genesis "
                    f"({type(exc).__name__}): its state or header was written outside the chain; "
                    "restore a backup"
                ]
    finally:
        refusals.setLevel(level)
    # The head the chain's state is read from must be the last block replayed, not a header
    # the head pointer was moved to.
    if replay.get_canonical_head().hash != head.hash:
        return [
            f"the chain's head (block {head.block_number}) is not the block replayed at that "
            "height: its state or header was written outside the chain; restore a backup"
        ]
    return []


def log_index_problems(conn: sqlite3.Connection, chain: Any, path: Path | None) -> list[str]:
    """Compare the event index (table ``logs``) with the logs in the chain's receipts.

    The index is a copy made as blocks are mined; the receipts are part of the chain (each
    block's header commits to them through its receipts root, and each header to its parent).
    Every row is compared: block, log index, transaction, address, topics, data and time.

    Returns:
        One line per kind of difference (empty: the index is intact).

    Raises:
        ChainDatabaseError: the chain's own block data is damaged.
    """
    expected = {row[:2]: row for row in _receipt_rows(chain, path)}
    try:
        actual = {row[:2]: row for row in _index_rows(conn)}
    except sqlite3.DatabaseError as exc:
        raise damaged_database(path, exc) from exc
    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    changed = sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    problems = []
    if missing:
        problems.append(
            f"the event index (table logs) lacks {len(missing)} log(s) of the chain "
            f"(blocks {_blocks(missing)})"
        )
    if extra:
        problems.append(
            f"the event index (table logs) holds {len(extra)} log(s) the chain does not "
            f"(blocks {_blocks(extra)}): history would show events that never happened"
        )
    if changed:
        problems.append(
            f"the event index (table logs) has {len(changed)} log(s) that differ from the "
            f"chain's receipts (blocks {_blocks(changed)})"
        )
    return problems


def rebuild_log_index(conn: sqlite3.Connection, chain: Any, path: Path | None) -> int:
    """Rewrite the event index from the chain's receipts (the caller commits); return its rows.

    Raises:
        ChainDatabaseError: the chain's own block data is damaged (nothing is changed).
    """
    rows = _receipt_rows(chain, path)
    try:
        conn.execute("DELETE FROM logs")
        conn.executemany("INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    except sqlite3.DatabaseError as exc:
        raise damaged_database(path, exc) from exc
    return len(rows)


def _receipt_rows(chain: Any, path: Path | None) -> list[tuple[Any, ...]]:
    """Every log of the canonical chain as an event-index row, each block checked first.

    Each header must hash to the canonical hash of its number and name its parent's; its
    transactions and receipts must have the roots it commits to. Otherwise the rows would be
    made from damaged data, so the damage is reported instead.

    Raises:
        ChainDatabaseError: a block cannot be read or does not match its header.
    """
    from eth.db.trie import make_trie_root_and_nodes
    from eth.exceptions import PyEVMError
    from eth_utils.address import to_checksum_address
    from eth_utils.exceptions import ValidationError
    from rlp.exceptions import RLPException
    from trie.exceptions import MissingTrieNode

    unreadable = (PyEVMError, MissingTrieNode, KeyError, RLPException, ValidationError, ValueError)
    rows: list[tuple[Any, ...]] = []
    number = -1
    try:
        head = int(chain.get_canonical_head().block_number)
        parent = None
        for number in range(head + 1):
            header = chain.get_canonical_block_header_by_number(number)
            why = None
            if header.hash != chain.chaindb.get_canonical_block_hash(number):
                why = "its header does not hash to the chain's hash for it"
            elif parent is not None and header.parent_hash != parent:
                why = "its header does not name the block before it"
            parent = header.hash
            block = chain.get_canonical_block_by_number(number)
            receipts = block.get_receipts(chain.chaindb)
            if why is None and make_trie_root_and_nodes(block.transactions)[0] != (
                header.transaction_root
            ):
                why = "its transactions do not match its header"
            if why is None and make_trie_root_and_nodes(receipts)[0] != header.receipt_root:
                why = "its receipts do not match its header"
            if why is not None:
                raise damaged_database(path, f"block {number}: {why}")
            for tx_index, (tx, receipt) in enumerate(
                zip(block.transactions, receipts, strict=True)
            ):
                for log_index, log in enumerate(receipt.logs):
                    rows.append(
                        (
                            number,
                            log_index,
                            bytes(tx.hash),
                            tx_index,
                            str(to_checksum_address(log.address)),
                            b"".join(t.to_bytes(32, "big") for t in log.topics),
                            bytes(log.data),
                            int(header.timestamp),
                        )
                    )
    except unreadable as exc:
        where = f"block {number}" if number >= 0 else "the head block"
        raise damaged_database(path, f"{where} cannot be read ({type(exc).__name__})") from exc
    return rows


def _index_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every row of the event index, as :func:`_receipt_rows` gives them."""
    cur = conn.execute(
        "SELECT block, log_index, tx_hash, tx_index, address, topics, data, timestamp "
        "FROM logs ORDER BY block, log_index"
    )
    return [(b, i, bytes(h), t, a, bytes(tp), bytes(d), ts) for b, i, h, t, a, tp, d, ts in cur]


def _blocks(keys: Sequence[tuple[int, int]]) -> str:
    numbers = sorted({k[0] for k in keys})
    shown = ", ".join(str(n) for n in numbers[:5])
    return shown + (", ..." if len(numbers) > 5 else "")


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


class ChainDatabaseError(InputError):
    """The embedded chain's database is missing or damaged (exit 2: restore it, never replace)."""


#: What to do about a damaged chain database.
_RESTORE_HINT = (
    "restore .proml/chain/{name} from a backup, then run `proml fsck`; starting a new chain "
    "would lose the project's history"
)


def _shown(path: Path | None) -> str:
    if path is None:
        return "the embedded chain's database"
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


def damaged_database(path: Path | None, exc: BaseException | str) -> ChainDatabaseError:
    """The error for a chain database that SQLite or py-evm cannot read as ours."""
    reason = str(exc)
    if isinstance(exc, sqlite3.DatabaseError):
        text = str(exc).lower()
        if "not a database" in text:
            reason = "it is not a SQLite database"
        elif "malformed" in text or "corrupt" in text:
            reason = f"SQLite reports it damaged ({exc})"
        elif "no such table" in text:
            reason = f"a table is missing ({exc})"
        else:
            reason = f"SQLite cannot read it ({exc})"
    return ChainDatabaseError(
        f"the chain database {_shown(path)} is damaged: {reason}",
        hint=_RESTORE_HINT.format(name=DB_NAME),
    )


def _lock(state_dir: Path, timeout: float = LOCK_TIMEOUT) -> FileLock:
    """Take the chain's exclusive lock, waiting up to ``timeout`` seconds for another process.

    Raises:
        InputError: the chain directory or its lock file is not what proml made.
        BackendUnavailable: another process holds the lock for too long.
    """
    path = state_dir / LOCK_NAME
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot use {_shown(state_dir)} for the chain: {exc.strerror or exc}",
            hint="it must be a directory; move what is there aside and run `proml fsck`",
        ) from exc
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise InputError(
            f"the chain lock {_shown(path)} is not a regular file",
            hint=f"remove it (no proml process is running) and retry: rm -r {_shown(path)}",
        )
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=max(0.0, timeout))
    except Timeout as exc:
        raise BackendUnavailable(
            f"the embedded chain in {state_dir} is locked by another process"
        ) from exc
    except OSError as exc:
        raise InputError(
            f"cannot take the chain lock {_shown(path)}: {exc.strerror or exc}"
        ) from exc
    return lock


def _connect(
    path: Path, *, must_exist: bool = False, ledger: str | None = None
) -> sqlite3.Connection:
    """Open (or, for a new project, create) the chain database.

    Raises:
        ChainDatabaseError: ``must_exist`` and the file is missing or empty, or it is not a
            SQLite database of ours.
    """
    hint = _RESTORE_HINT.format(name=DB_NAME)
    if must_exist:
        if not path.exists():
            which = f" {ledger}" if ledger else ""
            raise ChainDatabaseError(
                f"the chain database {_shown(path)} is missing, but this project's "
                f"ledger{which} was deployed on it",
                hint=hint,
            )
        if path.is_file() and path.stat().st_size == 0:
            raise ChainDatabaseError(f"the chain database {_shown(path)} is empty", hint=hint)
    if path.exists() and not path.is_file():
        raise ChainDatabaseError(f"the chain database {_shown(path)} is not a file", hint=hint)
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=60.0)
    except sqlite3.Error as exc:
        raise damaged_database(path, exc) from exc
    try:
        # WAL + synchronous=FULL: a committed block survives power loss; readers never see a
        # torn one.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        if must_exist:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            missing = sorted({"kv", "logs", "meta"} - tables)
            if missing:
                raise ChainDatabaseError(
                    f"the chain database {_shown(path)} is damaged: table "
                    f"{', '.join(missing)} is missing",
                    hint=hint,
                )
        conn.executescript(_SCHEMA)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise damaged_database(path, exc) from exc
    except ChainDatabaseError:
        conn.close()
        raise
    path.chmod(0o600)
    return conn


def _open_tester(
    conn: sqlite3.Connection, path: Path | None = None, *, must_exist: bool = False
) -> EthereumTester:
    """An EthereumTester whose py-evm chain lives in ``conn`` (created at genesis if empty).

    Raises:
        ChainDatabaseError: the database holds no chain (or a broken one) where one must be.
    """
    from eth.exceptions import PyEVMError
    from trie.exceptions import MissingTrieNode

    backend = copy.copy(_template_backend())
    chain_class = type(backend.chain)
    base_db = AtomicDB(_SqliteKV(conn, path))
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'genesis'").fetchone()
        has_blocks = conn.execute("SELECT 1 FROM kv LIMIT 1").fetchone() is not None
    except sqlite3.DatabaseError as exc:
        raise damaged_database(path, exc) from exc
    if row is None:
        if must_exist or has_blocks:
            # Writing a genesis over what is there would silently replace the chain.
            raise damaged_database(
                path,
                "its genesis entry is missing"
                if has_blocks
                else "it holds no chain (the key-value table is empty)",
            )
        genesis_params = PyEVMBackend.generate_genesis_params()
        genesis_state = PyEVMBackend.generate_genesis_state()
        chain = chain_class.from_genesis(base_db, genesis_params, genesis_state)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('genesis', ?)",
            (chain.get_canonical_block_header_by_number(0).hash.hex(),),
        )
    else:
        try:
            chain = chain_class(base_db)
            head = chain.get_canonical_head()
            genesis = chain.get_canonical_block_header_by_number(0)
            # Reading an account walks the state trie from the head's root: a store emptied
            # or cut short fails here, before any command relies on it.
            chain.get_vm(head).state.get_balance(b"\0" * 20)
        except (PyEVMError, MissingTrieNode, KeyError) as exc:
            reason = (
                "the key-value table is empty (no chain in it)"
                if not has_blocks
                else f"the chain's head block or state is missing ({type(exc).__name__})"
            )
            raise damaged_database(path, reason) from exc
        if genesis.hash.hex() != str(row[0]):
            raise damaged_database(path, "its genesis block is not the one it was created with")
    backend.chain = chain
    return EthereumTester(backend=backend)


@lru_cache(maxsize=1)
def _template_tester() -> EthereumTester:
    """An EthereumTester over the template backend's throwaway chain.

    What an idle :class:`_Session` points at: never a project's chain.
    """
    return EthereumTester(backend=_template_backend())


@lru_cache(maxsize=1)
def _template_backend() -> PyEVMBackend:
    """An eth-tester backend whose chain class and accounts every opened chain shares.

    Building one makes a throwaway genesis in memory (5 ms); each ledger opened takes a shallow
    copy and replaces its chain with the project's own.
    """
    return PyEVMBackend()


def open_embedded(
    state_dir: Path, *, signer: Any, address: str | None, lock_timeout: float = LOCK_TIMEOUT
) -> EmbeddedLedger:
    """Open (and lock) the embedded chain under ``state_dir``; deploy when ``address`` is None.

    ``lock_timeout``: seconds to wait while another process holds the chain.
    """
    return EmbeddedLedger(state_dir, signer, address, lock_timeout=lock_timeout)
