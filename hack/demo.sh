#!/usr/bin/env bash
# The main job end to end on the embedded defaults: control plane + PostgreSQL up, CRD
# installed, samples applied, operator syncing them, `kubectl get shp` showing every one synced;
# then the registry API serving them and the Python SDK healing a failing payment call.
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
api_pid=""
trap 'kill -INT $operator_pid $api_pid 2>/dev/null; wait $operator_pid $api_pid 2>/dev/null || true' EXIT

if ! kubectl wait -n "$NAMESPACE" --for=condition=Ready shp --all --timeout=120s >&2; then
  echo "» samples did not become Ready; last operator log lines:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi

kubectl get shp -n "$NAMESPACE" -o wide
echo
psql "$SELFHEAL_DATABASE_URL" -X -c "SELECT COUNT(*) AS active_patches FROM sdk_self_healing_registry WHERE active = true;"

key="$state_dir/demo-signing.pem"
[ -f "$key" ] || "$BIN/selfheal" keygen --out "$key" >"$state_dir/demo-signing.pub" 2>/dev/null
port=${SELFHEAL_DEMO_API_PORT:-8140}
api_log="$state_dir/demo-api.log"
echo "» starting the registry API on :$port (log: $api_log)" >&2
"$BIN/selfheal" api --signing-key "$key" --host 127.0.0.1 --port "$port" >"$api_log" 2>&1 &
api_pid=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
token=$("$BIN/selfheal" token create --developer demo-developer 2>/dev/null)
"$BIN/python" hack/demo_heal.py "http://127.0.0.1:$port" "$token" "$state_dir/demo-signing.pub"
sleep 0.3  # the API writes its request log lines in batches every 100 ms
grep 'self-heal {' "$api_log" | tail -n 1 | sed 's/^/  [api] /' || true
echo
psql "$SELFHEAL_DATABASE_URL" -X -c "
  SELECT p.sdk_language, p.error_signature, p.description, COUNT(a.id) AS applications,
         AVG(CASE WHEN a.success THEN 1.0 ELSE 0.0 END) AS success_rate
  FROM sdk_self_healing_registry p
  LEFT JOIN sdk_patch_applications a ON p.id = a.patch_id
  WHERE a.applied_at > NOW() - INTERVAL '7 days'
  GROUP BY p.id, p.sdk_language, p.error_signature, p.description
  ORDER BY applications DESC LIMIT 10;"
cat >&2 <<MSG
» every sample is synced, served and one of them healed a real call. To keep going:
    eval "\$(.venv/bin/selfheal dev up)"   # same environment, prints the exports again
    .venv/bin/selfheal operator            # keep syncing while you edit samples/
    make down                              # stop everything
MSG
