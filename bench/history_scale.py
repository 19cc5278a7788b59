"""Reads and writes as the history grows: 100 vs 10,000 events on the embedded default.

Usage: ``python bench/history_scale.py [--sizes 100,10000] [--rounds 3] [--quick]
[--keep DIR] [--compare TREE]``.

One project per size is built in a temporary directory (``proml init``, then real ledger
transactions, each registering 50 versions and approving them: 100 events, each record in
the store; see ``grow_history`` in bench/_common.py), and one git repository per size with
as many commits.
Then, per round and interleaved across sizes (a busy neighbour slows all alike), in fresh
processes:

* writes: ``proml run -- python make.py`` (a new version) and ``proml transition out approve``;
* reads: ``proml log`` (its default output), ``log --limit 10``, ``log --json`` (every entry),
  ``status``, ``verify out.bin``, ``show out``;
* baselines: ``proml --help`` and ``git log`` over as many commits as the project has events.

Then in-process (library calls in one process per size, imports and the first opening of the
ledger excluded): ``Project.log(limit=10)``, ``log()`` (every entry), ``status()``,
``show("out")``, ``verify("out.bin")``, and the history lookup every write makes (whether its
record is anchored already, ``anchoring._find_anchor``), each the median of ``--rounds`` calls.

Prints one JSON object with the medians and the ratios the speed requirements name: each read
against ``proml --help``, ``log --json`` against ``git log``, and every command at the largest
size against the smallest, by CLI and in-process. Progress goes to stderr.

``--compare TREE`` (another checkout of proml, e.g. ``git archive`` of an older commit) runs
that code beside this tree's in the same rounds, each on its own copy of every project (so
each keeps its own node), and reports its figures under ``"before"``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PROML,
    environment,
    git_repo,
    grow_history,
    interleaved,
    load_average,
    make_project,
    median,
    ratio,
    run,
)

COMMANDS = {
    "run": ["run", "--", "python", "make.py"],
    "transition": ["transition", "out", "approve"],
    "log": ["log"],
    "log_limit_10": ["log", "--limit", "10"],
    "log_json": ["log", "--json"],
    "status": ["status"],
    "verify": ["verify", "out.bin"],
    "show": ["show", "out"],
}
READS = ("log", "log_limit_10", "status", "verify", "show")

#: Library calls timed in one process (``project``: the opened Project).
IN_PROCESS = {
    "log_limit_10": "project.log(limit=10)",
    "log_all": "project.log()",
    "status": "project.status()",
    "show": "project.show('out')",
    "verify": "project.verify('out.bin')",
    "anchor_lookup": "_anchor_lookup()",
}

IN_PROCESS_SCRIPT = """
import json, statistics, sys, time
import proml_cli
from proml_cli.anchoring import _find_anchor
project = proml_cli.open_project(".")
def _anchor_lookup():
    with project.context.ledger() as ledger:
        return _find_anchor(ledger, "bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
project.status()  # imports, keystore, first sync of the index: not what is measured
calls = json.loads(sys.argv[1])
rounds = int(sys.argv[2])
times = {name: [] for name in calls}
for _ in range(rounds):
    for name, code in calls.items():
        start = time.perf_counter()
        eval(code)
        times[name].append(time.perf_counter() - start)
print(json.dumps({name: round(statistics.median(v), 5) for name, v in times.items()}))
"""


def in_process(project: Path, env: dict[str, str], rounds: int) -> dict[str, float]:
    """Median seconds of each library call in :data:`IN_PROCESS`, in a fresh process."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", IN_PROCESS_SCRIPT, json.dumps(IN_PROCESS), str(rounds)],
        cwd=project,
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    found: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _transition(project: Path, env: dict[str, str]) -> float:
    """``transition out approve`` on a fresh version (made first, untimed): any trial order."""
    run([*PROML, *COMMANDS["run"]], project, env)
    return run([*PROML, *COMMANDS["transition"]], project, env)


def interleaved_in_process(
    projects: dict[str, dict[int, Path]], envs: dict[str, dict[str, str]], rounds: int
) -> dict[str, dict[int, dict[str, float]]]:
    """:func:`in_process` per tree and size, one process each per round, in alternating order."""
    cells = [(tree, size) for tree in projects for size in projects[tree]]
    runs: dict[tuple[str, int], list[dict[str, float]]] = {cell: [] for cell in cells}
    for number in range(rounds):
        for tree, size in reversed(cells) if number % 2 else cells:
            runs[(tree, size)].append(in_process(projects[tree][size], envs[tree], 3))
    return {
        tree: {
            size: {name: median([r[name] for r in runs[(tree, size)]]) for name in IN_PROCESS}
            for size in projects[tree]
        }
        for tree in projects
    }


