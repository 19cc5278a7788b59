"""Accuracy of the scorer on the applicants table; writes metrics.json."""

import csv
import json
from pathlib import Path

model = json.loads(Path("models/scorer.json").read_text())
with open("data/applicants.csv", newline="") as handle:
    rows = [(int(r["income"]), int(r["debt"]), int(r["defaulted"])) for r in csv.DictReader(handle)]
hits = sum((d / (i + 1) > model["threshold"]) == bool(y) for i, d, y in rows)
metrics = {"accuracy": round(hits / len(rows), 4)}
Path("metrics.json").write_text(json.dumps(metrics, sort_keys=True))
print(f"evaluate: accuracy {hits / len(rows):.4f}")
