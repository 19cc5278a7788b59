"""The developer's model: a threshold on the debt-to-income ratio, fitted on the data."""

import csv
import json
from pathlib import Path

with open("data/applicants.csv", newline="") as handle:
    rows = [(int(r["income"]), int(r["debt"]), int(r["defaulted"])) for r in csv.DictReader(handle)]
best = max(
    (sum((d / (i + 1) > t) == bool(y) for i, d, y in rows), t)
    for t in [x / 100 for x in range(1, 100)]
)
Path("models").mkdir(exist_ok=True)
Path("models/scorer.json").write_text(json.dumps({"threshold": best[1]}, sort_keys=True) + "\n")
print(f"train: threshold {best[1]} ({best[0]}/{len(rows)} correct)")