def main() -> int:
    """Build, measure, print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,10000", help="history sizes (events)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1000, 2 rounds")
    parser.add_argument("--keep", type=Path, default=None, help="build (or reuse) projects here")
    parser.add_argument(
        "--in-process-only", action="store_true", help="only the library calls (needs --keep)"
    )
    parser.add_argument(
        "--compare", type=Path, default=None, help="another proml tree, run beside this one"
    )
    args = parser.parse_args()
    sizes = [100, 1000] if args.quick else sorted(int(s) for s in args.sizes.split(","))
    rounds = 2 if args.quick else args.rounds
    envs = {"now": environment()}
    if args.compare is not None:
        envs["before"] = environment(args.compare.resolve())
    env = envs["now"]
    report: dict[str, object] = {"sizes": sizes, "load_average_before": load_average()}
    with tempfile.TemporaryDirectory(prefix="proml-history-") as tmp:
        base = args.keep or Path(tmp)
        projects: dict[str, dict[int, Path]] = {tree: {} for tree in envs}
        repos = {}
        for size in sizes:
            project = base / f"project-{size}"
            if not (project / ".proml" / "project.json").exists():
                print(f"history_scale: building {size} events", file=sys.stderr)
                make_project(project, env)
                run([*PROML, "run", "--", "python", "make.py"], project, env)
                grow_history(project, size, env, batch=100)
            projects["now"][size] = project
            if "before" in envs:
                # Its own copy: each tree's node serves its own project (a node steps aside
                # for a client of other code, which would make every trial a cold start).
                copy = base / f"before-project-{size}"
                if not (copy / ".proml" / "project.json").exists():
                    shutil.copytree(
                        project, copy, symlinks=True, ignore=shutil.ignore_patterns("node.*")
                    )
                projects["before"][size] = copy
            repos[size] = base / f"git-{size}"
            if not (repos[size] / ".git").exists():
                git_repo(repos[size], size, env)
        small, large = sizes[0], sizes[-1]
        if args.in_process_only:
            library = interleaved_in_process(projects, envs, max(rounds, 3))
            for tree in envs:
                found = library[tree]
                part = report if tree == "now" else report.setdefault("before", {})
                assert isinstance(part, dict)  # noqa: S101 - built just above
                part["in_process_seconds"] = {str(size): found[size] for size in sizes}
                part["in_process_largest_vs_smallest"] = {
                    name: ratio(found[large][name], found[small][name]) for name in IN_PROCESS
                }
            report["load_average_after"] = load_average()
            print(json.dumps(report, indent=1))
            return 0
        trials: dict[str, Callable[[], float]] = {}
        for tree, tree_env in envs.items():
            prefix = "" if tree == "now" else f"{tree}:"
            for size in sizes:
                where = projects[tree][size]
                for name, argv in COMMANDS.items():
                    trials[f"{prefix}{name}@{size}"] = partial(
                        run, [*PROML, *argv], where, tree_env
                    )
                trials[f"{prefix}transition@{size}"] = partial(_transition, where, tree_env)
        for size in sizes:
            trials[f"git_log@{size}"] = partial(run, ["git", "log"], repos[size], env)
        trials["help"] = partial(run, [*PROML, "--help"], base, env)
        print(f"history_scale: measuring, {rounds} rounds", file=sys.stderr)
        times = interleaved(trials, rounds)
        print("history_scale: in-process library calls", file=sys.stderr)
        library = interleaved_in_process(projects, envs, max(rounds, 3))
    medians = {name: median(values) for name, values in times.items()}
    report["median_seconds"] = medians
    for tree in envs:
        prefix = "" if tree == "now" else f"{tree}:"
        part = report if tree == "now" else report.setdefault("before", {})
        assert isinstance(part, dict)  # noqa: S101 - built just above
        _ratios(part, medians, library[tree], prefix, small, large)
    report["targets"] = {
        "reads_vs_help": 2.0,
        "log_json_vs_git_log": 5.0,
        "reads_largest_vs_smallest": 1.2,
        "writes_largest_vs_smallest": 1.1,
    }
    report["load_average_after"] = load_average()
    report["rounds"] = rounds
    print(json.dumps(report, indent=1))
    return 0


def _ratios(
    part: dict[str, object],
    medians: dict[str, float],
    library: dict[int, dict[str, float]],
    prefix: str,
    small: int,
    large: int,
) -> None:
    """The requirement's ratios of one tree's medians (``prefix``: its trials' prefix)."""
    help_ = medians["help"]
    part["reads_vs_help_at_largest"] = {
        r: ratio(medians[f"{prefix}{r}@{large}"], help_) for r in READS
    }
    part["log_json_vs_git_log_at_largest"] = ratio(
        medians[f"{prefix}log_json@{large}"], medians[f"git_log@{large}"]
    )
    part["largest_vs_smallest"] = {
        name: ratio(medians[f"{prefix}{name}@{large}"], medians[f"{prefix}{name}@{small}"])
        for name in COMMANDS
    }
    part["git_log_largest_vs_smallest"] = ratio(
        medians[f"git_log@{large}"], medians[f"git_log@{small}"]
    )
    part["in_process_seconds"] = {str(size): library[size] for size in (small, large)}
    part["in_process_largest_vs_smallest"] = {
        name: ratio(library[large][name], library[small][name]) for name in IN_PROCESS
    }


if __name__ == "__main__":
    sys.exit(main())
