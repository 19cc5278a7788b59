"""The bundle file: one canonical JSON document, binary values as ``0x`` hex or base64.

Top level (``schema_version`` 1, ``format`` ``proml-bundle``):

* ``chain_id``, ``ledger`` (address), ``identity`` (``proml.lock``'s document, or null);
* ``subject``: ``{artefact, digest}`` of the bundled version; ``deep``: lineage included;
* ``anchor``: ``{number, hash}`` of the newest block, the one the state proofs are against;
* ``headers``: RLP block headers (hex), consecutive, oldest first, ending at the anchor;
* ``transactions``: per transaction ``{block, index, raw, tx_proof, receipt, receipt_proof}``:
  the signed transaction and its receipt as their blocks' tries hold them, and Merkle-Patricia
  proofs (lists of RLP trie nodes) of both against the header's roots;
* ``state``: ``{account_proof, versions: [{artefact, digest, proof}]}``: the ledger
  account against the anchor's state root, and each version's storage slot against the
  account's storage root (the slot is computed from the version, never read from the file);
* ``records``: ``{cid: base64}``, every provenance record the bundled steps anchor;
* ``content``: ``{cid, car}`` (base64 CAR of the subject's bytes) or null.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from proml_cli.errors import InputError

FORMAT = "proml-bundle"
SCHEMA_VERSION = 1


def version_slot(artefact: str, digest: str) -> bytes:
    """The storage slot of a version's word: keccak(version key ‖ slot of ``_versions``)."""
    from proml_cli.ledger import VersionRef
    from proml_cli.ledger._client import version_key
    from proml_cli.ledger._layout import VERSIONS_SLOT, mapping_slot

    return mapping_slot(version_key(VersionRef(artefact, digest)), VERSIONS_SLOT)


def materials(record: dict[str, Any]) -> set[tuple[str, str]]:
    """The (artefact, sha256 hex) versions a record's run used (its ``materials``)."""
    found = set()
    for entry in record.get("materials", []):
        if isinstance(entry, dict) and entry.get("artefact"):
            digest = str(entry.get("sha256", "")).removeprefix("sha256:")
            found.add((str(entry["artefact"]), digest))
    return found


def hexb(data: bytes) -> str:
    """Bytes as ``0x`` + hex."""
    return "0x" + data.hex()


def unhex(text: object, where: str) -> bytes:
    """``0x`` + hex back to bytes.

    Raises:
        InputError: not a hex string (naming ``where``).
    """
    if not isinstance(text, str) or not text.startswith("0x"):
        raise InputError(f"bundle: {where} is not a 0x-hex string")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as exc:
        raise InputError(f"bundle: {where} is not a 0x-hex string") from exc


def dump(document: dict[str, Any], dest: Path) -> int:
    """Write ``document`` to ``dest``; return its size in bytes."""
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    dest.write_bytes(data)
    return len(data)


def load(path: Path) -> dict[str, Any]:
    """Read a bundle and check its outer shape (the contents are checked by the verifier).

    Raises:
        InputError: unreadable, not JSON, not a bundle, or a newer format.
    """
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read the bundle ({exc.strerror})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a proml bundle (not JSON)") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InputError(f"{path}: not a proml bundle")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise InputError(
            f"{path}: bundle schema_version {document.get('schema_version')!r} is not "
            f"{SCHEMA_VERSION}",
            hint="verify it with the proml version that made it",
        )
    for key, kind in (
        ("chain_id", int),
        ("ledger", str),
        ("subject", dict),
        ("anchor", dict),
        ("headers", list),
        ("transactions", list),
        ("state", dict),
        ("records", dict),
    ):
        if not isinstance(document.get(key), kind):
            raise InputError(f"{path}: bundle field {key!r} is missing or not a {kind.__name__}")
    _shape(path, document)
    return document


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


_TX_FIELDS = {
    "block": int,
    "index": int,
    "raw": str,
    "receipt": str,
    "tx_proof": list,
    "receipt_proof": list,
}


def _shape(path: Path, document: dict[str, Any]) -> None:
    """Every nested field the verifier reads has its type (values are checked later)."""

    def need(ok: bool, where: str) -> None:
        if not ok:
            raise InputError(f"{path}: bundle field {where} is missing or malformed")

    ledger = str(document["ledger"])
    need(len(ledger) == 42 and ledger.startswith("0x") and _is_hex(ledger[2:]), "'ledger'")
    subject = document["subject"]
    need(all(isinstance(subject.get(k), str) for k in ("artefact", "digest")), "'subject'")
    need(all(isinstance(h, str) for h in document["headers"]), "'headers'")
    for i, entry in enumerate(document["transactions"]):
        need(isinstance(entry, dict), f"'transactions[{i}]'")
        for key, kind in _TX_FIELDS.items():
            need(isinstance(entry.get(key), kind), f"'transactions[{i}].{key}'")
        need(
            all(isinstance(n, str) for n in entry["tx_proof"] + entry["receipt_proof"]),
            f"'transactions[{i}]' proofs",
        )
    state = document["state"]
    need(isinstance(state.get("account_proof"), list), "'state.account_proof'")
    need(all(isinstance(n, str) for n in state["account_proof"]), "'state.account_proof'")
    need(isinstance(state.get("versions"), list), "'state.versions'")
    for i, item in enumerate(state["versions"]):
        need(
            isinstance(item, dict)
            and all(isinstance(item.get(k), str) for k in ("artefact", "digest"))
            and isinstance(item.get("proof"), list)
            and all(isinstance(n, str) for n in item["proof"]),
            f"'state.versions[{i}]'",
        )
    need(all(isinstance(v, str) for v in document["records"].values()), "'records'")
    content = document.get("content")
    need(
        content is None
        or (
            isinstance(content, dict)
            and all(isinstance(content.get(k), str) for k in ("cid", "car"))
        ),
        "'content'",
    )
    identity = document.get("identity")
    need(identity is None or isinstance(identity, dict), "'identity'")


def parse_trusted(text: str) -> tuple[int, bytes]:
    """``NUMBER:HASH`` → (number, 32-byte hash).

    Raises:
        InputError: not in that form.
    """
    number, _, hashpart = text.partition(":")
    try:
        value = int(number)
        raw = bytes.fromhex(hashpart.removeprefix("0x"))
    except ValueError:
        value, raw = -1, b""
    if value < 0 or len(raw) != 32:
        raise InputError(
            f"--trusted-block {text!r} is not NUMBER:HASH",
            hint="e.g. --trusted-block 42:0x<64 hex digits>, from a node or explorer you trust",
        )
    return value, raw
