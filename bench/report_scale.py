"""The HTML report and the graph texts at 10,000 events: size, build time, time to open.

Usage: ``python bench/report_scale.py [--events 10000] [--rounds 3] [--keep DIR]``.

Builds (or reuses, with ``--keep``) a project on the embedded default with the breast-cancer
example's policy and a synthetic history made of real ledger transactions and real records:
each round registers a train set and a test set (a ``prepare`` run, with its params file), a
review run validates both, a ``train`` run registers a model from the train set (params and a
metrics file), an ``evaluate`` run moves it with the test set, and a signed decision approves
it: 7 events per round, runs batched 10 rounds to a transaction, decisions one each.

Then, interleaved over ``--rounds``, in fresh processes: ``proml report``, ``proml graph``
in each format, and ``proml --help`` as the floor. With chromium and chromedriver installed,
the page is also opened headless from disk, and the time to its load event (the script has
then rendered the tables) and to a node's details is measured. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PROML, ROOT, environment, interleaved, load_average, median, run

BATCH = 10
EVENTS_PER_ROUND = 7


def build(directory: Path, events: int, env: dict[str, str]) -> None:
    """The example's policy, ``proml init``, then ``events`` events of synthetic rounds."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "examples" / "breast-cancer" / "proml.yaml", directory / "proml.yaml")
    run([*PROML, "init"], directory, env)
    script = f"""
import hashlib, json, sys
from pathlib import Path
from proml_cli.project import load_project
from proml_cli.ledger import Move, Registration, VersionRef
from proml_cli.record import DecisionRecord, FileEntry, RunRecord, canonical_bytes, utc_now

project = load_project(start=Path({str(directory)!r}), announce=lambda _: None)
signer = project.signer()
store = project.store()
policy_digest = project.policy.digest
rounds = {events} // {EVENTS_PER_ROUND}

def entry(name, text, path):
    data = text.encode()
    cid = store.put_bytes(data)
    return FileEntry(path, hashlib.sha256(data).hexdigest(), cid, len(data), "file", name)

def run_record(step, materials, products, params=(), metrics=()):
    now = utc_now()
    record = RunRecord("breast-cancer", step, ("python", step + ".py"), ".", now, now, 0,
                       tuple(materials), tuple(products), tuple(params), tuple(metrics),
                       policy_digest, signer.address)
    return store.put_bytes(canonical_bytes(record.to_json()))

def ref(e):
    return VersionRef(e.artefact, e.sha256)

with project.ledger(signer) as ledger:
    for start in range(0, rounds, {BATCH}):
        batch = range(start, min(start + {BATCH}, rounds))
        params = entry(None, f"seed: {{start}}\\ntest_fraction: 0.2\\nC: 1.0\\n", "params.yaml")
        params = params.to_json()
        params.pop("artefact", None)
        train = [entry("train-set", f"train {{r}}", "data/train.csv") for r in batch]
        test = [entry("test-set", f"test {{r}}", "data/test.csv") for r in batch]
        cid = run_record("prepare", [], train + test, [params])
        ledger.submit(cid, [Registration(ref(e), e.cid, ()) for e in train + test], [])
        cid = run_record("review", train + test, [])
        ledger.submit(cid, [], [Move(ref(e), "validate") for e in train + test])
        models = [entry("model", f"model {{r}}", "models/model.pkl") for r in batch]
        cid = run_record("train", train, models, [params])
        ledger.submit(cid, [Registration(ref(m), m.cid, (ref(t),))
                            for m, t in zip(models, train)], [])
        metrics = entry(None, json.dumps({{"accuracy": 0.95, "round": start}}), "metrics.json")
        metrics = metrics.to_json()
        metrics.pop("artefact", None)
        cid = run_record("evaluate", models + test, [], [], [metrics])
        ledger.submit(cid, [], [Move(ref(m), "evaluate") for m in models])
        for m in models:
            decision = DecisionRecord("breast-cancer", "approve", m, "metrics reviewed",
                                      utc_now(), policy_digest, signer.address)
            cid = store.put_bytes(canonical_bytes(decision.to_json()))
            ledger.submit(cid, [], [Move(ref(m), "approve")])
        if start % 100 == 0:
            print(f"build: round {{start}} of {{rounds}}", file=sys.stderr, flush=True)
"""
    import subprocess

    subprocess.run([sys.executable, "-c", script], cwd=directory, env=env, check=True)


def open_in_browser(page: Path) -> dict[str, float] | None:
    """Seconds to the load event and to a node's details, in headless chromium (None without)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND")
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        started = time.perf_counter()
        browser.get(page.as_uri())  # returns after the load event
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        browser.execute_script(
            "document.querySelector('.node.version').dispatchEvent("
            "new MouseEvent('click', {bubbles: true}));"
        )
        clicked = time.perf_counter() - started
        return {"load_s": round(loaded, 3), "click_s": round(clicked, 3)}
    finally:
        browser.quit()


def main() -> int:
    """Build, measure, print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="build (or reuse) the project here")
    args = parser.parse_args()
    env = environment()
    report: dict[str, object] = {"events": args.events, "load_average_before": load_average()}
    with tempfile.TemporaryDirectory(prefix="proml-report-") as tmp:
        project = args.keep or Path(tmp) / "project"
        if not (project / ".proml" / "project.json").exists():
            print(f"report_scale: building {args.events} events", file=sys.stderr)
            started = time.perf_counter()
            build(project, args.events, env)
            report["build_history_s"] = round(time.perf_counter() - started, 1)
        page = project / "report.html"
        trials = {
            "help": lambda: run([*PROML, "--help"], project, env),
            "report": lambda: run([*PROML, "report", "-o", str(page)], project, env),
        }
        for fmt in ("mermaid", "dot", "json"):
            trials[f"graph_{fmt}"] = partial(run, [*PROML, "graph", "--format", fmt], project, env)
        times = interleaved(trials, args.rounds)
        report["seconds"] = {name: median(values) for name, values in times.items()}
        html = page.read_bytes()
        report["report_bytes"] = len(html)
        report["report_sha256"] = hashlib.sha256(html).hexdigest()
        report["browser"] = open_in_browser(page)
    report["load_average_after"] = load_average()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
