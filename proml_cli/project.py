"""A proml project on disk: its policy, its ``.proml/`` state and the backends they select."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proml_cli.errors import InputError

if TYPE_CHECKING:
    from proml_cli.content import ContentStore
    from proml_cli.ledger import Ledger
    from proml_cli.policy import Policy

POLICY_NAME = "proml.yaml"
STATE_NAME = ".proml"
PROJECT_FILE = "project.json"


def find_policy(start: Path | None = None, explicit: str | None = None) -> Path:
    """The policy file: ``explicit`` (flag/``PROML_POLICY``), else ``proml.yaml`` here or above.

    Raises:
        InputError: no policy is found.
    """
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise InputError(f"{explicit}: no such policy file")
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / POLICY_NAME
        if candidate.is_file():
            return candidate
    raise InputError(f"no {POLICY_NAME} here or in any parent directory", hint="proml init")


@dataclass(frozen=True)
class ProjectState:
    """What ``proml init`` recorded: where the project's ledger is."""

    backend: str
    chain_id: int
    ledger: str
    admin: str
    deployed_block: int

    def to_json(self) -> dict[str, Any]:
        """The state as written to ``.proml/project.json``."""
        return {
            "schema_version": 1,
            "backend": self.backend,
            "chain_id": self.chain_id,
            "ledger": self.ledger,
            "admin": self.admin,
            "deployed_block": self.deployed_block,
        }


@dataclass(frozen=True)
class Project:
    """A loaded project: the validated policy plus the state directory next to it."""

    policy: Policy
    state_dir: Path

    @property
    def root(self) -> Path:
        """The project's directory (the policy's directory)."""
        return self.policy.root

    def state(self) -> ProjectState:
        """The recorded ledger location.

        Raises:
            InputError: the project was never initialised.
        """
        path = self.state_dir / PROJECT_FILE
        if not path.is_file():
            raise InputError(f"project not initialised ({path} is missing)", hint="proml init")
        data = json.loads(path.read_text())
        return ProjectState(
            backend=str(data["backend"]),
            chain_id=int(data["chain_id"]),
            ledger=str(data["ledger"]),
            admin=str(data["admin"]),
            deployed_block=int(data.get("deployed_block", 0)),
        )

    def write_state(self, state: ProjectState) -> None:
        """Write ``.proml/project.json`` atomically."""
        path = self.state_dir / PROJECT_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
        os.replace(tmp, path)

    def chain_backend(self) -> str:
        """``embedded`` or ``rpc``: ``PROML_CHAIN_URL`` selects rpc over the policy."""
        return "rpc" if os.environ.get("PROML_CHAIN_URL") else self.policy.chain.backend

    def chain_url(self) -> str | None:
        """The JSON-RPC URL: ``PROML_CHAIN_URL`` over ``chain.url``."""
        return os.environ.get("PROML_CHAIN_URL") or self.policy.chain.url

    def signer(self, account: str | None = None) -> Any:
        """The signing account for this process (see :func:`proml_cli.account.load_signer`)."""
        from proml_cli.account import load_signer

        return load_signer(self.state_dir, account)

    @contextmanager
    def ledger(self, signer: Any, *, deploy: bool = False) -> Iterator[Ledger]:
        """Open the project's ledger (deploy a new one when ``deploy`` and none is recorded)."""
        from proml_cli.ledger import ChainConfig, open_ledger

        address = None if deploy else self.state().ledger
        config = ChainConfig(
            backend=self.chain_backend(),
            state_dir=self.state_dir / "chain",
            url=self.chain_url(),
            confirmations=self.policy.chain.confirmations,
        )
        with open_ledger(config, signer=signer, address=address) as ledger:
            yield ledger

    def store(self) -> ContentStore:
        """The project's content store (embedded under ``.proml/content`` by default)."""
        from proml_cli.content import open_store

        backend = "kubo" if os.environ.get("PROML_IPFS_URL") else self.policy.storage.backend
        kind = "embedded" if backend == "embedded" else "kubo"
        url = os.environ.get("PROML_IPFS_URL") or self.policy.storage.ipfs
        return open_store(kind, root=self.state_dir / "content", url=url)


def load_project(policy_path: str | None = None, *, start: Path | None = None) -> Project:
    """Find and validate the policy, and locate the state directory beside it.

    Raises:
        InputError: no policy; PolicyError: an invalid one.
    """
    from proml_cli.policy import load_policy

    path = find_policy(start, policy_path or os.environ.get("PROML_POLICY"))
    policy = load_policy(path)
    return Project(policy=policy, state_dir=path.parent / STATE_NAME)
