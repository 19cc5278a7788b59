"""Configuration from the environment, read once at the boundary into an immutable object.

The CLI (each command) and :func:`proml_cli.open_project` call :meth:`Settings.from_environ`
once and hand the result down; no module below them reads these variables. Each is also
listed in ``proml --help``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

#: The variables :class:`Settings` reads, and what each selects.
VARIABLES = {
    "PROML_POLICY": "the policy file (= --policy)",
    "PROML_CHAIN_URL": "a JSON-RPC chain, over the policy's chain (selects the rpc backend)",
    "PROML_IPFS_URL": "an IPFS node's API, over the policy's storage (selects the node)",
}


@dataclass(frozen=True)
class Settings:
    """What the environment overrides of the policy, resolved once.

    Attributes:
        policy: the policy file (``PROML_POLICY``), None to find ``proml.yaml`` upwards.
        chain_url: a JSON-RPC URL (``PROML_CHAIN_URL``) that replaces the policy's chain.
        ipfs_url: an IPFS API URL (``PROML_IPFS_URL``) that replaces the policy's storage.
    """

    policy: str | None = None
    chain_url: str | None = None
    ipfs_url: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` (default: this process's environment) gives; empty is unset."""
        env = os.environ if environ is None else environ
        return cls(
            policy=env.get("PROML_POLICY") or None,
            chain_url=env.get("PROML_CHAIN_URL") or None,
            ipfs_url=env.get("PROML_IPFS_URL") or None,
        )
