"""Fixtures for the ledger integration tests: real contracts on the embedded py-evm chain.

Deploying the contract and defining the standard project costs about a second, so the shared
``ledger_project`` fixture is deployed once per test module; tests that need a pristine contract
(the admin hand-over, the role limit, exact histories) take ``fresh_ledger`` instead. Tests that
share a module's chain keep out of each other's way by binding artefacts with unique names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _chain_helpers import Project, new_account, open_project
from _network import rpc_policy
from _project import build_project

from proml_cli.ledger import ChainConfig, Ledger, open_ledger


@pytest.fixture(scope="module")
def ledger_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The module's shared, deployed project (admin holds every role)."""
    yield from open_project(tmp_path_factory.mktemp("chain"))


@pytest.fixture(scope="module")
def anvil_project(tmp_path_factory: pytest.TempPathFactory, anvil_url: str) -> Path:
    """A project on the session's anvil: deployed, dataset prepared and validated (per module)."""
    root = tmp_path_factory.mktemp("on-anvil") / "project"
    return build_project(root, rpc_policy(anvil_url), train=False, note="checked over RPC")


@pytest.fixture
def nonce_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """proml keeps network nonce locks in the user's cache directory: this test's, not $HOME's."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture
def fresh_ledger(tmp_path: Path) -> Iterator[tuple[Ledger, Any]]:
    """A newly deployed ledger with nothing defined, and its admin account."""
    admin = new_account()
    with open_ledger(ChainConfig(state_dir=tmp_path / "chain"), signer=admin) as ledger:
        yield ledger, admin
