"""The data vendor's delivery: a small synthetic applicants table (deterministic)."""

import csv
import random
from pathlib import Path

rng = random.Random(2022)
Path("data").mkdir(exist_ok=True)
with open("data/applicants.csv", "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["income", "debt", "years_employed", "defaulted"])
    for _ in range(500):
        income = rng.randint(15, 150)
        debt = rng.randint(0, 80)
        years = rng.randint(0, 30)
        risk = debt / (income + 1) - years / 60
        writer.writerow([income, debt, years, int(risk + rng.gauss(0, 0.2) > 0.3)])
print("deliver: 500 applicants")
