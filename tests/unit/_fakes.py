"""In-memory fakes of the ledger-reader and content-store protocols, for unit tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from proml_cli.content import bytes_cid
from proml_cli.errors import ContentNotFoundError
from proml_cli.ledger import ChainEvent, Deployment, Kind, Receipt, VersionRef, VersionState


@dataclass
class FakeReader:
    """A :class:`proml_cli.ledger.LedgerReader` holding its answers in dictionaries."""

    address: str = "0x" + "11" * 20
    chain_id: int = 1337
    admin_address: str = "0x" + "aa" * 20
    versions: dict[tuple[str, str], VersionState] = field(default_factory=dict)
    kinds: dict[str, Kind] = field(default_factory=dict)
    artefacts: dict[str, str] = field(default_factory=dict)
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    role_list: tuple[str, ...] = ()
    events: list[ChainEvent] = field(default_factory=list)
    closed: bool = False

    def artefact_kind(self, name: str) -> str | None:
        return self.artefacts.get(name)

    def admin(self) -> str:
        return self.admin_address

    def version(self, ref: VersionRef) -> VersionState | None:
        return self.versions.get((ref.artefact, ref.digest))

    def kind(self, name: str) -> Kind | None:
        return self.kinds.get(name)

    def version_words(self, refs: Sequence[VersionRef]) -> list[int]:
        return [0 for _ in refs]

    def kind_names(self) -> tuple[str, ...]:
        return tuple(self.kinds)

    def role_names(self) -> tuple[str, ...]:
        return self.role_list

    def roles_of(self, account: str) -> tuple[str, ...]:
        return self.roles.get(account, ())

    def history(self, from_block: int = 0) -> list[ChainEvent]:
        return [e for e in self.events if e.block >= from_block]

    def tx_status(self, tx_hash: str) -> Receipt | None:
        return None

    def block_hash(self, number: int) -> str | None:
        return None

    def deployment(self, tx_hash: str | None = None) -> Deployment | None:
        return None

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeStore:
    """A content store holding raw bytes by CID (single blocks only)."""

    blocks: dict[str, bytes] = field(default_factory=dict)

    def put_bytes(self, data: bytes) -> str:
        cid = bytes_cid(data)
        self.blocks[cid] = data
        return cid

    def cat(self, cid: str, *, limit: int = 1 << 26) -> bytes:
        if cid not in self.blocks:
            raise ContentNotFoundError(f"{cid} is not in the store")
        return self.blocks[cid][:limit]

    def has(self, cid: str) -> bool:
        return cid in self.blocks

    def check(self, cid: str) -> None:
        if bytes_cid(self.cat(cid)) != cid:
            raise ContentNotFoundError(f"{cid} does not hash to its CID")

    def get(self, cid: str, dest: Path) -> None:
        dest.write_bytes(self.cat(cid))

    def unpushed(self) -> list[str]:
        return []

    def flush(self) -> list[str]:
        return []


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
