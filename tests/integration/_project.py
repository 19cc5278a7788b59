"""Helpers for the CLI integration tests: a tiny proml project in a temporary directory.

The project has one dataset, one model and one report artefact, two custom kinds and a handful
of steps whose commands are small standard-library Python scripts (no scikit-learn): they
prepare the dataset, train a deterministic "model" (a digest of the dataset), evaluate it, fail,
forget their output, wait for a signal, or hold the embedded chain's lock.

Every ``proml`` call goes through :func:`proml` (in-process, ``CliRunner``) or :func:`spawn`
(a real process); both put the virtual environment's ``bin`` first on ``PATH`` so the policy's
``python`` is the interpreter running the tests, and both clear the ``PROML_*`` variables a
developer's shell might carry. Building a project costs a few chain calls, so test modules build
one per module and :func:`fork` it (copying the project directory copies its embedded chain and
content store) when a test changes the chain.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from proml_cli._cli.app import app

#: The interpreter's directory: its ``python`` runs the policy's commands (filelock included).
VENV_BIN = Path(sys.executable).parent

#: Variables that would change what a ``proml`` call does; cleared for every call.
_CLEARED = (
    "PROML_POLICY",
    "PROML_ACCOUNT",
    "PROML_DEBUG",
    "PROML_CHAIN_URL",
    "PROML_IPFS_URL",
    "PROML_PRIVATE_KEY",
    "PROML_LOCK_TIMEOUT",
    "PROML_KEYSTORE_PASSWORD",
)

POLICY = """\
version: 1
project: core-loop
chain:
  backend: embedded
storage:
  backend: embedded
  cid_version: 1
roles: [curator, trainer, verifier]
kinds:
  table:
    states: [raw, validated, rejected, deprecated]
    initial: raw
    register: [curator, trainer]
    consumable: [validated]
    transitions:
      validate: {from: [raw], to: validated, roles: [curator]}
      reject: {from: [raw, validated], to: rejected, roles: [curator]}
      deprecate: {from: [validated], to: deprecated, roles: [curator]}
  weights:
    states: [trained, evaluated, approved, rejected]
    initial: trained
    register: [trainer]
    consumable: [approved]
    transitions:
      evaluate: {from: [trained], to: evaluated, roles: [trainer]}
      approve: {from: [evaluated], to: approved, roles: [verifier]}
      reject: {from: [trained, evaluated], to: rejected, roles: [verifier]}
artefacts:
  dataset: {kind: table, path: data/data.csv}
  model: {kind: weights, path: out/model.bin}
  report: {kind: table, path: out/report.txt}
steps:
  prepare:
    command: python prepare.py
    produces: [dataset]
  train:
    command: python train.py
    uses: {dataset: [validated]}
    produces: [model]
  evaluate:
    command: python evaluate.py
    uses: {model: [trained], dataset: [validated]}
    fires: {model: evaluate}
    metrics: [metrics.json]
  fail:
    command: python fail.py
    produces: [report]
  forget:
    command: python forget.py
    produces: [report]
  wait:
    command: python wait.py
    produces: [report]
  missing:
    command: no-such-command-for-proml-tests
    produces: [report]
  hold:
    command: python hold.py
    produces: [report]
