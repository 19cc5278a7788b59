"""Storing a new file into a store that already holds 1,000 packs vs into an empty store.

Usage: ``python bench/store_packs.py [--packs 1000] [--size-mib 256] [--rounds 5] [--quick]
[--compare TREE]``.

The full store is built first: ``--packs`` separate imports of a small file (one 256 KiB leaf
in a pack each, so each import makes one pack and its index), by this tree's code. Then, per
round and interleaved, a fresh file of random bytes (written and flushed untimed, page cache
warm) is stored into a new empty store and into the full one, each by ``put_path`` in a fresh
process of the tree measured (its start and imports untimed: the figure is the store's own
work, as in a ``proml run``). The full store is put back as it was after each trial, untimed:
its new pack removed (the empty store is deleted too, so neither trial leaves the other more
dirty pages to write back), its combined index and pack log restored.
``--compare TREE`` also runs another proml checkout (e.g. the previous code) the same way,
interleaved with this one.
Prints one JSON object: the medians and the full/empty ratio (target: at most 1.1), per tree
(also the median of each round's own ratio: this machine's slow spells come and go faster
than a round, so it pairs trials run seconds apart),
and ``median_scan_ms``: after each put, what a fresh store object's first scan of the pack
indexes costs (the part of a put that grows with the packs; steadier than the whole put on a
busy machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, interleaved, load_average, median, ratio

from proml_cli.content import open_store

LIMIT = 1.1
#: What the store keeps beside ``packs/`` (this tree's combined pack index and pack log).
BESIDE = ("packs.midx", "packs.log")

#: Run in a fresh process of the tree measured: store the file and print the seconds it took,
#: then the seconds a new store object takes to find every pack entry (its first scan).
PUT = """
import sys, time
from pathlib import Path
from proml_cli.content import open_store
store = open_store("embedded", root=Path(sys.argv[1]))
start = time.perf_counter()
store.put_path(Path(sys.argv[2]))
print(time.perf_counter() - start)
store = open_store("embedded", root=Path(sys.argv[1]))
start = time.perf_counter()
store._refresh_indexes()
print(time.perf_counter() - start)
"""


def _random_file(path: Path, size: int) -> None:
    """Fresh random bytes, flushed to disk: their writeback does not land in a timed put."""
    with path.open("wb") as out:
        while size > 0:
            piece = os.urandom(min(size, 8 << 20))
            out.write(piece)
            size -= len(piece)
        out.flush()
        os.fsync(out.fileno())


def _paired(full: list[float], empty: list[float]) -> float:
    """The median of each round's full/empty ratio (two trials side by side in time)."""
    return round(statistics.median(a / b for a, b in zip(full, empty, strict=True)), 3)


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def _put(tree: Path, root: Path, source: Path, scans: list[float]) -> float:
    """Store ``source`` into ``root`` in a fresh process of ``tree``; the seconds it took.

    The seconds a fresh store object then takes to scan the pack indexes go to ``scans``.
    """
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", PUT, str(root), str(source)],
        cwd=tree,  # `python -c` puts the working directory first on sys.path
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    put, scan = done.stdout.split()
    scans.append(float(scan))
    return float(put)


def main() -> int:
    """Build the full store, measure, print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packs", type=int, default=1000)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a 32 MiB file, 2 rounds")
    parser.add_argument(
        "--compare", type=Path, default=None, help="also run this proml tree, interleaved"
    )
    args = parser.parse_args()
    size = (32 if args.quick else args.size_mib) << 20
    rounds = 2 if args.quick else args.rounds
    trees = {"": ROOT} if args.compare is None else {"": ROOT, "compare_": args.compare}
    with tempfile.TemporaryDirectory(prefix="proml-store-packs-") as tmp:
        work = Path(tmp)
        full = work / "full"
        small = work / "small.bin"
        started = time.perf_counter()
        for _ in range(args.packs):
            _random_file(small, 2 * 200 * 1024)  # a 256 KiB leaf (packed) and a small one
            open_store("embedded", root=full).put_path(small)
        build = time.perf_counter() - started
        packs = len(list((full / "packs").glob("*.pack")))
        print(f"store_packs: {packs} packs built in {build:.1f} s", file=sys.stderr)
        source = work / "new.bin"
        empties: list[Path] = []
        scans: dict[str, list[float]] = {}

        def into_full(tree: Path, name: str) -> float:
            before = set((full / "packs").iterdir())
            kept = {name: _read(full / name) for name in BESIDE}
            _random_file(source, size)  # new bytes each time: every leaf is new
            seconds = _put(tree, full, source, scans.setdefault(name, []))
            # Back to --packs packs, untimed: the empty store is deleted after its trial too,
            # so neither trial leaves the other more dirty pages to write back.
            for path in set((full / "packs").iterdir()) - before:
                path.unlink()
            for name, data in kept.items():
                if data is None:
                    (full / name).unlink(missing_ok=True)
                elif _read(full / name) != data:
                    (full / name).write_bytes(data)
            return seconds

        def into_empty(tree: Path, name: str) -> float:
            for old in empties:
                shutil.rmtree(old, ignore_errors=True)
            empties.append(Path(tempfile.mkdtemp(prefix="empty-", dir=work)))
            _random_file(source, size)
            return _put(tree, empties[-1], source, scans.setdefault(name, []))

        trials: dict[str, Callable[[], float]] = {}
        for prefix, tree in trees.items():
            trials[f"{prefix}empty"] = partial(into_empty, tree, f"{prefix}empty")
            trials[f"{prefix}full"] = partial(into_full, tree, f"{prefix}full")
        times = interleaved(trials, rounds)
    medians = {name: median(values) for name, values in times.items()}
    report: dict[str, object] = {
        "size_bytes": size,
        "packs": packs,
        "median_seconds": medians,
        "full_vs_empty": ratio(medians["full"], medians["empty"]),
        "limit": LIMIT,
        "full_vs_empty_paired": _paired(times["full"], times["empty"]),
        "median_scan_ms": {name: round(median(values) * 1000, 2) for name, values in scans.items()},
    }
    if args.compare is not None:
        report["compared_tree"] = str(args.compare)
        report["compared_tree_full_vs_empty"] = ratio(
            medians["compare_full"], medians["compare_empty"]
        )
        report["compared_tree_full_vs_empty_paired"] = _paired(
            times["compare_full"], times["compare_empty"]
        )
    report |= {"runs": times, "build_seconds": round(build, 1), "load_average": load_average()}
    print(json.dumps(report, indent=1))
    return 0 if report["full_vs_empty"] <= LIMIT else 1  # type: ignore[operator]


if __name__ == "__main__":
    sys.exit(main())
