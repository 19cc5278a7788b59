"""Quickstart step `prepare`: write a small, deterministic dataset split into train and test."""

import csv
import random
from pathlib import Path

rng = random.Random(42)
rows = []
for _ in range(200):
    x = rng.uniform(0, 10)
    rows.append((round(x, 3), int(x + rng.gauss(0, 1.5) > 5)))

Path("data").mkdir(exist_ok=True)
for name, part in (("train", rows[:160]), ("test", rows[160:])):
    with open(f"data/{name}.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x", "label"])
        writer.writerows(part)
print("wrote data/train.csv and data/test.csv")
