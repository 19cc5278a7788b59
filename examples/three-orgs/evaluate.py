"""Accuracy of the scorer on the applicants table; writes metrics.json."""

import csv
import json

model = json.load(open("models/scorer.json"))
with open("data/applicants.csv", newline="") as handle:
    rows = [(int(r["income"]), int(r["debt"]), int(r["defaulted"])) for r in csv.DictReader(handle)]
hits = sum((d / (i + 1) > model["threshold"]) == bool(y) for i, d, y in rows)
json.dump({"accuracy": round(hits / len(rows), 4)}, open("metrics.json", "w"), sort_keys=True)
print(f"evaluate: accuracy {hits / len(rows):.4f}")
