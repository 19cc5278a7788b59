"""What every bench shares: running proml from this tree, interleaved timing, anvil, projects.

Every bench runs the code of the tree it sits in (``PYTHONPATH`` is set to it), so copying
``bench/`` into an export of an older commit measures that commit with the same harness.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ANVIL = ROOT / "tools" / "node_modules" / ".bin" / "anvil"
#: anvil's first development account (public, well-known test key; never holds real value).
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
PROML = [sys.executable, "-m", "proml_cli"]

POLICY = """\
version: 1
project: bench
roles: [developer]
kinds:
  blob:
    states: [made, ok]
    initial: made
    register: [developer]
    consumable: [made, ok]
    transitions:
      approve: {{from: [made], to: ok, roles: [developer]}}
artefacts:
  out: {{kind: blob, path: {path}}}
steps:
  make: {{command: python make.py, produces: [out]}}
{chain}"""
#: The wrapped command: writes ``size`` bytes (16 by default) of fresh random data to out.bin.
MAKE = """\
import os, sys
size = int(sys.argv[1]) if len(sys.argv) > 1 else 16
with open("{path}", "wb") as out:
    while size > 0:
        piece = os.urandom(min(size, 8 << 20))
        out.write(piece)
        size -= len(piece)
"""


def environment(tree: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment proml runs in: this tree (or ``tree``) first, no network overrides.

    ``tree`` is another checkout of proml (e.g. ``git archive`` of an older commit): a bench
    given ``--compare TREE`` runs that code beside this tree's, interleaved, in the same run.
    """
    env = {
        **os.environ,
        "PYTHONPATH": str(tree or ROOT),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    for name in ("PROML_CHAIN_URL", "PROML_IPFS_URL", "PROML_PRIVATE_KEY", "PROML_POLICY"):
        env.pop(name, None)
    env.update(extra)
    return env


def run(argv: list[str], cwd: Path, env: dict[str, str], *, check: bool = True) -> float:
    """Run ``argv`` to completion (output captured); return its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if check and done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-2000:]}"
        )
    return elapsed


def interleaved(trials: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run every trial once per round, in turn, so a busy neighbour slows all of them alike.

    Odd rounds run the trials in reverse order, so no trial always follows the same one (a
    trial that leaves dirty pages or a warm cache behind favours or slows the next).
    """
    times: dict[str, list[float]] = {name: [] for name in trials}
    for number in range(rounds):
        order = list(trials.items())
        for name, trial in reversed(order) if number % 2 else order:
            times[name].append(trial())
    return times


def median(values: list[float]) -> float:
    """The median, rounded for the report."""
    return round(statistics.median(values), 4)


def ratio(a: float, b: float) -> float:
    """``a / b`` rounded (inf when ``b`` is zero)."""
    return round(a / b, 3) if b > 0 else float("inf")


def make_project(
    directory: Path,
    env: dict[str, str],
    *,
    path: str = "out.bin",
    chain: str = "",
    init: bool = True,
) -> Path:
    """A one-artefact project (``out`` made by ``make.py``); ``proml init`` run in it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "proml.yaml").write_text(POLICY.format(path=path, chain=chain))
    (directory / "make.py").write_text(MAKE.format(path=path))
    if init:
        run([*PROML, "init"], directory, env)
    return directory


def load_average() -> float:
    """The 1-minute load average, reported beside every figure."""
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------------------- history


def grow_history(directory: Path, events: int, env: dict[str, str], *, batch: int = 1) -> None:
    """Add ``events`` ledger events to the project: versions registered, then approved.

    Runs in a fresh process of this tree (so it also works on an older export). With
    ``batch`` 1 each event is its own transaction; with a larger even ``batch`` one
    transaction registers ``batch / 2`` versions and approves them (one event each), which
    builds a long history in minutes: reads and writes cost per event, not per transaction.
    Every record is stored in the project's store.
    """
    script = f"""
import hashlib, json, secrets, sys
from pathlib import Path
from proml_cli.project import load_project
from proml_cli.ledger import Move, Registration, VersionRef
from proml_cli.settings import Settings
project = load_project(start=Path({str(directory)!r}), settings=Settings.from_environ())
signer = project.signer()
store = project.store()
token = secrets.token_hex(8)
events, batch = {events}, {batch}
done = 0
with project.ledger(signer) as ledger:
    n = 0
    while done < events:
        record = json.dumps({{"type": "bench", "n": n, "token": token}}, sort_keys=True)
        record_cid = store.put_bytes(record.encode())
        if batch == 1:
            tag = f"bench {{token}} {{n // 2}}"
            ref = VersionRef("out", hashlib.sha256(tag.encode()).hexdigest())
            if n % 2 == 0:
                content = store.put_bytes(f"content {{token}} {{n}}".encode())
                ledger.submit(record_cid, [Registration(ref, content, ())], [])
            else:
                ledger.submit(record_cid, [], [Move(ref, "approve")])
            done += 1
        else:
            size = min(batch, events - done) // 2 or 1
            tags = [f"bench {{token}} {{n}} {{k}}" for k in range(size)]
            refs = [VersionRef("out", hashlib.sha256(t.encode()).hexdigest()) for t in tags]
            regs = [Registration(r, store.put_bytes(r.digest.encode()), ()) for r in refs]
            moves = [Move(r, "approve") for r in refs] if done + 2 * size <= events else []
            ledger.submit(record_cid, regs, moves)
            done += len(regs) + len(moves)
        n += 1
        if done // 1000 != (done - 1) // 1000:
            print(f"grow: {{done}} events", file=sys.stderr, flush=True)
"""
    subprocess.run([sys.executable, "-c", script], cwd=directory, env=env, check=True)


def git_repo(directory: Path, commits: int, env: dict[str, str]) -> Path:
    """A git repository with ``commits`` commits, built with ``git fast-import`` (fast)."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(directory)], check=True, env=env)
    lines = []
    for i in range(commits):
        content = f"change {i}\n".encode()
        message = f"commit {i}\n".encode()
        lines.append(b"commit refs/heads/main\n")
        lines.append(f"committer Bench <bench@example.org> {1_700_000_000 + i} +0000\n".encode())
        lines.append(b"data %d\n%s" % (len(message), message))
        lines.append(b"M 100644 inline file.txt\n")
        lines.append(b"data %d\n%s\n" % (len(content), content))
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=directory,
        input=b"".join(lines),
        check=True,
        env=env,
    )
    subprocess.run(["git", "checkout", "-q", "main"], cwd=directory, check=True, env=env)
    return directory


