"""Deployment: load the model only once the ledger says these exact bytes may be consumed.

The model is copied first and the copy verified, so the bytes checked are the bytes loaded:
a recorded version of 'model', in a consumable state ('approved'), its whole lineage intact.
Usage: python deploy.py [MODEL]   (default: models/model.pkl)
"""

import csv
import pickle
import shutil
import sys
from pathlib import Path

import proml_cli as proml


def main(source):
    Path("deploy").mkdir(exist_ok=True)
    target = Path("deploy/model.pkl")
    shutil.copyfile(source, target)
    try:
        verdict = proml.verify_or_raise(target, artefact="model", deep=True)
    except proml.VerificationFailed as exc:
        target.unlink()
        print(f"deploy: refused: {exc.diagnosis}", file=sys.stderr)
        for reason in exc.reasons:
            print(f"  - {reason}", file=sys.stderr)
        return 1
    with open(target, "rb") as handle:
        model = pickle.load(handle)  # verified above: the approved, recorded bytes
    with open("data/test.csv", newline="") as handle:
        row = list(csv.reader(handle))[1]
    prediction = model.predict([[float(v) for v in row[:-1]]])[0]
    print(
        f"deploy: {verdict.cid} ('{verdict.artefact}', {verdict.state}, "
        f"{len(verdict.lineage)} upstream version(s) checked); first test row -> {prediction}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "models/model.pkl"))
