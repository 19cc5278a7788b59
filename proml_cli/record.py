"""Provenance records: the off-chain JSON documents whose CIDs the ledger anchors.

A record is serialised as canonical JSON (keys sorted, no insignificant whitespace, UTF-8, no
NaN), so the same record always has the same bytes and therefore the same CID. The record
names the versions it concerns, so anyone holding it can check it belongs to an on-chain event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

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
            "sha256": f"sha256:{self.sha256}",
            "cid": self.cid,
            "size": self.size,
            "type": self.type,
        }
        if self.artefact is not None:
            entry["artefact"] = self.artefact
        return entry


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
            found.add((str(entry["artefact"]), str(entry["sha256"]).removeprefix("sha256:")))
    subject = document.get("subject")
    if isinstance(subject, dict):
        found.add((str(subject["artefact"]), str(subject["sha256"]).removeprefix("sha256:")))
    for entry in document.get("materials", []):
        if entry.get("artefact"):
            found.add((str(entry["artefact"]), str(entry["sha256"]).removeprefix("sha256:")))
    return found
