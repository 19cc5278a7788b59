"""How long the embedded chain takes to open as it grows: 100, 1,000 and 10,000 transactions.

Usage: ``python bench/chain_load.py [--sizes 100,1000,10000] [--repeat 3]``.

One chain is grown in a temporary directory by real, separate transactions (no batches),
alternating a registration (derived from the previous version) and a transition, so the state
holds N ledger transactions besides the few that set the project up. At each size the ledger is
closed and a fresh Python process opens it and reads one version; that process reports the
time of ``open_ledger`` plus the read (imports excluded, they are timed apart) and the time
``history()`` takes to decode every event. The median of ``--repeat`` processes is kept.

Prints one JSON object on stdout; progress goes to stderr. Exits 1 when opening the largest
chain takes a second or more (the target is "well under a second").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Opening the ledger must stay well under this, whatever the chain's length (seconds).
LOAD_LIMIT = 1.0
ARTEFACT = "train-set"


def _digest(i: int) -> str:
    return hashlib.sha256(f"chain-load version {i}".encode()).hexdigest()


def _cid(data: bytes) -> str:
    """CIDv1 raw sha2-256 in base32 lower, as kubo prints it."""
    import base64

    binary = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def _setup(ledger: Any, admin: Any) -> None:
    from proml_cli.ledger import Kind, Transition

    ledger.define_roles(["data-admin"])
    ledger.define_kind(
        Kind.of(
            "dataset",
            ("raw", "validated", "rejected"),
            "raw",
            ("data-admin",),
            (
                Transition("validate", ("raw",), "validated", ("data-admin",)),
                Transition("reject", ("raw", "validated"), "rejected", ("data-admin",)),
            ),
        )
    )
    ledger.define_artefacts({ARTEFACT: "dataset"})
    ledger.grant_role("data-admin", admin.address)


def _operation(ledger: Any, i: int) -> None:
    """Transaction ``i`` (0-based): even ones register a version, odd ones validate it."""
    from proml_cli.ledger import Move, Registration, VersionRef

    n = i // 2
    ref = VersionRef(ARTEFACT, _digest(n))
    record = _cid(f"record {i}".encode())
    if i % 2 == 0:
        inputs = (VersionRef(ARTEFACT, _digest(n - 1)),) if n else ()
        ledger.submit(record, [Registration(ref, _cid(f"content {n}".encode()), inputs)], [])
    else:
        ledger.submit(record, [], [Move(ref, "validate")])


def _db_bytes(state_dir: Path) -> int:
    return sum(p.stat().st_size for p in state_dir.glob("chain.sqlite*"))


def _measure_once(state_dir: Path, address: str, key: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure", str(state_dir), address],
        input=key,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def measure(state_dir: Path, address: str, key: str) -> None:
    """In a fresh process: time the imports, open + one read, and history(); print JSON."""
    started = time.perf_counter()
    from eth_account import Account

    from proml_cli.ledger import ChainConfig, VersionRef, open_ledger
    from proml_cli.ledger._embedded import open_embedded  # noqa: F401 - timed with imports

    imported = time.perf_counter()
    signer = Account.from_key(key)
    with open_ledger(ChainConfig(state_dir=state_dir), signer=signer, address=address) as ledger:
        state = ledger.version(VersionRef(ARTEFACT, _digest(0)))
        opened = time.perf_counter()
        events = ledger.history()
        decoded = time.perf_counter()
    assert state is not None  # noqa: S101 - the chain holds version 0
    print(
        json.dumps(
            {
                "import_seconds": imported - started,
                "load_seconds": opened - imported,
                "history_seconds": decoded - opened,
                "events": len(events),
            }
        )
    )


def run(sizes: list[int], repeat: int) -> int:
    """Grow one chain through ``sizes`` and measure it at each; print the JSON report."""
    from eth_account import Account

    from proml_cli.ledger import ChainConfig, open_ledger

    admin = Account.create()
    report: dict[str, dict[str, float]] = {
        "load_seconds": {},
        "history_seconds": {},
        "import_seconds": {},
        "db_bytes": {},
        "events": {},
        "build_seconds_per_tx": {},
    }
    with tempfile.TemporaryDirectory(prefix="proml-chain-load-") as tmp:
        state_dir = Path(tmp)
        config = ChainConfig(state_dir=state_dir)
        with open_ledger(config, signer=admin) as ledger:
            _setup(ledger, admin)
            address = ledger.address
        done = 0
        for size in sorted(sizes):
            started = time.perf_counter()
            with open_ledger(config, signer=admin, address=address) as ledger:
                for i in range(done, size):
                    _operation(ledger, i)
                    if (i + 1) % 500 == 0:
                        print(f"chain_load: {i + 1} transactions", file=sys.stderr)
            if size > done:
                report["build_seconds_per_tx"][str(size)] = (time.perf_counter() - started) / (
                    size - done
                )
            done = max(done, size)
            runs = [_measure_once(state_dir, address, admin.key.hex()) for _ in range(repeat)]
            for field in ("load_seconds", "history_seconds", "import_seconds"):
                report[field][str(size)] = round(statistics.median(r[field] for r in runs), 4)
            report["events"][str(size)] = runs[0]["events"]
            report["db_bytes"][str(size)] = _db_bytes(state_dir)
            print(f"chain_load: {size}: {json.dumps(runs)}", file=sys.stderr)
    per_tx = {n: round(seconds, 4) for n, seconds in report["build_seconds_per_tx"].items()}
    notes = {
        "transactions": "N separate ledger transactions (register/transition alternating) "
        "after 6 set-up transactions",
        "load_seconds": "open_ledger + one versionOf read in a fresh process, imports excluded; "
        f"median of {repeat}",
        "load_limit_seconds": LOAD_LIMIT,
    }
    print(json.dumps({**report, "build_seconds_per_tx": per_tx, "notes": notes}, indent=1))
    largest = str(max(sizes))
    return 0 if report["load_seconds"][largest] < LOAD_LIMIT else 1


def main() -> int:
    """Parse arguments, then build and measure (or, with --measure, measure one chain)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated tx counts")
    parser.add_argument("--repeat", type=int, default=3, help="measuring processes per size")
    parser.add_argument(
        "--measure", nargs=2, metavar=("STATE_DIR", "ADDRESS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        measure(Path(args.measure[0]), args.measure[1], sys.stdin.read().strip())
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or args.repeat < 1:
        parser.error("--sizes needs positive integers and --repeat at least 1")
    return run(sizes, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
