"""Evaluate models/model.pkl on data/test.csv; write metrics.json."""

import csv
import json
import pickle

from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

with open("data/test.csv", newline="") as handle:
    rows = list(csv.reader(handle))[1:]
features = [[float(v) for v in r[:-1]] for r in rows]
labels = [int(r[-1]) for r in rows]
with open("models/model.pkl", "rb") as handle:
    model = pickle.load(handle)  # the file was verified by proml before this step ran
predicted = model.predict(features)
metrics = {
    "accuracy": round(float(accuracy_score(labels, predicted)), 4),
    "f1": round(float(f1_score(labels, predicted)), 4),
    "roc_auc": round(float(roc_auc_score(labels, model.predict_proba(features)[:, 1])), 4),
    "rows": len(labels),
}
with open("metrics.json", "w") as handle:
    json.dump(metrics, handle, indent=2, sort_keys=True)
print("evaluate:", json.dumps(metrics, sort_keys=True))
