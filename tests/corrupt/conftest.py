"""A damaged-state corpus: one initialised project, copied and damaged once per case.

The project is the integration tests' small project plus one artefact large enough to be
stored in a pack file (``blob``), with one pending and several done journal entries.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from _project import POLICY, ok, proml, write_project

#: The integration project's policy, plus an artefact stored in a pack (1 MiB: four leaves).
CORRUPT_POLICY = (
    POLICY.replace(
        "  report: {kind: table, path: out/report.txt}\n",
        "  report: {kind: table, path: out/report.txt}\n"
        "  blob: {kind: table, path: data/blob.bin}\n",
    )
    + """\
  blob:
    command: python blob.py
    produces: [blob]
  vanish:
    command: python vanish.py
    produces: [report]
"""
)

#: Writes the report, then removes the directory ``run --summary-json`` was told to write to.
VANISH_SCRIPT = """
    import shutil
    from pathlib import Path

    Path("out").mkdir(exist_ok=True)
    Path("out/report.txt").write_text("a report\\n")
    shutil.rmtree("summaries")
"""

BLOB_SCRIPT = """
    import hashlib
    from pathlib import Path

    # 1 MiB that repeats nowhere: four distinct 256 KiB leaves.
    stream = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(32768))
    Path("data").mkdir(exist_ok=True)
    Path("data/blob.bin").write_bytes(stream)
"""


def build_damageable(root: Path) -> Path:
    """An initialised project: dataset prepared and validated, blob stored in a pack."""
    write_project(root, CORRUPT_POLICY)
    (root / "blob.py").write_text(textwrap.dedent(BLOB_SCRIPT).lstrip())
    (root / "vanish.py").write_text(textwrap.dedent(VANISH_SCRIPT).lstrip())
    ok(proml(root, "init"))
    ok(proml(root, "run", "--", "python", "prepare.py"))
    ok(proml(root, "transition", "dataset", "validate", "--note", "looked at it"))
    ok(proml(root, "run", "--", "python", "blob.py"))
    return root


@pytest.fixture(scope="session")
def damageable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_damageable(tmp_path_factory.mktemp("corrupt") / "project")
