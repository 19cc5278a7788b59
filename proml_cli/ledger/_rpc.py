"""The network chain: the ledger contract on any Ethereum JSON-RPC endpoint (anvil, geth, L2s).

What the network adds to the shared contract client:

* every transport failure becomes :class:`BackendUnavailable` (exit 3, work journaled) with the
  URL and the call; waits are bounded: a connection within :data:`CONNECT_TIMEOUT`, an answer
  within ``chain.timeout``, and no retries (web3's retry of timed-out calls with backoff made a
  frozen chain take 155 s to fail);
* a per-account file lock spans nonce → send → receipt, so concurrent proml processes signing
  with the same key never reuse a nonce — whichever project they work on: the nonce belongs to
  the account, so the lock lives in the user's cache directory, not under a project's
  ``.proml/`` (see :func:`nonce_lock_path`);
* a transaction counts once ``confirmations`` blocks include it, and history is read only up
  to the last confirmed block;
* EIP-1559 fees where the chain reports a base fee, legacy gas price elsewhere;
* a bounded number of calls per command, whatever the history's length: the chain id is read
  once per process, and block times are fetched once (many in one batch request) and kept in
  ``.proml/chain/rpc-cache.sqlite``, keyed by block hash, so a block's time is never fetched
  twice and a reorganised block can never lend its time to another; a write's fees reuse the
  head the history index read moments before (:data:`HEADER_REUSE`), and its receipt's block
  time comes from the receipt where the node names it there.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from filelock import FileLock
from web3 import Web3
from web3.providers.rpc import HTTPProvider
from web3.types import RPCEndpoint

from proml_cli.errors import BackendUnavailable
from proml_cli.ledger import ChainConfig, Receipt
from proml_cli.ledger._client import ContractLedger

logger = logging.getLogger(__name__)

#: Poll interval while waiting for confirmations (seconds).
POLL = 0.25
#: Poll interval while waiting for the receipt (seconds): what a transition adds beyond block
#: time x confirmations at one confirmation is at most this (a receipt poll is one call).
RECEIPT_POLL = 0.1
#: Seconds to wait for a TCP connection: a reachable node accepts at once.
CONNECT_TIMEOUT = 5.0
#: anvil's and hardhat's chain id; only there does proml fund empty accounts itself.
DEV_CHAIN_ID = 31337
DEV_FUNDING = 10**21
#: Seconds the newest header read for the history index stands in for the one a transaction's
#: fees are derived from (fees allow the base fee to double: a header this young is current).
HEADER_REUSE = 2.0
#: Block headers fetched per JSON-RPC batch request when filling the block-time cache.
BATCH = 500
CACHE_NAME = "rpc-cache.sqlite"
#: The decoded history index of a network chain (see :mod:`proml_cli.ledger._index`).
INDEX_NAME = "history.sqlite"
#: (url, address) pairs whose development-chain balance this process has checked already.
_FUNDED: set[tuple[str, str]] = set()
#: The chain id answer of each URL this process has asked (see ``_Provider.make_request``).
_CHAIN_IDS: dict[str, Any] = {}


def nonce_lock_path(chain_id: int, address: str, cache_dir: Path | None = None) -> Path:
    """The file lock that serialises one account's transactions on one chain, per user.

    It cannot live in a project's state directory: two projects (or two clones of one) signing
    with the same key share the account's nonce, and separate locks let both processes read the
    same pending nonce, so one transaction fails with "nonce too low".
    """
    cache = cache_dir if cache_dir is not None else Path.home() / ".cache"
    return cache / "proml" / "locks" / f"nonce-{chain_id}-{address.lower()}.lock"


class _Provider(HTTPProvider):
    """HTTP JSON-RPC whose transport failures are the project's own error."""

    def make_request(self, method: Any, params: Any) -> Any:
        # web3 asks the chain id before every transaction it validates; the id behind a URL
        # does not change while a command runs, so the node is asked once per process.
        if method == "eth_chainId" and self.endpoint_uri in _CHAIN_IDS:
            return _CHAIN_IDS[str(self.endpoint_uri)]
        try:
            answer = super().make_request(method, params)
        except OSError as exc:  # requests' ConnectionError and Timeout are OSErrors
            raise BackendUnavailable(
                f"cannot reach the chain at {self.endpoint_uri} ({method}: {type(exc).__name__})",
                hint="check chain.url / PROML_CHAIN_URL; journaled work waits for `proml sync`",
            ) from exc
        if method == "eth_chainId" and "result" in answer:
            _CHAIN_IDS[str(self.endpoint_uri)] = answer
        return answer

    def make_batch_request(self, requests: Any) -> Any:
        try:
            return super().make_batch_request(requests)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot reach the chain at {self.endpoint_uri} (batch: {type(exc).__name__})",
                hint="check chain.url / PROML_CHAIN_URL; journaled work waits for `proml sync`",
            ) from exc


