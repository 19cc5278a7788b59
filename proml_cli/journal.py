"""The local journal: every record and its pending transaction is written here before submission.

Two-phase recording: ``run`` writes the entry (fsynced) before it talks to the chain, and moves
it to ``done/`` only once the transaction is mined. If the chain or the store is unreachable, or
the process dies, the entry stays in ``pending/`` and ``proml sync`` finishes it. The record's
CID is the idempotency key: sync first looks for an event carrying that CID and never submits
the same record twice. Entries the contract refused move to ``refused/`` (kept for audit).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proml_cli.ledger import Move, Registration, VersionRef
from proml_cli.record import canonical_bytes

PENDING = "pending"
DONE = "done"
REFUSED = "refused"


@dataclass(frozen=True)
class Entry:
    """One journaled submission: the record (canonical JSON) and the operations anchoring it."""

    record_cid: str
    record: dict[str, Any]
    registrations: tuple[Registration, ...]
    moves: tuple[Move, ...]
    created: str

    @property
    def record_bytes(self) -> bytes:
        """The record's canonical bytes (what its CID addresses)."""
        return canonical_bytes(self.record)

    def to_json(self) -> dict[str, Any]:
        """The entry as stored on disk."""
        return {
            "schema_version": 1,
            "record_cid": self.record_cid,
            "created": self.created,
            "record": self.record,
            "registrations": [
                {
                    "artefact": r.version.artefact,
                    "digest": r.version.digest,
                    "cid": r.cid,
                    "inputs": [{"artefact": i.artefact, "digest": i.digest} for i in r.inputs],
                }
                for r in self.registrations
            ],
            "moves": [
                {
                    "artefact": m.version.artefact,
                    "digest": m.version.digest,
                    "transition": m.transition,
                }
                for m in self.moves
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        """Read an entry back."""
        return cls(
            record_cid=str(data["record_cid"]),
            record=dict(data["record"]),
            registrations=tuple(
                Registration(
                    VersionRef(r["artefact"], r["digest"]),
                    r["cid"],
                    tuple(VersionRef(i["artefact"], i["digest"]) for i in r["inputs"]),
                )
                for r in data["registrations"]
            ),
            moves=tuple(
                Move(VersionRef(m["artefact"], m["digest"]), m["transition"]) for m in data["moves"]
            ),
            created=str(data["created"]),
        )


class Journal:
    """The journal directory of one project (``.proml/journal``)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, state: str, record_cid: str) -> Path:
        return self._root / state / f"{record_cid}.json"

    def write(self, entry: Entry) -> Path:
        """Durably write ``entry`` as pending (temp file, fsync, rename, fsync the directory)."""
        path = self._path(PENDING, entry.record_cid)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as handle:
            json.dump(entry.to_json(), handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return path

    def pending(self) -> list[Entry]:
        """Pending entries, oldest first."""
        directory = self._root / PENDING
        if not directory.is_dir():
            return []
        entries = [Entry.from_json(json.loads(p.read_text())) for p in directory.glob("*.json")]
        return sorted(entries, key=lambda e: e.created)

    def mark(self, record_cid: str, state: str, *, tx_hash: str | None = None) -> None:
        """Move a pending entry to ``done`` or ``refused``."""
        source = self._path(PENDING, record_cid)
        if not source.exists():
            return
        target = self._path(state, record_cid)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(source.read_text())
        if tx_hash:
            data["tx_hash"] = tx_hash
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, target)
        source.unlink()
        _fsync_dir(source.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
