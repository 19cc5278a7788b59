"""Configuration from the environment, read once at the boundary into an immutable object.

The CLI (each command) and :func:`proml_cli.open_project` call :meth:`Settings.from_environ`
once and hand the result down; no module below them reads the environment (a unit test checks
it). Each variable is declared once, in :data:`VARIABLES`, which ``proml --help`` lists; where a
command has a flag for one, the flag names it with typer's ``envvar=``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from proml_cli.errors import InputError

#: Seconds to wait for the embedded chain's lock held by another process (PROML_LOCK_TIMEOUT).
LOCK_TIMEOUT = 600.0

#: Every variable :class:`Settings` reads, and what it selects (the CLI's ``--help`` lists them).
VARIABLES: Mapping[str, str] = {
    "PROML_POLICY": "policy file (= --policy)",
    "PROML_ACCOUNT": "local account that signs (= --as)",
    "PROML_CHAIN_URL": "JSON-RPC chain URL (over chain.url; selects backend rpc)",
    "PROML_IPFS_URL": "IPFS node's RPC API URL (over storage.ipfs; selects ipfs)",
    "PROML_KEYSTORE_PASSWORD": "password of the local keystores (else a prompt on a network chain)",
    "PROML_PRIVATE_KEY": "hex key that signs instead of a keystore (development chains)",
    "PROML_LOCK_TIMEOUT": "seconds to wait for the embedded chain's lock (default 600)",
    "XDG_CACHE_HOME": "where per-user nonce locks of network chains live (default ~/.cache)",
    "USER": "who ran a step, in its record's environment summary (else USERNAME)",
}


@dataclass(frozen=True)
class Settings:
    """What the environment says, resolved once; secrets are kept out of ``repr``.

    Attributes:
        policy: the policy file (``PROML_POLICY``), None to find ``proml.yaml`` upwards.
        chain_url: a JSON-RPC URL (``PROML_CHAIN_URL``) that replaces the policy's chain.
        ipfs_url: an IPFS API URL (``PROML_IPFS_URL``) that replaces the policy's storage.
        account: the local account that signs (``PROML_ACCOUNT``), None for ``default``.
        private_key: a hex key that signs when no account is named (``PROML_PRIVATE_KEY``).
        keystore_password: the keystores' password (``PROML_KEYSTORE_PASSWORD``), None to
            prompt on a terminal for a network chain.
        lock_timeout: seconds to wait for the embedded chain's lock (``PROML_LOCK_TIMEOUT``).
        cache_dir: the user's cache directory (``XDG_CACHE_HOME``), None for ``~/.cache``.
        user: who runs the command (``USER``, else ``USERNAME``), for the environment summary.
    """

    policy: str | None = None
    chain_url: str | None = None
    ipfs_url: str | None = None
    account: str | None = None
    private_key: str | None = field(default=None, repr=False)
    keystore_password: str | None = field(default=None, repr=False)
    lock_timeout: float = LOCK_TIMEOUT
    cache_dir: Path | None = None
    user: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` (default: this process's environment) gives; empty is unset.

        Raises:
            InputError: ``PROML_LOCK_TIMEOUT`` is not a number of seconds.
        """
        env = os.environ if environ is None else environ
        return cls(
            policy=env.get("PROML_POLICY") or None,
            chain_url=env.get("PROML_CHAIN_URL") or None,
            ipfs_url=env.get("PROML_IPFS_URL") or None,
            account=env.get("PROML_ACCOUNT") or None,
            private_key=env.get("PROML_PRIVATE_KEY") or None,
            # An empty password is a password (the embedded default's keystores use it).
            keystore_password=env.get("PROML_KEYSTORE_PASSWORD"),
            lock_timeout=_seconds(env.get("PROML_LOCK_TIMEOUT") or None),
            cache_dir=Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else None,
            user=env.get("USER") or env.get("USERNAME") or None,
        )


def _seconds(raw: str | None) -> float:
    if raw is None:
        return LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"PROML_LOCK_TIMEOUT is not a number of seconds: {raw!r}") from None
    if value != value:  # NaN
        raise InputError(f"PROML_LOCK_TIMEOUT is not a number of seconds: {raw!r}")
    return max(0.0, value)
