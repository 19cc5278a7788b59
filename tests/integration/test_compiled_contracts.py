"""The committed contract artefacts (ABI, bytecode) are what the Solidity sources compile to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOLCJS = ROOT / "tools" / "node_modules" / ".bin" / "solcjs"


def test_compiled_contracts_match_the_sources() -> None:
    if not SOLCJS.exists():
        if not os.environ.get("CI"):
            pytest.skip("solc-js is not installed (cd tools && npm ci)")
        pytest.fail(f"{SOLCJS} is missing: CI must install tools/ (npm ci)")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compile_contracts.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr or proc.stdout