# ---------------------------------------------------------------------------- chains


@contextmanager
def anvil(workdir: Path, *, block_time: float | None = None) -> Iterator[str]:
    """Run anvil on 127.0.0.1 on a port the OS picks; yield its JSON-RPC URL."""
    if not ANVIL.exists():
        raise SystemExit(f"{ANVIL} is missing: run `npm ci` in tools/")
    args = [str(ANVIL), "--host", "127.0.0.1", "--port", "0"]
    if block_time:
        args += ["--block-time", str(block_time)]
    log_path = workdir / "anvil.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not (
                match := re.search(r"Listening on (127\.0\.0\.1:\d+)", log_path.read_text())
            ):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"anvil did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.05)
            yield f"http://{match.group(1)}"
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)


class CountingProxy:
    """A JSON-RPC proxy on 127.0.0.1 that forwards to ``target`` and counts what passes.

    ``methods`` counts JSON-RPC calls by method (each item of a batch counts once);
    ``requests`` counts HTTP requests; ``sequence`` lists the calls in the order they came
    (method and a short view of the parameters; a batch's items are joined by ``+``).
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.methods: Counter[str] = Counter()
        self.requests = 0
        self.sequence: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                payload = json.loads(body)
                with proxy._lock:
                    proxy.requests += 1
                    items = payload if isinstance(payload, list) else [payload]
                    for item in items:
                        proxy.methods[str(item.get("method"))] += 1
                    proxy.sequence.append("+".join(_call_text(item) for item in items))
                request = urllib.request.Request(  # noqa: S310 - a local http URL
                    proxy.target, data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
                    data = answer.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Forget what was counted so far."""
        with self._lock:
            self.methods.clear()
            self.requests = 0
            self.sequence = []

    def calls(self) -> int:
        """JSON-RPC calls counted since the last reset."""
        return sum(self.methods.values())


def _call_text(item: dict[str, Any]) -> str:
    """A JSON-RPC call as ``method(params)``, long parameters cut short."""
    params = json.dumps(item.get("params", []), separators=(",", ":"))
    return f"{item.get('method')}({params if len(params) <= 60 else params[:57] + '...'})"


def digest_of(text: str) -> str:
    """sha256 hex of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()
