"""Peak memory of `proml run` around a step writing a large output (4 GiB by default).

Usage: ``python bench/memory.py [--size-mib 4096] [--quick]`` (``--quick``: 256 MiB).

In a fresh project on the embedded default, the wrapped command writes ``--size-mib`` MiB of
random bytes; proml hashes them, stores them and anchors the version. The peak resident set
size of the whole process tree (``wait4``'s ``ru_maxrss``: the largest of proml and the
command) is reported with two baselines measured the same way: the bare command and
``proml --help``. Prints one JSON object; exits 1 above ``LIMIT_MIB``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PROML, environment, load_average, make_project

LIMIT_MIB = 120


def peak(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv``; return (peak RSS of it and its descendants in MiB, wall seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return round(usage.ru_maxrss / 1024, 1), round(elapsed, 3)  # Linux: KiB


def main() -> int:
    """Measure and print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=4096)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    size = (256 if args.quick else args.size_mib) << 20
    env = environment()
    with tempfile.TemporaryDirectory(prefix="proml-memory-") as tmp:
        project = make_project(Path(tmp) / "project", env)
        command = ["python", "make.py", str(size)]
        bare_mib, bare_s = peak(command, project, env)
        help_mib, _ = peak([*PROML, "--help"], project, env)
        run_mib, run_s = peak([*PROML, "run", "--", *command], project, env)
    report = {
        "size_bytes": size,
        "proml_run_peak_rss_mib": run_mib,
        "bare_command_peak_rss_mib": bare_mib,
        "proml_help_peak_rss_mib": help_mib,
        "proml_run_seconds": run_s,
        "bare_seconds": bare_s,
        "limit_mib": LIMIT_MIB,
        "load_average": load_average(),
    }
    print(json.dumps(report, indent=1))
    return 0 if run_mib <= LIMIT_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
