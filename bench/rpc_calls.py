"""JSON-RPC calls one `proml run` and one `proml transition` make, as the history grows.

Usage: ``python bench/rpc_calls.py [--sizes 25,1000] [--quick]``. Starts anvil (automine) on
127.0.0.1 behind a counting proxy (bench/_common.py), builds a project on it, and at each
history size counts the calls of a `run` that registers a new version and of the
`transition` that approves it, in fresh processes. Each pair also runs again (caches warm),
and once more with the block-time cache deleted first (a fresh clone: every block time is
fetched, in batch requests: ``calls`` counts each item of a batch, ``http_requests`` counts
round trips). Each count comes with its calls by method and in order (``methods``,
``sequence``). Prints one JSON object; exits 1 when
a transition makes more than ``LIMIT`` calls at any size.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    ANVIL_KEY,
    PROML,
    CountingProxy,
    anvil,
    environment,
    grow_history,
    load_average,
    make_project,
    run,
)

#: A transition's calls must stay under this whatever the history's length.
LIMIT = 15


def _count(
    proxy: CountingProxy, argv: list[str], cwd: Path, env: dict[str, str]
) -> dict[str, object]:
    proxy.reset()
    seconds = run(argv, cwd, env)
    return {
        "calls": proxy.calls(),
        "http_requests": proxy.requests,
        "seconds": round(seconds, 3),
        "methods": dict(sorted(proxy.methods.items())),
        "sequence": list(proxy.sequence),
    }


def main() -> int:
    """Run the benchmark and print its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="25,1000", help="history sizes (events)")
    parser.add_argument("--quick", action="store_true", help="sizes 25 and 200")
    args = parser.parse_args()
    sizes = [25, 200] if args.quick else sorted(int(s) for s in args.sizes.split(","))
    report: dict[str, object] = {"sizes": sizes, "limit": LIMIT}
    worst = 0
    with (
        tempfile.TemporaryDirectory(prefix="proml-rpc-calls-") as tmp,
        anvil(Path(tmp)) as url,
        CountingProxy(url) as proxy,
    ):
        env = environment(
            PROML_CHAIN_URL=proxy.url, PROML_PRIVATE_KEY=ANVIL_KEY, PROML_KEYSTORE_PASSWORD=""
        )
        project = make_project(Path(tmp) / "project", env)
        cache = project / ".proml" / "chain" / "rpc-cache.sqlite"
        index = project / ".proml" / "chain" / "history.sqlite"
        events = 0
        for size in sizes:
            if size > events:
                grow_history(project, size - events, env)
                events = size
            figures = {}
            for label in ("", "_again", "_cold_cache"):
                if label == "_cold_cache":
                    # As on a fresh clone: every block time unknown, no history index.
                    cache.unlink(missing_ok=True)
                    index.unlink(missing_ok=True)
                figures[f"run{label}"] = _count(
                    proxy, [*PROML, "run", "--", "python", "make.py"], project, env
                )
                if label == "_cold_cache":
                    cache.unlink(missing_ok=True)
                    index.unlink(missing_ok=True)
                figures[f"transition{label}"] = _count(
                    proxy, [*PROML, "transition", "out", "approve"], project, env
                )
                events += 2
            worst = max(worst, int(figures["transition"]["calls"]))  # type: ignore[call-overload]
            report[str(size)] = figures
    first, last = (report[str(s)] for s in (sizes[0], sizes[-1]))
    report["transition_calls"] = {
        str(s): report[str(s)]["transition"]["calls"]  # type: ignore[index]
        for s in sizes
    }
    report["run_calls"] = {str(s): report[str(s)]["run"]["calls"] for s in sizes}  # type: ignore[index]
    report["transition_calls_ratio_largest_vs_smallest"] = round(
        last["transition"]["calls"] / first["transition"]["calls"],  # type: ignore[index]
        3,
    )
    report["load_average"] = load_average()
    print(json.dumps(report, indent=1))
    return 0 if worst <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
