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
* EIP-1559 fees where the chain reports a base fee, legacy gas price elsewhere.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from filelock import FileLock
from web3 import Web3
from web3.providers.rpc import HTTPProvider
from web3.types import RPCEndpoint

from proml_cli.errors import BackendUnavailable
from proml_cli.ledger import ChainConfig
from proml_cli.ledger._client import ContractLedger

logger = logging.getLogger(__name__)

#: Poll interval while waiting for confirmations (seconds).
POLL = 0.25
#: Seconds to wait for a TCP connection: a reachable node accepts at once.
CONNECT_TIMEOUT = 5.0
#: anvil's and hardhat's chain id; only there does proml fund empty accounts itself.
DEV_CHAIN_ID = 31337
DEV_FUNDING = 10**21


def nonce_lock_path(chain_id: int, address: str) -> Path:
    """The file lock that serialises one account's transactions on one chain, per user.

    It cannot live in a project's state directory: two projects (or two clones of one) signing
    with the same key share the account's nonce, and separate locks let both processes read the
    same pending nonce, so one transaction fails with "nonce too low".
    """
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "proml" / "locks" / f"nonce-{chain_id}-{address.lower()}.lock"


class _Provider(HTTPProvider):
    """HTTP JSON-RPC whose transport failures are the project's own error."""

    def make_request(self, method: Any, params: Any) -> Any:
        try:
            return super().make_request(method, params)
        except OSError as exc:  # requests' ConnectionError and Timeout are OSErrors
            raise BackendUnavailable(
                f"cannot reach the chain at {self.endpoint_uri} ({method}: {type(exc).__name__})",
                hint="check chain.url / PROML_CHAIN_URL; journaled work waits for `proml sync`",
            ) from exc


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
        # Also fails fast (BackendUnavailable) when the chain is unreachable.
        self._chain_id = int(w3.eth.chain_id)
        super().__init__(w3, signer, address)

    def _prepare_signer(self, signer: Any) -> None:
        # Development chains only (anvil/hardhat use chain id 31337): give an empty local
        # account gas money so a demo needs no faucet. Real networks are never touched.
        if self._w3.eth.chain_id != DEV_CHAIN_ID or self._w3.eth.get_balance(signer.address):
            return
        self._w3.provider.make_request(
            RPCEndpoint("anvil_setBalance"), [signer.address, hex(DEV_FUNDING)]
        )

    def _send(self, fn: Any) -> Any:
        if self._signer is None:
            return super()._send(fn)
        path = nonce_lock_path(self._chain_id, str(self._signer.address))
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with FileLock(str(path)):
            return super()._send(fn)

    def _wait(self, tx_hash: Any) -> Any:
        receipt = self._w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=self._config.receipt_timeout, poll_latency=POLL
        )
        wanted = int(receipt["blockNumber"]) + self._config.confirmations - 1
        deadline = time.monotonic() + self._config.receipt_timeout
        while self._w3.eth.block_number < wanted:
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"transaction {bytes(tx_hash).hex()} has fewer than "
                    f"{self._config.confirmations} confirmations "
                    f"after {self._config.receipt_timeout:.0f} s",
                    hint="run `proml sync` later",
                )
            time.sleep(POLL)
        # Re-read: a reorganisation may have dropped or moved it while we waited.
        return self._w3.eth.get_transaction_receipt(tx_hash)

    def head_number(self) -> int:
        """The newest confirmed block (what history is read up to)."""
        return int(self._w3.eth.block_number) - max(self._config.confirmations, 1) + 1

    def _logs(self, from_block: int) -> list[dict[str, Any]]:
        confirmed = self._w3.eth.block_number - max(self._config.confirmations, 1) + 1
        if confirmed < from_block:
            return []
        logs = self._w3.eth.get_logs(
            {"address": self._contract.address, "fromBlock": from_block, "toBlock": confirmed}
        )
        return [dict(log) for log in logs]


def open_rpc(config: ChainConfig, *, signer: Any, address: str | None) -> RpcLedger:
    """Connect to ``config.url``; deploy when ``address`` is None."""
    return RpcLedger(config, signer, address)
