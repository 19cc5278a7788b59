"""Consensus encodings (RLP) of headers and receipts, rebuilt from a node's JSON answers.

A JSON-RPC node hands out blocks and receipts as JSON, but what a block hash and a receipts
root commit to are their RLP encodings. These functions rebuild them; the caller checks the
result against the hash or root (a field this code does not know makes the check fail, never
pass).
"""

from __future__ import annotations

from typing import Any

import rlp

#: Header fields in consensus order; those after ``nonce`` exist from a fork on, and are
#: encoded when the node reports them.
_BASE = (
    "parentHash",
    "sha3Uncles",
    "miner",
    "stateRoot",
    "transactionsRoot",
    "receiptsRoot",
    "logsBloom",
    "difficulty",
    "number",
    "gasLimit",
    "gasUsed",
    "timestamp",
    "extraData",
    "mixHash",
    "nonce",
)
_LATER = (
    "baseFeePerGas",
    "withdrawalsRoot",
    "blobGasUsed",
    "excessBlobGas",
    "parentBeaconBlockRoot",
    "requestsHash",
)
_INTS = {
    "difficulty",
    "number",
    "gasLimit",
    "gasUsed",
    "timestamp",
    "baseFeePerGas",
    "blobGasUsed",
    "excessBlobGas",
}


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def header_rlp(block: dict[str, Any]) -> bytes:
    """The RLP header of a block as ``eth_getBlockByNumber`` describes it."""
    fields: list[object] = []
    for name in _BASE + _LATER:
        if name not in block or block[name] is None:
            if name in _LATER:
                break
            raise ValueError(f"block has no {name}")
        value = block[name]
        fields.append(_int(value) if name in _INTS else _bytes(value))
    return bytes(rlp.encode(fields))


def receipt_rlp(receipt: dict[str, Any]) -> bytes:
    """A receipt as the receipts trie holds it: ``type ‖ rlp(...)`` (legacy: the bare list)."""
    logs = [
        [_bytes(log["address"]), [_bytes(t) for t in log["topics"]], _bytes(log["data"])]
        for log in receipt["logs"]
    ]
    body = bytes(
        rlp.encode(
            [
                b"\x01" if _int(receipt["status"]) == 1 else b"",
                _int(receipt["cumulativeGasUsed"]),
                _bytes(receipt["logsBloom"]),
                logs,
            ]
        )
    )
    kind = _int(receipt.get("type", 0) or 0)
    return body if kind == 0 else bytes([kind]) + body
