"""Compile contracts/*.sol with the pinned solc-js into proml_cli/ledger/compiled/ (deterministic).

Usage: ``python scripts/compile_contracts.py [--check]``. With ``--check`` nothing is written and
the exit code is 1 when the committed artefacts differ from what the sources compile to.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLCJS = ROOT / "tools" / "node_modules" / ".bin" / "solcjs"
OUT = ROOT / "proml_cli" / "ledger" / "compiled"
CONTRACTS = ("ProMLLedger",)
# py-evm 0.12 runs prague; solc 0.8.37 defaults to osaka. Pin it so py-evm, anvil and real
# networks all run the same bytecode.
EVM_VERSION = "prague"


def standard_input(sources: dict[str, str]) -> dict[str, object]:
    """The solc standard-JSON input: optimiser on, no metadata hash (reproducible bytecode)."""
    return {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": {"enabled": True, "runs": 1000},
            "viaIR": True,
            "metadata": {"bytecodeHash": "none", "appendCBOR": False},
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }


def compile_all() -> dict[str, str]:
    """Return {file name: JSON text} of every artefact the sources compile to."""
    sources = {
        f"{name}.sol": (ROOT / "contracts" / f"{name}.sol").read_text() for name in CONTRACTS
    }
    proc = subprocess.run(
        [str(SOLCJS), "--standard-json"],
        input=json.dumps(standard_input(sources)),
        capture_output=True,
        text=True,
        check=True,
    )
    # solc-js prints a line about SMT solvers before the JSON document.
    out = json.loads(proc.stdout[proc.stdout.index("{") :])
    errors = [e for e in out.get("errors", []) if e["severity"] == "error"]
    if errors:
        sys.exit("\n".join(e["formattedMessage"] for e in errors))
    version = subprocess.run(
        [str(SOLCJS), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    result = {}
    for name in CONTRACTS:
        contract = out["contracts"][f"{name}.sol"][name]
        artefact = {
            "contract": name,
            "compiler": f"solc-js {version}",
            "evm_version": EVM_VERSION,
            "source_sha256": hashlib.sha256(sources[f"{name}.sol"].encode()).hexdigest(),
            "abi": contract["abi"],
            "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
            # What a deployed ledger's code must be: attaching checks it.
            "deployed_bytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
        }
        result[f"{name}.json"] = json.dumps(artefact, indent=1, sort_keys=True) + "\n"
    return result


def main() -> int:
    """Compile, then write or check."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed artefacts differ")
    args = parser.parse_args()
    compiled = compile_all()
    stale = [
        n for n, text in compiled.items() if not (OUT / n).exists() or (OUT / n).read_text() != text
    ]
    if args.check:
        for name in stale:
            print(f"stale compiled artefact: proml_cli/ledger/compiled/{name}", file=sys.stderr)
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in compiled.items():
        (OUT / name).write_text(text)
    print(f"wrote {len(compiled)} artefact(s); {len(stale)} changed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
