"""Every wait for a network backend is bounded: connection within 5 s, answer within the policy's
timeout, and no retries that multiply it (no server is contacted here)."""

from __future__ import annotations

from pathlib import Path

from proml_cli.content._kubo import KuboStore
from proml_cli.ledger import ChainConfig
from proml_cli.ledger._rpc import provider_for


def test_the_chain_provider_connects_within_5_s_and_answers_within_the_timeout() -> None:
    provider = provider_for(ChainConfig(backend="rpc", url="http://127.0.0.1:9", timeout=30))
    assert provider.get_request_kwargs()["timeout"] == (5.0, 30)
    assert provider.exception_retry_configuration is None


def test_a_small_chain_timeout_also_bounds_the_connection() -> None:
    provider = provider_for(ChainConfig(backend="rpc", url="http://127.0.0.1:9", timeout=2))
    assert provider.get_request_kwargs()["timeout"] == (2, 2)


def test_the_ipfs_client_connects_within_5_s_and_answers_within_the_timeout(
    tmp_path: Path,
) -> None:
    with KuboStore(tmp_path, "http://127.0.0.1:9", timeout=30) as store:
        timeout = store._client.timeout
    assert (timeout.connect, timeout.read, timeout.write) == (5.0, 30, 30)
