#!/usr/bin/env bash
# The whole example on the embedded default: prepare data -> a data steward validates it ->
# train -> evaluate -> a verifier approves the model -> verify before "deployment".
# Usage: bash examples/breast-cancer/run.sh [WORKDIR]   (WORKDIR: a new temp dir by default)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ -n "${PROML:-}" ]; then
  proml=("$PROML")
elif [ -x "$repo/.venv/bin/proml" ]; then
  proml=("$repo/.venv/bin/proml")
  PATH="$repo/.venv/bin:$PATH"
elif command -v proml >/dev/null 2>&1; then
  proml=(proml)
else
  echo "proml is not installed: run 'make example' from $repo (or pip install '$repo[examples]')" >&2
  exit 2
fi

work="${1:-$(mktemp -d -t proml-example.XXXXXX)}"
mkdir -p "$work"
# A workspace this script made before is started afresh (its chain, key and outputs go);
# any other non-empty directory is left alone: the script never deletes files it did not make.
marker="$work/.proml-example"
if [ -e "$marker" ]; then
  echo "reusing $work: removing the earlier example run's files" >&2
  rm -rf "$work"/{.proml,proml.lock,data,models,deploy,metrics.json}
elif [ -n "$(ls -A "$work")" ]; then
  echo "$work is not empty and was not made by this example: choose another WORKDIR" >&2
  exit 2
fi
echo "workspace of examples/breast-cancer/run.sh; re-running it here starts afresh" >"$marker"
cp "$here"/{proml.yaml,params.yaml,prepare.py,train.py,evaluate.py} "$work"/
cd "$work"
say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

say "init: deploy the project's ledger on the embedded chain, define kinds and roles"
"${proml[@]}" init
# A second local identity who may train but not approve: the contract must refuse it.
"${proml[@]}" account list | grep -q '^intern ' || "${proml[@]}" account new intern
"${proml[@]}" roles grant ml-engineer intern

say "prepare: split the data (the outputs enter 'received')"
"${proml[@]}" run -- python prepare.py

say "train before validation: refused, the command does not start"
if "${proml[@]}" run -- python train.py; then
  echo "expected training on unvalidated data to be refused" >&2
  exit 1
fi

say "data steward validates both datasets"
"${proml[@]}" transition train-set validate --note "schema and label balance checked"
"${proml[@]}" transition test-set validate

say "train and evaluate (the model enters 'trained', then 'evaluated')"
"${proml[@]}" run -- python train.py
"${proml[@]}" run -- python evaluate.py

say "the intern (ml-engineer, not model-verifier) tries to approve: the contract refuses"
if "${proml[@]}" transition model approve --as intern; then
  echo "expected the approval without the model-verifier role to be refused" >&2
  exit 1
fi

say "the verifier approves the model"
"${proml[@]}" transition model approve --note "metrics reviewed: see metrics.json"

say "gate before deployment: verify the model and its whole lineage"
"${proml[@]}" verify models/model.pkl --artefact model --deep
mkdir -p deploy && cp models/model.pkl deploy/model.pkl

say "history"
"${proml[@]}" log
echo "workspace: $work"
