"""The network chain: the ledger contract on any Ethereum JSON-RPC endpoint (anvil, geth, L2s)."""

from __future__ import annotations

import logging
from typing import Any

from web3 import Web3
from web3.exceptions import Web3Exception

from proml_cli.errors import BackendUnavailable
from proml_cli.ledger import ChainConfig
from proml_cli.ledger._client import ContractLedger

logger = logging.getLogger(__name__)


class RpcLedger(ContractLedger):
    """The ledger over HTTP JSON-RPC."""

    def __init__(self, config: ChainConfig, signer: Any, address: str | None) -> None:
        self._config = config
        w3 = Web3(Web3.HTTPProvider(config.url, request_kwargs={"timeout": config.timeout}))
        try:
            connected = w3.is_connected()
        except (OSError, Web3Exception):
            connected = False
        if not connected:
            raise BackendUnavailable(f"cannot reach the chain at {config.url}")
        super().__init__(w3, signer, address)

    def _wait(self, tx_hash: Any) -> Any:
        return self._w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self._config.timeout)


def open_rpc(config: ChainConfig, *, signer: Any, address: str | None) -> RpcLedger:
    """Connect to ``config.url``; deploy when ``address`` is None."""
    return RpcLedger(config, signer, address)
