"""Storing a new file into a store that already holds 1,000 packs vs into an empty store.

Usage: ``python bench/store_packs.py [--packs 1000] [--size-mib 256] [--rounds 3] [--quick]``.

The full store is built first: ``--packs`` separate imports of a small file (two large
blocks each, so each import makes one pack and its index). Then, per round and interleaved,
a fresh file of random bytes (written untimed, page cache warm) is stored into a new empty
store and into the full one, through the embedded store's ``put_path`` in this process. The
full store's new pack is then removed (untimed), as the empty store is: neither trial leaves
the other more dirty pages to write back. Prints one JSON object: the medians and the
full/empty ratio (target: at most 1.1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import interleaved, load_average, median, ratio

from proml_cli.content import open_store

LIMIT = 1.1


def _random_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        while size > 0:
            piece = os.urandom(min(size, 8 << 20))
            out.write(piece)
            size -= len(piece)


def main() -> int:
    """Build the full store, measure, print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packs", type=int, default=1000)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a 32 MiB file, 2 rounds")
    args = parser.parse_args()
    size = (32 if args.quick else args.size_mib) << 20
    rounds = 2 if args.quick else args.rounds
    with tempfile.TemporaryDirectory(prefix="proml-store-packs-") as tmp:
        work = Path(tmp)
        full = work / "full"
        small = work / "small.bin"
        started = time.perf_counter()
        for _ in range(args.packs):
            _random_file(small, 2 * 200 * 1024)  # two 256 KiB-or-less leaves: one pack
            open_store("embedded", root=full).put_path(small)
        build = time.perf_counter() - started
        packs = len(list((full / "packs").glob("*.pack")))
        print(f"store_packs: {packs} packs built in {build:.1f} s", file=sys.stderr)
        source = work / "new.bin"
        empties: list[Path] = []

        def put(root: Path) -> float:
            _random_file(source, size)  # new bytes each time: every leaf is new
            store = open_store("embedded", root=root)
            start = time.perf_counter()
            store.put_path(source)
            return time.perf_counter() - start

        def into_full() -> float:
            before = set((full / "packs").iterdir())
            seconds = put(full)
            # Back to --packs packs, untimed: the empty store is deleted after its trial too,
            # so neither trial leaves the other more dirty pages to write back.
            for path in set((full / "packs").iterdir()) - before:
                path.unlink()
            return seconds

        def into_empty() -> float:
            for old in empties:
                shutil.rmtree(old, ignore_errors=True)
            empties.append(Path(tempfile.mkdtemp(prefix="empty-", dir=work)))
            return put(empties[-1])

        times = interleaved({"empty": into_empty, "full": into_full}, rounds)
    medians = {name: median(values) for name, values in times.items()}
    report = {
        "size_bytes": size,
        "packs": packs,
        "median_seconds": medians,
        "full_vs_empty": ratio(medians["full"], medians["empty"]),
        "limit": LIMIT,
        "runs": times,
        "load_average": load_average(),
    }
    print(json.dumps(report, indent=1))
    return 0 if report["full_vs_empty"] <= LIMIT else 1  # type: ignore[operator]


if __name__ == "__main__":
    sys.exit(main())
