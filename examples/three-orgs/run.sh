#!/usr/bin/env bash
# Three organisations, one history. A client organisation deploys the project's ledger and
# grants roles; a data vendor delivers a dataset; the client validates it; a model developer
# trains and evaluates a model from it; the client's verifier approves it; an auditor rebuilds
# the history and lineage from the chain and IPFS alone and verifies the model. Each party has
# its own directory, keystore (encrypted with its own password) and configuration; they share
# one chain and one IPFS node. Then each tries what an insider would, and is caught.
#
# Usage: bash examples/three-orgs/run.sh [WORKDIR]
#   Uses PROML_CHAIN_URL / PROML_IPFS_URL when set; otherwise starts anvil and an offline
#   js-ipfs node from tools/ on 127.0.0.1 (random ports, no bootstrap peers) and stops them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ -n "${PROML:-}" ]; then proml=("$PROML")
elif [ -x "$repo/.venv/bin/proml" ]; then proml=("$repo/.venv/bin/proml"); PATH="$repo/.venv/bin:$PATH"
elif command -v proml >/dev/null 2>&1; then proml=(proml)
else echo "proml is not installed: run 'make example' first" >&2; exit 2; fi
python=${PYTHON:-python3}; [ -x "$repo/.venv/bin/python" ] && python="$repo/.venv/bin/python"

work="${1:-$(mktemp -d -t proml-three-orgs.XXXXXX)}"
mkdir -p "$work"
say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_for() {  # wait_for FILE PATTERN: bounded wait until FILE contains PATTERN
  for _ in $(seq 1 300); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.2; done
  echo "timed out waiting for '$2' in $1" >&2; exit 1
}

if [ -z "${PROML_CHAIN_URL:-}" ]; then
  "$repo/tools/node_modules/.bin/anvil" --host 127.0.0.1 --port 0 >"$work/anvil.log" 2>&1 &
  pids+=($!)
  wait_for "$work/anvil.log" 'Listening on 127\.0\.0\.1:[0-9]+'
  export PROML_CHAIN_URL="http://$(grep -oE '127\.0\.0\.1:[0-9]+' "$work/anvil.log" | head -1)"
fi
if [ -z "${PROML_IPFS_URL:-}" ]; then
  export IPFS_PATH="$work/ipfs-repo"
  export NODE_OPTIONS="--require $repo/tools/ipfs-polyfill.cjs"
  jsipfs="$repo/tools/node_modules/.bin/jsipfs"
  "$jsipfs" init --profile test >/dev/null
  "$jsipfs" config --json Addresses.RPC '"/ip4/127.0.0.1/tcp/0"'
  "$jsipfs" config --json Addresses.Gateway '""'
  "$jsipfs" config --json Bootstrap '[]'
  "$jsipfs" daemon --offline >"$work/ipfs.log" 2>&1 &
  pids+=($!)
  wait_for "$IPFS_PATH/api" '/tcp/[0-9]+'
  export PROML_IPFS_URL="$(sed -E 's#/ip4/([0-9.]+)/tcp/([0-9]+).*#http://\1:\2#' "$IPFS_PATH/api")"
  unset NODE_OPTIONS
fi
echo "chain $PROML_CHAIN_URL, IPFS $PROML_IPFS_URL" >&2

# Each party: its own directory, its own keystore password, the same published policy.
party() { local org=$1; shift; (cd "$work/$org" && PROML_KEYSTORE_PASSWORD="$org-secret" "${proml[@]}" "$@"); }
refused() {  # refused ORG ARGS...: the command must exit 1 (refused / not verified)
  local code=0; party "$@" || code=$?
  if [ "$code" -ne 1 ]; then echo "expected a refusal (exit 1), got $code: $*" >&2; exit 1; fi
  echo "   -> refused, as it must be" >&2
}
address() { party "$1" account list --json | "$python" -c 'import json,sys; print(json.load(sys.stdin)["accounts"][0]["address"])'; }
for org in client vendor developer auditor; do mkdir -p "$work/$org"; cp "$here/proml.yaml" "$work/$org/"; done
cp "$here/deliver.py" "$work/vendor/"; cp "$here/train.py" "$here/evaluate.py" "$work/developer/"

say "client: deploy the ledger; a separate verifier key in the client organisation"
party client init --no-grant
party client account new verifier >/dev/null

say "vendor, developer, auditor: own keys, join the ledger the published proml.lock pins"
for org in vendor developer auditor; do cp "$work/client/proml.lock" "$work/$org/"; party "$org" init; done

say "client grants roles"
party client roles grant data-admin default
party client roles grant verifier verifier
party client roles grant data-vendor "$(address vendor)"
party client roles grant developer "$(address developer)"
party client roles grant auditor "$(address auditor)"

say "vendor delivers the dataset (registered as 'delivered', pushed to IPFS)"
party vendor run -- python deliver.py

say "client fetches it from IPFS (verified against the ledger) and validates it"
party client pull applicants
party client transition applicants validate --note "schema, ranges and label rate checked"

say "developer fetches the validated data, trains and evaluates"
party developer pull applicants
party developer run -- python train.py
party developer run -- python evaluate.py

say "insider: the developer approves their own model without the verifier role"
refused developer transition scorer approve

say "client's verifier approves the model"
party client pull scorer
(cd "$work/client" && PROML_ACCOUNT=verifier PROML_KEYSTORE_PASSWORD=client-secret "${proml[@]}" transition scorer approve --note "accuracy reviewed")

say "auditor: history and lineage from the chain and IPFS alone; verify the model"
party auditor pull scorer
party auditor verify models/scorer.json --artefact scorer --deep
party auditor log

say "insider: the vendor swaps the dataset after validation and hands it to the developer"
"$python" - "$work/vendor/data/applicants.csv" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read().replace(",1\n", ",0\n", 25)   # quietly relabel 25 defaulters
open(path, "w").write(text)
PY
cp "$work/vendor/data/applicants.csv" "$work/developer/data/applicants.csv"
refused developer run -- python train.py
refused developer verify data/applicants.csv --artefact applicants

say "insider: the developer rewrites the training record in its local store"
record=$(party developer show scorer --json | "$python" -c 'import json,sys; d=json.load(sys.stdin); print(d["steps"][0]["record_cid"])')
block=$("$python" -c 'import sys; from proml_cli.content._unixfs import Cid; d=Cid.parse(sys.argv[1]).digest.hex(); print(f"{d[:2]}/{d}")' "$record")
file="$work/developer/.proml/content/blocks/$block"
chmod u+w "$file"; "$python" - "$file" <<'PY'
import sys
path = sys.argv[1]
data = open(path, "rb").read()
open(path, "wb").write(data.replace(b'"python"', b'"pythom"'))
PY
refused developer verify models/scorer.json --artefact scorer

say "every party sees the same history"
for org in client vendor developer auditor; do
  party "$org" log --json | "$python" -c 'import hashlib,json,sys; e=json.load(sys.stdin)["entries"]; print(len(e), hashlib.sha256(json.dumps([[x["tx_hash"], x["action"], x["to"]] for x in e]).encode()).hexdigest()[:16])'
done | sort -u | { read -r line; if read -r other; then echo "histories differ" >&2; exit 1; fi; echo "   -> one history: $line" >&2; }
echo "workspace: $work"
