"""The local journal: every record and its pending transaction is written here before submission.

Two-phase recording: ``run`` writes the entry (fsynced) before it talks to the chain, and moves
it to ``done/`` only once the transaction is mined. If the chain or the store is unreachable, or
the process dies, the entry stays in ``pending/`` and ``proml sync`` finishes it. The record's
CID is the idempotency key: sync first looks for an event carrying that CID and never submits
the same record twice. Entries the contract refused move to ``refused/`` (kept for audit).

An entry that cannot be read back (garbage, a torn write, a wrong shape) is never fatal to the
others: :meth:`Journal.pending` moves it to ``quarantine/`` with a note of what was wrong, and
returns the readable ones. Nothing is deleted: a person (or ``proml fsck``) decides.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proml_cli.errors import InputError, JournalError
from proml_cli.ledger import Move, Registration, VersionRef
from proml_cli.record import canonical_bytes

logger = logging.getLogger(__name__)

PENDING = "pending"
DONE = "done"
REFUSED = "refused"
QUARANTINE = "quarantine"
#: The directories holding entries, in the order they are checked.
STATES = (PENDING, DONE, REFUSED)


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
    def from_json(cls, data: object) -> Entry:
        """Read an entry back, checking its shape.

        Raises:
            ValueError: the document is not a journal entry (the message says what is wrong).
        """
        entry = _object(data, "the entry")
        record = _object(entry.get("record"), "record")
        return cls(
            record_cid=_text(entry, "record_cid"),
            record=record,
            registrations=tuple(
                Registration(
                    _version(r, f"registrations[{n}]"),
                    _text(r, "cid", f"registrations[{n}]"),
                    tuple(
                        _version(i, f"registrations[{n}].inputs[{k}]")
                        for k, i in enumerate(_list(r, "inputs", f"registrations[{n}]"))
                    ),
                )
                for n, r in enumerate(_list(entry, "registrations"))
            ),
            moves=tuple(
                Move(_version(m, f"moves[{n}]"), _text(m, "transition", f"moves[{n}]"))
                for n, m in enumerate(_list(entry, "moves"))
            ),
            created=_text(entry, "created"),
        )


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} is {_shape(value)}, not an object")
    return value


def _list(data: object, key: str, where: str = "") -> list[Any]:
    value = _object(data, where or "the entry").get(key)
    if not isinstance(value, list):
        raise ValueError(f"{where + '.' if where else ''}{key} is {_shape(value)}, not a list")
    return value


def _text(data: object, key: str, where: str = "") -> str:
    value = _object(data, where or "the entry").get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where + '.' if where else ''}{key} is {_shape(value)}, not a string")
    return value


def _version(data: object, where: str) -> VersionRef:
    digest = _text(data, "digest", where)
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{where}.digest is not a sha256 in hex")
    return VersionRef(_text(data, "artefact", where), digest)


def _shape(value: object) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str) and not value:
        return "empty"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


def read_entry(path: Path) -> Entry:
    """Read one journal file.

    Raises:
        ValueError: the file is unreadable or not a journal entry (the message says why).
    """
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ValueError("is a directory, not a file") from None
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror or exc}") from exc
    if not raw.strip():
        raise ValueError("is empty")
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise ValueError("is not text (not UTF-8)") from None
    except json.JSONDecodeError as exc:
        # A torn write ends inside the document: the parser runs off the end, or a string
        # opened near the end never closes.
        is_cut = exc.pos >= len(raw.rstrip()) or exc.msg.startswith("Unterminated string")
        if is_cut:
            raise ValueError("ends before its JSON document does (truncated)") from None
        raise ValueError(
            f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    try:
        entry = Entry.from_json(data)
    except ValueError as exc:
        raise ValueError(f"has the wrong shape: {exc}") from None
    if path.stem != entry.record_cid:
        raise ValueError(f"is named after {path.stem}, but holds record {entry.record_cid}")
    from proml_cli.content import bytes_cid

    try:
        actual = bytes_cid(entry.record_bytes)
    except ValueError as exc:  # NaN or infinity: not canonical JSON
        raise ValueError(f"holds a record that is not canonical JSON ({exc})") from None
    if actual != entry.record_cid:
        raise ValueError(f"holds a record whose CID is {actual}, not {entry.record_cid} (altered)")
    return entry


@dataclass(frozen=True)
class Quarantined:
    """A journal file set aside: where it was, what was wrong, where it is now."""

    path: Path
    problem: str
    moved_to: Path | None

    def describe(self, root: Path | None = None) -> str:
        """One line: the file, the problem and where it went."""
        where = _shown(self.path, root)
        moved = f"; moved to {_shown(self.moved_to, root)}" if self.moved_to else ""
        return f"journal entry {where} {self.problem}{moved}"


def _shown(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


class Journal:
    """The journal directory of one project (``.proml/journal``)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        #: Entries :meth:`pending` set aside during this object's life, in the order found.
        self.quarantined: list[Quarantined] = []

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
        """Readable pending entries, oldest first; unreadable ones are quarantined.

        Each file that cannot be read back as an entry is moved to ``quarantine/`` and listed
        in :attr:`quarantined`; the others are returned, so one bad file never blocks them.

        Raises:
            InputError: the journal directory itself is not a directory.
        """
        directory = self._root / PENDING
        if not directory.exists():
            return []
        if not directory.is_dir():
            raise InputError(f"{directory} is not a directory", hint="proml fsck")
        entries = []
        for path in sorted(directory.glob("*.json")):
            try:
                entries.append(read_entry(path))
            except ValueError as exc:
                self.quarantined.append(self.quarantine(path, str(exc)))
        return sorted(entries, key=lambda e: e.created)

    def quarantine(self, path: Path, problem: str) -> Quarantined:
        """Move an unreadable entry to ``quarantine/`` (with a note of why); never delete it.

        Raises:
            JournalError: the file cannot be moved.
        """
        target_dir = self._root / QUARANTINE
        target = target_dir / path.name
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            while target.exists():
                target = target_dir / f"{path.stem}.{secrets.token_hex(3)}{path.suffix}"
            os.replace(path, target)
            target.with_name(target.name + ".why").write_text(problem + "\n")
            _fsync_dir(path.parent)
        except OSError as exc:
            raise JournalError(
                f"cannot move the bad journal entry {path} to {target_dir}: {exc.strerror or exc}"
            ) from exc
        logger.info("journal entry %s %s: moved to %s", path, problem, target)
        return Quarantined(path, problem, target)

    def mark(self, record_cid: str, state: str, *, tx_hash: str | None = None) -> None:
        """Move a pending entry to ``done`` or ``refused``."""
        source = self._path(PENDING, record_cid)
        if not source.exists():
            return
        target = self._path(state, record_cid)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Read back as pending() read it (the file was checked then, and is ours since).
        data = json.loads(source.read_bytes())
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
