"""Train a logistic-regression classifier on data/train.csv and write models/model.pkl."""

import csv
import pickle
from pathlib import Path

import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def load(path):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return [[float(v) for v in r[:-1]] for r in rows], [int(r[-1]) for r in rows]


params = yaml.safe_load(Path("params.yaml").read_text())
features, labels = load("data/train.csv")
model = make_pipeline(
    StandardScaler(),
    LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=params["seed"]),
)
model.fit(features, labels)
Path("models").mkdir(exist_ok=True)
with open("models/model.pkl", "wb") as handle:
    pickle.dump(model, handle, protocol=5)
print(f"train: fitted on {len(labels)} rows")