"""

SCRIPTS = {
    "prepare.py": """
        from pathlib import Path

        Path("data").mkdir(exist_ok=True)
        Path("data/data.csv").write_text("x,y\\n1,0\\n2,1\\n3,0\\n")
    """,
    # Writes its marker first, so a test can tell whether the command started at all.
    "train.py": """
        import hashlib
        from pathlib import Path

        Path("train.started").write_text("started\\n")
        digest = hashlib.sha256(Path("data/data.csv").read_bytes()).hexdigest()
        Path("out").mkdir(exist_ok=True)
        Path("out/model.bin").write_text(f"model of {digest}\\n")
    """,
    "evaluate.py": """
        import json
        from pathlib import Path

        size = len(Path("out/model.bin").read_bytes())
        Path("metrics.json").write_text(json.dumps({"size": size}))
    """,
    "fail.py": """
        import sys

        sys.exit(3)
    """,
    # Declares out/report.txt in the policy but never writes it.
    "forget.py": """
        print("forgot to write the report")
    """,
    # Prints "ready" once its handlers are installed, then waits (bounded) for a signal.
    "wait.py": """
        import signal
        import sys
        import time
        from pathlib import Path


        def handler(signum, frame):
            Path(f"got-{signal.Signals(signum).name}").write_text("caught\\n")
            sys.exit(128 + signum)


        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
        print("ready", flush=True)
        # Short sleeps, not one sleep(60): Python runs a handler between bytecodes, so a signal
        # landing just before the sleep system call (the test sends it right after "ready",
        # when a loaded machine may have preempted this process at exactly that point) would
        # otherwise wait for the whole sleep to end.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.05)
        sys.exit(99)
    """,
    # Writes the report, then starts a detached process that holds the embedded chain's lock for
    # a few seconds, and exits only once the lock is held: proml's submission must then time out.
    "hold.py": """
        import subprocess
        import sys
        import time
        from pathlib import Path

        Path("out").mkdir(exist_ok=True)
        Path("out/report.txt").write_text("report\\n")
        subprocess.Popen(
            [sys.executable, "lock_holder.py", ".proml/chain/chain.lock", "holder.locked", "8"],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not Path("holder.locked").exists():
            if time.monotonic() > deadline:
                sys.exit("the lock holder did not start")
            time.sleep(0.05)
    """,
    "lock_holder.py": """
        import sys
        import time
        from pathlib import Path

        from filelock import FileLock

        lock_path, flag, seconds = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
        lock = FileLock(lock_path)
        lock.acquire()
        flag.write_text("locked\\n")
        time.sleep(seconds)
        lock.release()
        flag.unlink()
    """,
}


@dataclass(frozen=True)
class Result:
    """What one ``proml`` call did."""

    code: int
    stdout: str
    stderr: str
    detail: str = ""

    def json(self) -> dict[str, Any]:
        """stdout as one JSON object (the ``--json`` contract)."""
        document = json.loads(self.stdout)
        assert isinstance(document, dict), self.stdout
        return document

    def __str__(self) -> str:
        return (
            f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}\n{self.detail}"
        )


def call_env(extra: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Environment changes for an in-process call (None unsets a variable)."""
    env: dict[str, str | None] = dict.fromkeys(_CLEARED)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def process_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A full environment for a ``proml`` subprocess."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update({k: v for k, v in call_env(extra).items() if v is not None})
    return env


def proml_command(directory: Path) -> Path:
    """The venv's ``proml`` script, or a wrapper running this interpreter's ``-m proml_cli``."""
    installed = VENV_BIN / "proml"
    if installed.is_file():
        return installed
    wrapper = directory / "proml"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m proml_cli "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


def run_example(
    script: Path, work: Path, extra: Mapping[str, str] | None = None, *, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run an example's ``run.sh`` in ``work`` with this checkout's proml; it must exit 0."""
    work.parent.mkdir(parents=True, exist_ok=True)
    env = {"PROML": str(proml_command(work.parent)), **(extra or {})}
    done = subprocess.run(
        ["bash", str(script), str(work)],
        env=process_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done


#: The example pipeline (about 30 s on the embedded chain; it needs scikit-learn).
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast-cancer" / "run.sh"


def skip_without_sklearn() -> None:
    """Skip the calling test module when scikit-learn (the ``examples`` extra) is missing.

    On CI it must be installed: the module runs and fails there instead.
    """
    if importlib.util.find_spec("sklearn") is None and not os.environ.get("CI"):
        pytest.skip(
            "scikit-learn is not installed (pip install -e '.[examples]')", allow_module_level=True
        )


def example_workspace(
    factory: pytest.TempPathFactory,
    name: str,
    extra: Mapping[str, str] | None = None,
    *,
    timeout: float,
) -> Path:
    """Run the example pipeline in a new directory named after ``name``; return its workspace."""
    work = factory.mktemp(name) / "work"
    run_example(EXAMPLE, work, extra, timeout=timeout)
    return work


_runner = CliRunner()


def proml(root: Path, *args: str, env: Mapping[str, str] | None = None) -> Result:
    """Run ``proml ARGS`` in-process with ``root`` as the working directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = _runner.invoke(app, list(args), env=call_env(env))
    detail = ""
    if result.exc_info is not None and not isinstance(result.exception, SystemExit):
        import traceback

        detail = "".join(traceback.format_exception(*result.exc_info))
    return Result(result.exit_code, result.stdout, result.stderr, detail)


def proml_argv(*args: str) -> list[str]:
    """The argv of a real ``proml`` process."""
    return [sys.executable, "-m", "proml_cli", *args]


def spawn(root: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``proml ARGS`` as a real process in ``root``, stdout piped (line-buffered text)."""
    return subprocess.Popen(
        proml_argv(*args),
        cwd=root,
        env=process_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def ok(result: Result) -> Result:
    """Assert a call succeeded and return it."""
    assert result.code == 0, str(result)
    return result


def write_project(root: Path, policy: str = POLICY) -> Path:
    """Write the policy and the scripts into ``root`` (created if needed)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "proml.yaml").write_text(policy)
    for name, body in SCRIPTS.items():
        (root / name).write_text(textwrap.dedent(body).lstrip())
    return root


def build_project(
    root: Path, policy: str = POLICY, *, train: bool = True, note: str = "looked at it"
) -> Path:
    """An initialised project: dataset prepared and validated; with ``train``, also trained.

    With ``train`` the model is registered by ``train`` and moved to ``evaluated`` by
    ``evaluate``, so the model has two steps and one input.
    """
    write_project(root, policy)
    ok(proml(root, "init"))
    ok(proml(root, "run", "--", "python", "prepare.py"))
    ok(proml(root, "transition", "dataset", "validate", "--note", note))
    if train:
        ok(proml(root, "run", "--", "python", "train.py"))
        ok(proml(root, "run", "--", "python", "evaluate.py"))
    return root


def fork(source: Path, target: Path) -> Path:
    """Copy a project directory (policy, files, ``.proml`` with its chain and store)."""
    # A node's socket (a special file) cannot be copied; the copy starts its own node.
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("node.*"))
    return target


def log_entries(root: Path, *args: str) -> list[dict[str, Any]]:
    """``proml log --json`` entries, newest first."""
    entries = ok(proml(root, "log", "--json", *args)).json()["entries"]
    assert isinstance(entries, list)
    return entries


def journal_files(root: Path) -> dict[str, list[str]]:
    """The journal's entries by directory (pending, done, refused)."""
    journal = root / ".proml" / "journal"
    return {
        state: sorted(p.name for p in (journal / state).glob("*.json"))
        for state in ("pending", "done", "refused")
    }


#: How a rebuilt history index is noted on stderr (a warning of proml's logger).
REBUILT_NOTE = "WARNING  history index rebuilt: "


def one_error_line(stderr: str) -> str:
    """The ``proml: error:`` line of a failed command's stderr; only a ``hint:`` may follow it.

    A signing command first says which address signs (``signing as …``), and a history index
    rebuilt because it no longer matched the chain is noted: those lines may precede.
    """
    lines = stderr.splitlines()
    while lines and lines[0].startswith(("signing as ", REBUILT_NOTE)):
        lines = lines[1:]
    assert lines, "stderr is empty"
    assert lines[0].startswith("proml: error: "), stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), stderr
    assert len(lines) <= 2, stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


def block_path(root: Path, cid: str) -> Path:
    """Where the embedded store keeps the single block of a raw-leaf CIDv1 (``bafkrei…``).

    ``content/_local.py`` names each block file by the sha256 of its bytes, under a directory
    named by the first two hex digits; that sha256 is the CID's multihash digest.
    """
    assert cid.startswith("b"), cid
    text = cid[1:].upper()
    binary = base64.b32decode(text + "=" * (-len(text) % 8))
    # CIDv1 (0x01), raw codec (0x55), sha2-256 (0x12), 32 bytes (0x20), then the digest.
    assert binary[:4] == bytes([0x01, 0x55, 0x12, 0x20]), binary[:4].hex()
    digest = binary[4:].hex()
    return root / ".proml" / "content" / "blocks" / digest[:2] / digest


def steps_matching(entries: Sequence[dict[str, Any]], record_cid: str) -> list[dict[str, Any]]:
    """The log entries anchored with ``record_cid``."""
    return [e for e in entries if e["record_cid"] == record_cid]
