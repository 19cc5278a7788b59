"""Confirmation latency on a chain with 1 s blocks: proml at 1 and 12 confirmations.

Usage: ``python bench/latency.py [--rounds 5] [--block-time 1] [--quick]``.

The paper's latency table, reproduced on anvil (``--block-time``, 127.0.0.1 only): for each
confirmation depth, a project whose policy asks for it, and per round (interleaved) the wall
time of ``proml transition`` (a fresh process: it reads the policy, signs, sends, waits for
the depth) against a floor, a fresh Python process that sends one transaction over raw
JSON-RPC and polls every 50 ms until the same depth. Each transition approves a version a
``proml run`` (untimed) registered just before. Prints one JSON object: the medians, what
each adds beyond ``block time x confirmations`` (target: at most 0.3 s for proml), and proml
against the floor.

proml runs as it does by default: the project's node is warm (the untimed ``proml run`` before
each transition starts it in the first round); ``PROML_NODE=off`` in the environment times the
in-process path instead.
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
    ANVIL_KEY,
    PROML,
    anvil,
    environment,
    interleaved,
    load_average,
    make_project,
    median,
    run,
)

LIMIT = 0.3

#: The floor: one transaction from anvil's unlocked first account, waited for to depth argv[2].
FLOOR = """
import json, sys, time, urllib.request
url, depth = sys.argv[1], int(sys.argv[2])
def call(method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())["result"]
sender = call("eth_accounts", [])[0]
tx = call("eth_sendTransaction", [{"from": sender, "to": sender, "value": "0x0"}])
while not (receipt := call("eth_getTransactionReceipt", [tx])):
    time.sleep(0.05)
wanted = int(receipt["blockNumber"], 16) + depth - 1
while int(call("eth_blockNumber", []), 16) < wanted:
    time.sleep(0.05)
"""


def main() -> int:
    """Measure and print the JSON report; exit 1 when proml adds more than ``LIMIT``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block-time", type=float, default=1.0)
    parser.add_argument("--depths", default="1,12")
    parser.add_argument("--quick", action="store_true", help="2 rounds, depths 1 and 3")
    parser.add_argument(
        "--compare", type=Path, default=None, help="also run this proml tree, interleaved"
    )
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    depths = [1, 3] if args.quick else [int(d) for d in args.depths.split(",")]
    block = args.block_time
    trials: dict[str, Callable[[], float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="proml-latency-") as tmp,
        anvil(Path(tmp), block_time=block) as url,
    ):
        env = environment(PROML_PRIVATE_KEY=ANVIL_KEY, PROML_KEYSTORE_PASSWORD="")
        for depth in depths:
            chain = f"chain: {{backend: rpc, url: '{url}', confirmations: {depth}}}\n"
            project = make_project(Path(tmp) / f"depth-{depth}", env, chain=chain)

            def transition(project: Path = project, env: dict[str, str] = env) -> float:
                run([*PROML, "run", "--", "python", "make.py"], project, env)
                return run([*PROML, "transition", "out", "approve"], project, env)

            def floor(depth: int = depth) -> float:
                return run([sys.executable, "-c", FLOOR, url, str(depth)], Path(tmp), env)

            trials[f"proml@{depth}"] = transition
            if args.compare is not None:
                other = environment(
                    args.compare, PROML_PRIVATE_KEY=ANVIL_KEY, PROML_KEYSTORE_PASSWORD=""
                )
                trials[f"compare@{depth}"] = partial(transition, project, other)
            trials[f"floor@{depth}"] = floor
        times = interleaved(trials, rounds)
    medians = {name: median(values) for name, values in times.items()}
    beyond = {
        name: round(seconds - block * int(name.split("@")[1]), 4)
        for name, seconds in medians.items()
    }
    report = {
        "block_time": block,
        "depths": depths,
        "median_seconds": medians,
        "beyond_block_time_x_confirmations": beyond,
        "proml_minus_floor": {
            str(d): round(medians[f"proml@{d}"] - medians[f"floor@{d}"], 4) for d in depths
        },
        "limit": LIMIT,
        "node": "off" if env.get("PROML_NODE") == "off" else "warm",
        "runs": times,
        "load_average": load_average(),
        "note": "a transaction waits for the next block to be included, so one block time "
        "counts towards the first confirmation",
    }
    print(json.dumps(report, indent=1))
    if args.compare is not None:
        report["compared_tree"] = str(args.compare)
    worst = max(beyond[f"proml@{d}"] for d in depths)
    return 0 if worst <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
