"""train.py's in-script variant: the same policy step, captured from inside Python.

Instead of `proml run -- python train.py`, the script opens the project and runs its training
inside `project.step("train")`: on enter the training set is checked (recorded, 'validated'),
on a clean exit the model is stored, the record written and anchored exactly as `proml run`
would, with the logged parameters and metrics in it.
"""

import csv
import pickle
import sys
from pathlib import Path

import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import proml_cli as proml


def load(path):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return [[float(v) for v in r[:-1]] for r in rows], [int(r[-1]) for r in rows]


def main():
    project = proml.open_project()
    with project.step("train") as step:
        params = yaml.safe_load(Path("params.yaml").read_text())
        step.log_params(params)
        features, labels = load("data/train.csv")
        model = make_pipeline(
            StandardScaler(),
            LogisticRegression(
                C=params["C"], max_iter=params["max_iter"], random_state=params["seed"]
            ),
        )
        model.fit(features, labels)
        step.log_metrics({"train_accuracy": round(float(model.score(features, labels)), 6)})
        Path("models").mkdir(exist_ok=True)
        with open("models/model.pkl", "wb") as handle:
            pickle.dump(model, handle, protocol=5)
    print(f"train: fitted on {len(labels)} rows, record {step.outcome.record_cid}")


if __name__ == "__main__":
    try:
        main()
    except proml.ProMLError as exc:
        print(f"train: {exc.diagnostics()}", file=sys.stderr)
        sys.exit(int(exc.exit_code))
