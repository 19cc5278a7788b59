"""Shared pytest options and fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="Rewrite self-produced golden values in tests/data/golden/ (review the diff).",
    )


@pytest.fixture(scope="session", autouse=True)
def _no_node_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every proml node a test started (a `proml` process starts one on demand) is stopped.

    Nodes also exit on their own when their project's directory is removed, or when idle.
    """
    import os

    os.environ.setdefault("PROML_NODE_IDLE", "120")
    yield
    from _nodes import stop_nodes

    stop_nodes(tmp_path_factory.getbasetemp())


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


# ---------------------------------------------------------------- real network services
# Session-wide: one anvil and one IPFS node serve every network test (each test deploys
# its own ledger contract, so tests never share state through them).


@pytest.fixture(scope="session")
def anvil_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from services import anvil

    with anvil(tmp_path_factory.mktemp("anvil")) as url:
        yield url


@pytest.fixture(scope="session")
def ipfs_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from services import ipfs_node

    with ipfs_node(tmp_path_factory.mktemp("ipfs-repo")) as url:
        yield url
