"""Split the Wisconsin diagnostic breast cancer data (shipped inside scikit-learn) into CSVs."""

import csv
from pathlib import Path

import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

params = yaml.safe_load(Path("params.yaml").read_text())
data = load_breast_cancer()
x_train, x_test, y_train, y_test = train_test_split(
    data.data,
    data.target,
    test_size=params["test_fraction"],
    random_state=params["seed"],
    stratify=data.target,
)
Path("data").mkdir(exist_ok=True)
header = [name.replace(" ", "_") for name in data.feature_names] + ["target"]
for name, rows, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
    with open(f"data/{name}.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row, label in zip(rows, labels, strict=True):
            writer.writerow([f"{v:.6g}" for v in row] + [int(label)])
print(f"prepare: {len(y_train)} training rows, {len(y_test)} test rows")
