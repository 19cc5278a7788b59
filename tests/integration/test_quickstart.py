"""The first hour: `proml init` in two steps, the template as a runnable pipeline, and the
README's quickstart executed from the README text itself, so the two never drift apart.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _project import log_entries, ok, one_error_line, process_env, proml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"

#: Tiny standard-library scripts for the template's steps (the user's own would replace them).
SCRIPTS = {
    "prepare.py": """
        from pathlib import Path

        Path("data").mkdir(exist_ok=True)
        Path("data/train.csv").write_text("x,y\\n1,0\\n2,1\\n3,1\\n")
        Path("data/test.csv").write_text("x,y\\n4,1\\n")
    """,
    "train.py": """
        import hashlib
        from pathlib import Path

        digest = hashlib.sha256(Path("data/train.csv").read_bytes()).hexdigest()
        Path("models").mkdir(exist_ok=True)
        Path("models/model.pkl").write_text(f"model of {digest}\\n")
    """,
    "evaluate.py": """
        import json
        from pathlib import Path

        size = len(Path("models/model.pkl").read_bytes())
        Path("metrics.json").write_text(json.dumps({"size": size}))
    """,
}


def test_first_init_writes_the_template_and_stops(tmp_path: Path) -> None:
    root = tmp_path / "fraud-detection"
    root.mkdir()

    first = ok(proml(root, "init"))

    assert (root / "proml.yaml").is_file()
    assert not (root / ".proml").exists()  # nothing deployed, no key, no chain
    assert first.stdout == ""
    assert "project: fraud-detection" in (root / "proml.yaml").read_text()
    assert "nothing is deployed" in first.stderr
    assert "run `proml init`" in first.stderr


def test_first_init_json_says_what_it_wrote(tmp_path: Path) -> None:
    document = ok(proml(tmp_path, "init", "--json")).json()

    assert document["policy_created"] is True
    assert document["policy"] == "proml.yaml"
    assert not (tmp_path / ".proml").exists()


def test_template_runs_the_whole_pipeline_on_the_embedded_default(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    ok(proml(root, "init"))
    for name, body in SCRIPTS.items():
        (root / name).write_text(textwrap.dedent(body).lstrip())
    deployed = ok(proml(root, "init"))
    assert (root / ".proml" / "project.json").is_file()
    assert "next: proml run -- python prepare.py" in deployed.stderr

    ok(proml(root, "run", "--", "python", "prepare.py"))
    refused = proml(root, "run", "--", "python", "train.py")
    assert refused.code == 1, str(refused)
    assert "proml transition train-set validate" in refused.stderr  # the next command
    ok(proml(root, "transition", "train-set", "validate"))
    ok(proml(root, "transition", "test-set", "validate"))
    ok(proml(root, "run", "--", "python", "train.py"))
    ok(proml(root, "run", "--", "python", "evaluate.py"))
    ok(proml(root, "transition", "model", "approve"))
    report = ok(proml(root, "verify", "models/model.pkl", "--deep", "--json")).json()

    assert report["verified"] is True, report["reasons"]
    assert (report["artefact"], report["state"]) == ("model", "approved")
    moves = [(e["artefact"], e["action"], e["to"]) for e in reversed(log_entries(root))]
    assert moves == [
        ("train-set", "register", "raw"),
        ("test-set", "register", "raw"),
        ("train-set", "validate", "validated"),
        ("test-set", "validate", "validated"),
        ("model", "register", "trained"),
        ("model", "evaluate", "evaluated"),
        ("model", "approve", "approved"),
    ]
    # A second approval: refused, naming what the current state allows.
    again = proml(root, "transition", "model", "approve")
    assert again.code == 1, str(again)
    line = one_error_line(again.stderr)
    assert "is in state 'approved'" in line
    assert "allowed transitions are: revoke" in again.stderr


# ------------------------------------------------------------------ the README's quickstart


def quickstart_block(text: str) -> list[str]:
    """The lines of the first ``sh`` block under the README's quickstart heading."""
    section = text.split("## Quickstart for your own project", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert match, "the quickstart section has no ```sh block"
    return match.group(1).splitlines()


def test_quickstart_block_installs_from_the_clone_not_from_an_index() -> None:
    lines = quickstart_block(README.read_text(encoding="utf-8"))
    installs = [line for line in lines if line.startswith("pip install")]
    assert installs, lines
    assert all("./proml" in line for line in installs), installs


@pytest.mark.slow
def test_readme_quickstart_runs_verbatim(tmp_path: Path) -> None:
    """Run the README's block, as written, on a "fresh machine": a new HOME, a clone at ./proml.

    The one preparation saves downloads: the new virtual environment sees the test
    environment's already installed dependencies (a ``.pth`` file), so ``pip install -e`` only
    builds and installs proml itself (fetching just its build backend, setuptools, from the
    configured package index) instead of downloading web3 and py-evm again.
    """
    lines = quickstart_block(README.read_text(encoding="utf-8"))
    home = tmp_path / "home"
    work = tmp_path / "work"
    shims = tmp_path / "bin"
    for directory in (home, work, shims):
        directory.mkdir()
    (work / "proml").symlink_to(REPO, target_is_directory=True)
    # `python3` is this interpreter's base Python (the one the test environment was made from).
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (shims / "python3").symlink_to(base)
    venv = home / ".venvs" / "proml"
    subprocess.run([str(shims / "python3"), "-m", "venv", str(venv)], check=True, timeout=120)
    purelib = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    import sysconfig

    (Path(purelib) / "_proml_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    script = tmp_path / "quickstart.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(lines) + "\n")
    env = process_env({"HOME": str(home), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    # Only the new environment may provide `proml`: the test's own bin directory is dropped.
    env["PATH"] = os.pathsep.join(
        [str(shims)]
        + [
            p
            for p in os.environ.get("PATH", "").split(os.pathsep)
            if Path(p) != Path(sys.executable).parent
        ]
    )
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        ["bash", str(script)],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    project = work / "my-project"
    assert (venv / "bin" / "proml").is_file()
    assert "verified: models/model.pkl is 'model'" in done.stderr
    entries = log_entries(project)
    assert (entries[0]["artefact"], entries[0]["to"]) == ("model", "approved")
    assert json.loads((project / "metrics.json").read_text())["n"] == 40
