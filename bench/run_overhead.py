"""What `proml run` adds to a tiny wrapped command on the embedded default.

Usage: ``python bench/run_overhead.py [--runs 5]``. Builds a one-step project in a temporary
directory, then times, in the same script, the bare command and the same command under
``proml run`` (which checks, records and anchors it), and ``proml hash`` (no chain). Prints
one JSON object: medians in seconds and the ratios against the bare command. For scale, the
brief measured ``in-toto-run`` adding ~0.1 s to a tiny step on these machines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POLICY = """\
version: 1
project: overhead
roles: [developer]
kinds:
  blob:
    states: [made]
    initial: made
    register: [developer]
    consumable: [made]
artefacts:
  out: {kind: blob, path: out.txt}
steps:
  make: {command: python make.py, produces: [out]}
"""
SCRIPT = 'import os\nopen("out.txt", "w").write(os.urandom(8).hex())\n'


def _time(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    """Run the benchmark and print its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    proml = [sys.executable, "-m", "proml_cli"]
    with tempfile.TemporaryDirectory(prefix="proml-overhead-") as tmp:
        root = Path(tmp)
        (root / "proml.yaml").write_text(POLICY)
        (root / "make.py").write_text(SCRIPT)
        bindir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.pop("PROML_CHAIN_URL", None)
        env.pop("PROML_IPFS_URL", None)
        subprocess.run([*proml, "init"], cwd=root, env=env, check=True, capture_output=True)
        bare, wrapped, hashed = [], [], []
        for _ in range(args.runs):  # interleaved: a busy neighbour slows all three alike
            bare.append(_time(["python", "make.py"], root, env))
            wrapped.append(_time([*proml, "run", "--", "python", "make.py"], root, env))
            hashed.append(_time([*proml, "hash", "out.txt"], root, env))
        imports = _time([sys.executable, "-c", "import web3, eth_account, eth_tester"], root, env)
    report = {
        "bare_seconds": round(statistics.median(bare), 3),
        "run_seconds": round(statistics.median(wrapped), 3),
        "run_overhead_seconds": round(statistics.median(wrapped) - statistics.median(bare), 3),
        "run_ratio_vs_bare": round(statistics.median(wrapped) / statistics.median(bare), 2),
        "hash_seconds": round(statistics.median(hashed), 3),
        "chain_imports_seconds": round(imports, 3),
        "runs": args.runs,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
