"""Quickstart step `train`: fit a one-feature threshold classifier on data/train.csv."""

import csv
import pickle
from pathlib import Path

with open("data/train.csv", newline="") as handle:
    rows = [(float(r["x"]), int(r["label"])) for r in csv.DictReader(handle)]


def accuracy(threshold: float) -> float:
    return sum((x > threshold) == bool(y) for x, y in rows) / len(rows)


best = max((x for x, _ in rows), key=accuracy)
Path("models").mkdir(exist_ok=True)
with open("models/model.pkl", "wb") as handle:
    pickle.dump({"threshold": best}, handle, protocol=4)
print(f"threshold {best:.3f}, train accuracy {accuracy(best):.3f}")
