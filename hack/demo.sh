#!/usr/bin/env bash
# The main job end to end on the embedded defaults: control plane + PostgreSQL up, CRD
# installed, samples applied, operator syncing them, `kubectl get shp` showing every one synced.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
NAMESPACE=${SELFHEAL_DEMO_NAMESPACE:-default}

eval "$("$BIN/selfheal" dev up)"
state_dir=${SELFHEAL_STATE_DIR:-$HOME/.local/state/selfheal/dev}
log="$state_dir/demo-operator.log"

echo "» applying the samples to namespace $NAMESPACE" >&2
kubectl apply -n "$NAMESPACE" -f samples/ >&2

echo "» starting the operator (log: $log)" >&2
"$BIN/selfheal" operator >"$log" 2>&1 &
operator_pid=$!
trap 'kill -INT $operator_pid 2>/dev/null; wait $operator_pid 2>/dev/null || true' EXIT

if ! kubectl wait -n "$NAMESPACE" --for=condition=Ready shp --all --timeout=120s >&2; then
  echo "» samples did not become Ready; last operator log lines:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi

kubectl get shp -n "$NAMESPACE" -o wide
echo
psql "$SELFHEAL_DATABASE_URL" -X -c "SELECT COUNT(*) AS active_patches FROM sdk_self_healing_registry WHERE active = true;"
cat >&2 <<MSG
» every sample is synced into the registry. To keep going:
    eval "\$(.venv/bin/selfheal dev up)"   # same environment, prints the exports again
    .venv/bin/selfheal operator            # keep syncing while you edit samples/
    make down                              # stop everything
MSG
