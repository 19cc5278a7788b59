"""Quickstart step `evaluate`: score models/model.pkl on data/test.csv into metrics.json."""

import csv
import json
import pickle

with open("models/model.pkl", "rb") as handle:
    threshold = pickle.load(handle)["threshold"]
with open("data/test.csv", newline="") as handle:
    rows = [(float(r["x"]), int(r["label"])) for r in csv.DictReader(handle)]
correct = sum((x > threshold) == bool(y) for x, y in rows)
with open("metrics.json", "w") as handle:
    json.dump({"accuracy": correct / len(rows), "n": len(rows)}, handle)
print(f"test accuracy {correct / len(rows):.3f}")
