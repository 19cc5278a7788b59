"""Peak memory of `proml run` around a step writing a large output (4 GiB by default).

Usage: ``python bench/memory.py [--size-mib 4096] [--quick]`` (``--quick``: 256 MiB).

In a fresh project on the embedded default, the wrapped command writes ``--size-mib`` MiB of
random bytes; proml hashes them, stores them and anchors the version. The peak resident set
size of the whole process tree (``wait4``'s ``ru_maxrss``: the largest of proml and the
command) is reported with two baselines measured the same way: the bare command and
``proml --help``. Prints one JSON object; exits 1 above ``LIMIT_MIB``.

The step is measured twice: in one process (``PROML_NODE=off``), and as by default, where the
project's node hashes, stores and anchors while the ``proml`` process only runs the command:
there the figure is the larger of that process tree's peak and the node's (``VmHWM``).
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


def _node_peak(project: Path) -> float:
    """The peak RSS of the project's node so far (MiB), from ``/proc``."""
    pid = json.loads((project / ".proml" / "node.pid").read_text())["pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise SystemExit("no VmHWM for the node")


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
        off = {**env, "PROML_NODE": "off"}
        run_mib, run_s = peak([*PROML, "run", "--", *command], project, off)
        subprocess.run(
            [*PROML, "node", "start"], cwd=project, env=env, check=True, capture_output=True
        )
        client_mib, _ = peak([*PROML, "run", "--", *command], project, env)
        node_mib = _node_peak(project)
        subprocess.run(
            [*PROML, "node", "stop"], cwd=project, env=env, check=True, capture_output=True
        )
    report = {
        "size_bytes": size,
        "proml_run_peak_rss_mib": run_mib,
        "proml_run_with_node_peak_rss_mib": max(client_mib, node_mib),
        "with_node_client_and_command_peak_rss_mib": client_mib,
        "with_node_node_peak_rss_mib": node_mib,
        "bare_command_peak_rss_mib": bare_mib,
        "proml_help_peak_rss_mib": help_mib,
        "proml_run_seconds": run_s,
        "bare_seconds": bare_s,
        "limit_mib": LIMIT_MIB,
        "load_average": load_average(),
    }
    print(json.dumps(report, indent=1))
    return 0 if max(run_mib, client_mib, node_mib) <= LIMIT_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
