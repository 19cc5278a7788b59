"""A receipt's block time, as nodes name it (or do not): only a time from the receipt's block."""

from __future__ import annotations

from proml_cli.ledger._rpc import _receipt_time

BLOCK = b"\x01" * 32
OTHER = b"\x02" * 32


def test_the_receipt_s_own_time_is_taken_as_integer_or_hex() -> None:
    assert _receipt_time({"blockHash": BLOCK, "blockTimestamp": 1700000000}) == 1700000000
    assert _receipt_time({"blockHash": BLOCK, "blockTimestamp": "0x6553f100"}) == 1700000000


def test_a_log_s_time_counts_only_from_the_receipt_s_block() -> None:
    log = {"blockHash": BLOCK, "blockTimestamp": "0x6553f100"}
    assert _receipt_time({"blockHash": BLOCK, "logs": [log]}) == 1700000000
    assert _receipt_time({"blockHash": OTHER, "logs": [log]}) is None


def test_no_time_or_a_malformed_one_leaves_it_to_the_header() -> None:
    assert _receipt_time({"blockHash": BLOCK, "logs": []}) is None
    assert _receipt_time({"blockHash": BLOCK, "blockTimestamp": "0xzz"}) is None
    assert _receipt_time({"blockHash": BLOCK, "blockTimestamp": True}) is None