class BlockTimes:
    """Block timestamps by block hash, kept on disk (or in memory without a state directory).

    A block's hash commits to its header, timestamp included, so an entry never goes stale:
    a reorganisation gives the replacing block another hash, hence another entry.
    """

    def __init__(self, chain_id: int, state_dir: Path | None) -> None:
        self._chain_id = chain_id
        self._conn: sqlite3.Connection | None = None
        if state_dir is not None:
            try:
                state_dir.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(str(state_dir / CACHE_NAME), timeout=30.0)
                self._conn.execute(
                    "CREATE TABLE IF NOT EXISTS block_times (chain_id INTEGER NOT NULL, "
                    "hash BLOB NOT NULL, number INTEGER NOT NULL, timestamp INTEGER NOT NULL, "
                    "PRIMARY KEY (chain_id, hash)) WITHOUT ROWID"
                )
                self._conn.commit()
            except sqlite3.Error as exc:
                # A cache only: without it every block time is fetched again, nothing is lost.
                logger.warning("block-time cache unavailable (%s): fetching block times", exc)
                self._conn = None

    def get(self, hashes: set[bytes]) -> dict[bytes, int]:
        """The known timestamps among ``hashes``."""
        if self._conn is None or not hashes:
            return {}
        found: dict[bytes, int] = {}
        ordered = sorted(hashes)
        for i in range(0, len(ordered), 500):
            part = ordered[i : i + 500]
            marks = ",".join("?" * len(part))  # placeholders only: the values are bound
            rows = self._conn.execute(
                "SELECT hash, timestamp FROM block_times WHERE chain_id = ? "  # noqa: S608
                f"AND hash IN ({marks})",
                (self._chain_id, *part),
            )
            found.update((bytes(h), int(t)) for h, t in rows)
        return found

    def put(self, entries: list[tuple[bytes, int, int]]) -> None:
        """Keep (hash, number, timestamp) entries."""
        if self._conn is None or not entries:
            return
        try:
            self._conn.executemany(
                "INSERT OR IGNORE INTO block_times VALUES (?, ?, ?, ?)",
                [(self._chain_id, h, n, t) for h, n, t in entries],
            )
            self._conn.commit()
        except sqlite3.Error as exc:
            logger.warning("block-time cache not written (%s)", exc)

    def close(self) -> None:
        """Close the database."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def provider_for(config: ChainConfig) -> HTTPProvider:
    """The HTTP provider for ``config.url``: bounded waits, no retries, our own errors."""
    return _Provider(
        config.url,
        request_kwargs={"timeout": (min(CONNECT_TIMEOUT, config.timeout), config.timeout)},
        # One bounded wait per call: a hung chain fails within chain.timeout, and the work is
        # journaled for `proml sync` instead of being retried here.
        exception_retry_configuration=None,
    )


class RpcLedger(ContractLedger):
    """The ledger over HTTP JSON-RPC."""

    def __init__(self, config: ChainConfig, signer: Any, address: str | None) -> None:
        self._config = config
        w3 = Web3(provider_for(config))
        # Also fails fast (BackendUnavailable) when the chain is unreachable. Read once: the
        # id of the chain behind a URL does not change while a command runs.
        self._chain_id = int(w3.eth.chain_id)
        self._times = BlockTimes(self._chain_id, config.state_dir)
        self._index_conn: sqlite3.Connection | None = None
        # The newest header and when it was read (shared with ``with_signer`` views).
        self._latest: dict[str, tuple[float, Any]] = {}
        try:
            super().__init__(w3, signer, address)
        except BaseException:
            self._times.close()
            raise

    @property
    def chain_id(self) -> int:
        """The chain's id (read once, when the ledger was opened)."""
        return self._chain_id

    def close(self) -> None:
        """Close the block-time cache and the history index (``with_signer`` views share them)."""
        if not self._is_view:
            self._times.close()
            conn = self._index_conn
            if conn is not None:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.close()
                self._index_conn = None

    def _prepare_signer(self, signer: Any) -> None:
        # Development chains only (anvil/hardhat use chain id 31337): give an empty local
        # account gas money so a demo needs no faucet. Real networks are never touched.
        key = (str(self._config.url), str(signer.address))
        if self._chain_id != DEV_CHAIN_ID or key in _FUNDED:
            return
        _FUNDED.add(key)  # checked once per process: ledgers opened again need not ask
        if self._w3.eth.get_balance(signer.address):
            return
        self._w3.provider.make_request(
            RPCEndpoint("anvil_setBalance"), [signer.address, hex(DEV_FUNDING)]
        )

    def _send(self, fn: Any) -> Any:
        if self._signer is None:
            return super()._send(fn)
        path = nonce_lock_path(self._chain_id, str(self._signer.address), self._config.cache_dir)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with FileLock(str(path)):
            return super()._send(fn)

    def _wait(self, tx_hash: Any) -> Any:
        receipt = self._w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=self._config.receipt_timeout, poll_latency=RECEIPT_POLL
        )
        if self._config.confirmations <= 1:
            # The receipt names the one block wanted: there is nothing to wait for or re-read.
            return receipt
        wanted = int(receipt["blockNumber"]) + self._config.confirmations - 1
        deadline = time.monotonic() + self._config.receipt_timeout
        seen: tuple[float, int] | None = None  # when a block number was first seen
        interval: float | None = None  # seconds per block, as observed while waiting
        while (head := self._w3.eth.block_number) < wanted:
            now = time.monotonic()
            if now > deadline:
                raise BackendUnavailable(
                    f"transaction {bytes(tx_hash).hex()} has fewer than "
                    f"{self._config.confirmations} confirmations "
                    f"after {self._config.receipt_timeout:.0f} s",
                    hint="run `proml sync` later",
                )
            if seen is None or head > seen[1]:
                if seen is not None:
                    interval = (now - seen[0]) / (head - seen[1])
                seen = (now, head)
            # Sleep through the blocks still to come but the last, then poll for it: the
            # calls stay few at any depth and the wait ends within POLL of the wanted block.
            ahead = (wanted - head - 1) * interval if interval is not None else 0.0
            time.sleep(max(POLL, min(ahead, deadline - now)))
        # Re-read: a reorganisation may have dropped or moved it while we waited.
        return self._w3.eth.get_transaction_receipt(tx_hash)

    def head_number(self) -> int:
        """The newest confirmed block (what history is read up to)."""
        return int(self._w3.eth.block_number) - max(self._config.confirmations, 1) + 1

    def head_block(self) -> tuple[int, str, str]:
        """The newest confirmed block: number, hash, parent's hash (one call at 1 confirmation)."""
        if self._config.confirmations > 1:
            return super().head_block()
        block = self._w3.eth.get_block("latest")
        self._latest["header"] = (time.monotonic(), block)
        return (
            int(block["number"]),
            "0x" + bytes(block["hash"]).hex().removeprefix("0x"),
            "0x" + bytes(block["parentHash"]).hex().removeprefix("0x"),
        )

    def _fee_block(self) -> Any:
        # A transition reads the head for the history index just before it sends: that header,
        # if read moments ago, gives the base fee (one call fewer). Used once, then read anew.
        recent = self._latest.pop("header", None)
        if recent is not None and time.monotonic() - recent[0] <= HEADER_REUSE:
            return recent[1]
        return super()._fee_block()

    def _index_connection(self) -> tuple[sqlite3.Connection, Any]:
        # Beside the block-time cache; without a state directory, in memory for this process.
        where = ":memory:"
        if self._config.state_dir is not None:
            self._config.state_dir.mkdir(parents=True, exist_ok=True)
            where = str(self._config.state_dir / INDEX_NAME)
        # Each sync is one transaction (opened by its first write, committed at its end):
        # concurrent processes may append the same rows, which replace each other unchanged.
        conn = sqlite3.connect(where, timeout=30.0)
        self._index_conn = conn
        return conn, conn.commit

    def _logs(self, from_block: int, to_block: int | None = None) -> list[dict[str, Any]]:
        # ``to_block`` is a confirmed block the caller read already (one call fewer).
        confirmed = to_block if to_block is not None else self.head_number()
        if confirmed < from_block:
            return []
        logs: list[dict[str, Any]] = [
            dict(log)
            for log in self._w3.eth.get_logs(
                {"address": self._contract.address, "fromBlock": from_block, "toBlock": confirmed}
            )
        ]
        # Each log carries its block's time, from the cache or fetched once, many per request:
        # the history no longer costs one call per event (the client reads "timestamp").
        wanted = {bytes(log["blockHash"]): int(log["blockNumber"]) for log in logs}
        times = self._times.get(set(wanted))
        missing = sorted((n, h) for h, n in wanted.items() if h not in times)
        fetched = self._fetch_times(missing)
        times.update(fetched)
        for log in logs:
            stamp = times.get(bytes(log["blockHash"]))
            if stamp is not None:
                log["timestamp"] = stamp
        return logs

    def _fetch_times(self, blocks: list[tuple[int, bytes]]) -> dict[bytes, int]:
        """Fetch the headers of ``blocks`` (number, expected hash) in batches; keep their times.

        A header whose hash is not the one the log named (a reorganisation between the two
        calls) is not kept: its log gets its time from the client's own per-number lookup.
        """
        found: dict[bytes, int] = {}
        for i in range(0, len(blocks), BATCH):
            part = blocks[i : i + BATCH]
            requests = [
                (RPCEndpoint("eth_getBlockByNumber"), [hex(number), False]) for number, _ in part
            ]
            answers = self._w3.provider.make_batch_request(requests)  # type: ignore[attr-defined]
            if not isinstance(answers, list):
                raise BackendUnavailable(
                    f"the chain at {self._config.url} refused a batch request: "
                    f"{dict(answers).get('error')}"
                )
            entries = []
            for (number, expected), answer in zip(part, answers, strict=True):
                header = answer.get("result") if isinstance(answer, dict) else None
                if not header or bytes.fromhex(str(header["hash"]).removeprefix("0x")) != expected:
                    continue
                stamp = int(str(header["timestamp"]), 16)
                found[expected] = stamp
                self._block_times[number] = stamp
                entries.append((expected, number, stamp))
            self._times.put(entries)
        return found

    def _receipt(self, receipt: Any) -> Receipt:
        # Nodes that name the block's time in the receipt (anvil; geth in its logs) spare the
        # header request that would fetch it; others are asked for the header as before.
        stamp = _receipt_time(receipt)
        number = int(receipt["blockNumber"])
        if stamp is not None and number not in self._block_times:
            self._block_times[number] = stamp
            self._times.put([(bytes(receipt["blockHash"]), number, stamp)])
        return super()._receipt(receipt)

    def _block_time(self, number: int) -> int:
        if number not in self._block_times:
            block = self._w3.eth.get_block(number)
            stamp = int(block["timestamp"])
            self._block_times[number] = stamp
            self._times.put([(bytes(block["hash"]), number, stamp)])
        return self._block_times[number]


def _receipt_time(receipt: Any) -> int | None:
    """The block time a receipt (or one of its logs from the same block) names, if any."""
    stamp = receipt.get("blockTimestamp")
    if stamp is None:
        block = bytes(receipt["blockHash"])
        stamp = next(
            (
                log.get("blockTimestamp")
                for log in receipt.get("logs") or ()
                if bytes(log.get("blockHash") or b"") == block
            ),
            None,
        )
    return _time_value(stamp)


def _time_value(stamp: object) -> int | None:
    """A node's ``blockTimestamp`` (an integer or its hex text) as seconds, or None."""
    if isinstance(stamp, str):
        try:
            return int(stamp, 16) if stamp.startswith("0x") else int(stamp)
        except ValueError:
            return None
    return int(stamp) if isinstance(stamp, int) and not isinstance(stamp, bool) else None


def open_rpc(config: ChainConfig, *, signer: Any, address: str | None) -> RpcLedger:
    """Connect to ``config.url``; deploy when ``address`` is None."""
    return RpcLedger(config, signer, address)
