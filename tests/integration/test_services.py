"""The real services start, answer, and stay on loopback."""

from __future__ import annotations

import httpx
import pytest
from services import rpc

pytestmark = pytest.mark.integration


def test_anvil_answers_on_loopback(anvil_url: str) -> None:
    assert anvil_url.startswith("http://127.0.0.1:")
    assert int(str(rpc(anvil_url, "eth_chainId", [])), 16) == 31337


def test_ipfs_node_speaks_the_kubo_rpc_api(ipfs_url: str) -> None:
    assert ipfs_url.startswith("http://127.0.0.1:")
    reply = httpx.post(f"{ipfs_url}/api/v0/id", timeout=30)
    reply.raise_for_status()
    body = reply.json()
    assert body["ID"]
    # Offline, no bootstrap peers: nothing outside this machine is dialled.
    peers = httpx.post(f"{ipfs_url}/api/v0/bootstrap/list", timeout=30).json()
    assert not peers.get("Peers")
