"""Provenance records: the off-chain JSON documents whose CIDs the ledger anchors.

A record is serialised as canonical JSON (keys sorted, no insignificant whitespace, UTF-8, no
NaN), so the same record always has the same bytes and therefore the same CID. The record
names the versions it concerns, so anyone holding it can check it belongs to an on-chain event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar

from proml_cli.digest import bare, prefixed
from proml_cli.errors import ContentError

RECORD_TYPE_RUN = "https://proml.dev/record/run/v1"
RECORD_TYPE_DECISION = "https://proml.dev/record/decision/v1"
RECORD_TYPES = (RECORD_TYPE_RUN, RECORD_TYPE_DECISION)


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """The one byte serialisation of a record: sorted keys, compact separators, UTF-8."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def utc_now() -> str:
    """The current time as RFC 3339 UTC with microseconds."""
    return rfc3339(datetime.now(timezone.utc))


def rfc3339(moment: datetime) -> str:
    """A datetime as RFC 3339 UTC (``...Z``)."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def from_timestamp(seconds: int) -> str:
    """A UNIX timestamp (a block's) as RFC 3339 UTC."""
    return rfc3339(datetime.fromtimestamp(seconds, timezone.utc))


@dataclass(frozen=True)
class FileEntry:
    """A material or product of a run: where it was, what it was, which version it is."""

    path: str
    sha256: str
    cid: str
    size: int
    type: str
    artefact: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as it appears in a record."""
        entry: dict[str, Any] = {
            "path": self.path,
            "sha256": prefixed(self.sha256),
            "cid": self.cid,
            "size": self.size,
            "type": self.type,
        }
        if self.artefact is not None:
            entry["artefact"] = self.artefact
        return entry

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> FileEntry:
        """An entry as a record holds it (``sha256:<hex>``; ``artefact`` optional).

        Raises:
            KeyError / TypeError / ValueError: a required field is missing or mistyped.
        """
        artefact = entry.get("artefact")
        return cls(
            path=str(entry["path"]),
            sha256=bare(str(entry["sha256"])),
            cid=str(entry["cid"]),
            size=int(entry["size"]),
            type=str(entry["type"]),
            artefact=str(artefact) if artefact is not None else None,
        )


def _entries(items: object, cid: str, what: str) -> tuple[FileEntry, ...]:
    if not isinstance(items, list):
        raise ContentError(f"record {cid}: {what} is not a list")
    try:
        return tuple(FileEntry.from_json(item) for item in items)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ContentError(f"record {cid}: a {what} entry is malformed ({exc})") from exc


@dataclass(frozen=True)
class RunRecord:
    """The record of a step's run (``proml run``, or an in-process step).

    Attributes:
        project, step: the policy's project name and the step's.
        command: the command as typed (for an in-process step, how the interpreter started).
        cwd: the working directory relative to the project (None outside it).
        started, ended: RFC 3339 UTC times.
        exit_code: the command's exit status (0: only successful runs are recorded).
        materials, products: the inputs checked and the outputs registered.
        params, metrics: the policy's captured files (entries, or ``{"path", "missing"}``).
        policy_digest: the policy's digest when the run was recorded.
        actor: the signing address.
        extra: every other field, as read (``git``, ``environment``, ``logged_params``,
            ``logged_metrics``, and fields of later versions), kept so the bytes round-trip.
    """

    TYPE: ClassVar[str] = RECORD_TYPE_RUN

    project: str
    step: str
    command: tuple[str, ...]
    cwd: str | None
    started: str
    ended: str
    exit_code: int
    materials: tuple[FileEntry, ...]
    products: tuple[FileEntry, ...]
    params: tuple[dict[str, Any], ...]
    metrics: tuple[dict[str, Any], ...]
    policy_digest: str
    actor: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def logged_params(self) -> dict[str, Any]:
        """Parameters an in-process step logged (empty for a command's run)."""
        return dict(self.extra.get("logged_params") or {})

    @property
    def logged_metrics(self) -> dict[str, Any]:
        """Metrics an in-process step logged (empty for a command's run)."""
        return dict(self.extra.get("logged_metrics") or {})

    def to_json(self) -> dict[str, Any]:
        """The record document (serialise it with :func:`canonical_bytes`)."""
        return {
            "type": self.TYPE,
            "project": self.project,
            "step": self.step,
            "command": list(self.command),
            "cwd": self.cwd,
            "started": self.started,
            "ended": self.ended,
            "exit_code": self.exit_code,
            "materials": [m.to_json() for m in self.materials],
            "products": [p.to_json() for p in self.products],
            "params": [dict(e) for e in self.params],
            "metrics": [dict(e) for e in self.metrics],
            "policy_digest": self.policy_digest,
            "actor": self.actor,
            **self.extra,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any], *, cid: str = "?") -> RunRecord:
        """The typed view of a run record.

        Raises:
            ContentError: not a run record, or a field is missing or mistyped.
        """
        return _typed(
            cls,
            document,
            cid,
            "run",
            _RUN_FIELDS,
            lambda d: {
                "project": str(d["project"]),
                "step": str(d["step"]),
                "command": tuple(str(t) for t in d["command"]),
                "cwd": None if d["cwd"] is None else str(d["cwd"]),
                "started": str(d["started"]),
                "ended": str(d["ended"]),
                "exit_code": int(d["exit_code"]),
                "materials": _entries(d["materials"], cid, "material"),
                "products": _entries(d["products"], cid, "product"),
                "params": tuple(dict(e) for e in d["params"]),
                "metrics": tuple(dict(e) for e in d["metrics"]),
                "policy_digest": str(d["policy_digest"]),
                "actor": str(d["actor"]),
            },
        )


_RUN_FIELDS = (
    "type",
    "project",
    "step",
    "command",
    "cwd",
    "started",
    "ended",
    "exit_code",
    "materials",
    "products",
    "params",
    "metrics",
    "policy_digest",
    "actor",
)


@dataclass(frozen=True)
class DecisionRecord:
    """The record of a human decision (``proml transition``) on one version.

    Attributes:
        project: the policy's project name.
        transition: the transition fired.
        subject: the version decided on (its file, digest, CID and artefact).
        note: why, as given (None without one).
        decided: RFC 3339 UTC time.
        policy_digest: the policy's digest when the decision was recorded.
        actor: the signing address.
        extra: every other field, as read (fields of later versions).
    """

    TYPE: ClassVar[str] = RECORD_TYPE_DECISION

    project: str
    transition: str
    subject: FileEntry
    note: str | None
    decided: str
    policy_digest: str
    actor: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record document (serialise it with :func:`canonical_bytes`)."""
        return {
            "type": self.TYPE,
            "project": self.project,
            "transition": self.transition,
            "subject": self.subject.to_json(),
            "note": self.note,
            "decided": self.decided,
            "policy_digest": self.policy_digest,
            "actor": self.actor,
            **self.extra,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any], *, cid: str = "?") -> DecisionRecord:
        """The typed view of a decision record.

        Raises:
            ContentError: not a decision record, or a field is missing or mistyped.
        """
        return _typed(
            cls,
            document,
            cid,
            "decision",
            _DECISION_FIELDS,
            lambda d: {
                "project": str(d["project"]),
                "transition": str(d["transition"]),
                "subject": _entries([d["subject"]], cid, "subject")[0],
                "note": None if d["note"] is None else str(d["note"]),
                "decided": str(d["decided"]),
                "policy_digest": str(d["policy_digest"]),
                "actor": str(d["actor"]),
            },
        )


_DECISION_FIELDS = (
    "type",
    "project",
    "transition",
    "subject",
    "note",
    "decided",
    "policy_digest",
    "actor",
)

_R = TypeVar("_R", "RunRecord", "DecisionRecord")


def _typed(
    cls: type[_R],
    document: Mapping[str, Any],
    cid: str,
    what: str,
    fields: tuple[str, ...],
    values: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> _R:
    """The typed record ``cls`` from ``document``: its ``fields`` converted by ``values``.

    Every field not in ``fields`` is kept in ``extra``, so the bytes round-trip.

    Raises:
        ContentError: not a ``what`` record, or a field is missing or mistyped.
    """
    if document.get("type") != cls.TYPE:
        raise ContentError(f"record {cid} is not a {what} record")
    try:
        converted = values(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise ContentError(
            f"record {cid}: a {what} record field is missing or malformed ({exc})"
        ) from exc
    extra = {k: v for k, v in document.items() if k not in fields}
    return cls(**converted, extra=extra)


Record = RunRecord | DecisionRecord


def read_record(data: bytes, *, cid: str) -> Record:
    """A stored record, parsed (see :func:`parse_record`) into its typed model.

    Raises:
        ContentError: not a canonical proml record, or a field is missing or malformed.
    """
    document = parse_record(data, cid=cid)
    if document["type"] == RECORD_TYPE_RUN:
        return RunRecord.from_json(document, cid=cid)
    return DecisionRecord.from_json(document, cid=cid)


def parse_record(data: bytes, *, cid: str) -> dict[str, Any]:
    """Parse a stored record and check it is one of ours.

    Raises:
        ContentError: not canonical JSON of a known record type.
    """
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContentError(f"record {cid} is not JSON") from exc
    if not isinstance(document, dict) or document.get("type") not in RECORD_TYPES:
        raise ContentError(f"record {cid} is not a proml record")
    if canonical_bytes(document) != data:
        raise ContentError(f"record {cid} is not in canonical form")
    return document


def versions_in(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (artefact, sha256 hex) version a record names as a product or a decision subject."""
    found = set()
    for entry in document.get("products", []):
        if entry.get("artefact"):
            found.add((str(entry["artefact"]), bare(str(entry["sha256"]))))
    subject = document.get("subject")
    if isinstance(subject, dict):
        found.add((str(subject["artefact"]), bare(str(subject["sha256"]))))
    for entry in document.get("materials", []):
        if entry.get("artefact"):
            found.add((str(entry["artefact"]), bare(str(entry["sha256"]))))
    return found
