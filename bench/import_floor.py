"""The floor under every proml command: Python's start and the imports each layer costs.

Usage: ``python bench/import_floor.py [--rounds 7] [--quick]``.

Each line below runs in a fresh interpreter (``python -c``), interleaved over ``--rounds``
rounds; the report gives the median wall time of each and what it adds over a bare start.
``node_client`` is all the ``proml`` process itself loads for a chain command that its
project's node runs. Beside them, ``proml status`` in a small project is timed with the
node warm, cold (stopped before, so the command starts it) and in-process (``PROML_NODE=off``),
with ``proml --help`` for scale.
``proml_cli._deferred.install()`` runs first where the line says ``deferred``, as proml does
before it imports the chain libraries. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PROML,
    ROOT,
    environment,
    interleaved,
    load_average,
    make_project,
    median,
    run,
)

DEFER = "from proml_cli import _deferred; _deferred.install(); "
LINES = {
    "python": "pass",
    "node_client": "import proml_cli.node.client",
    "typer_app": "import proml_cli._cli.app",
    "policy": "import proml_cli.policy",
    "eth_account": "import eth_account",
    "eth_account_deferred": DEFER + "import eth_account",
    "web3": "import web3",
    "web3_deferred": DEFER + "import web3",
    "py_evm_deferred": DEFER + "import eth.db.atomic, eth.chains.base",
    "embedded_ledger": "import proml_cli.ledger._embedded",
    "embedded_ledger_deferred": DEFER + "import proml_cli.ledger._embedded",
    "cli_and_embedded_ledger_deferred": DEFER
    + "import proml_cli._cli.app, proml_cli.policy, proml_cli.ledger._embedded",
}

#: What a chain command costs end to end in a small project, by where it runs (see main()).
COMMANDS = {
    "status_node_warm": ("status",),
    "status_node_cold": ("status",),
    "status_in_process": ("status",),
    "help": ("--help",),
}


def main() -> int:
    """Measure and print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    env = environment()
    trials: dict[str, Callable[[], float]] = {
        name: partial(run, [sys.executable, "-c", line], ROOT, env) for name, line in LINES.items()
    }
    with tempfile.TemporaryDirectory(prefix="proml-floor-") as tmp:
        project = make_project(Path(tmp) / "p", env)
        run([*PROML, "node", "start"], project, env)
        off = {**env, "PROML_NODE": "off"}

        def cold() -> float:
            run([*PROML, "node", "stop"], project, env)
            return run([*PROML, "status"], project, env)

        trials["status_node_warm"] = partial(run, [*PROML, "status"], project, env)
        trials["status_node_cold"] = cold
        trials["status_in_process"] = partial(run, [*PROML, "status"], project, off)
        trials["help"] = partial(run, [*PROML, "--help"], project, env)
        times = interleaved(trials, rounds)
        run([*PROML, "node", "stop"], project, env)
    medians = {name: median(values) for name, values in times.items()}
    report = {
        "median_seconds": medians,
        "over_python_start": {n: round(s - medians["python"], 4) for n, s in medians.items()},
        "lines": LINES,
        "commands": {name: " ".join(argv) for name, argv in COMMANDS.items()},
        "rounds": rounds,
        "load_average": load_average(),
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
