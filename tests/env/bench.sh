#!/usr/bin/env bash
# Scale benchmarks against the real local control plane and moto (not part of `make test`:
# they measure, they do not pass or fail on timing):
#   1. controller memory per 1,000 watched objects (RSS of the controller process);
#   2. time and AWS requests to converge N DataLakes created at once;
#   3. a full resync of N converged lakes: AWS reads, and writes (must be 0).
# Usage: tests/env/bench.sh [LAKES] [OBJECTS]   (defaults 20 and 1000)
set -euo pipefail
cd "$(dirname "$0")/../.."

LAKES="${1:-20}"
OBJECTS="${2:-1000}"
BIN="$(bash tests/env/install.sh | tail -n1)"
export PATH="$BIN:$PATH" LAKEOPS_BIN_DIR="$BIN"
TARGET="${CARGO_TARGET_DIR:-target}"
PROFILE="${LAKEOPS_BENCH_PROFILE:-release}"
STATE="$(mktemp -d)"
NS=bench
PY="$HOME/.cache/lakeops/venv/bin/python"

echo "==> building lakeops ($PROFILE)"
if [ "$PROFILE" = release ]; then
  cargo build --quiet --locked --release -p lakeops -p lakeops-testenv --bins
else
  cargo build --quiet --locked -p lakeops -p lakeops-testenv --bins
fi
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

"$TARGET/$PROFILE/lakeops-testenv" --dir "$STATE/env" --env-file "$STATE/env.sh" >"$STATE/testenv.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do [ -s "$STATE/env.sh" ] && break; sleep 0.5; done
# shellcheck disable=SC1091
. "$STATE/env.sh"
kubectl create namespace "$NS" >/dev/null

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$TARGET/$PROFILE/lakeops" controller --watch-namespace "$NS" --metrics-addr "127.0.0.1:$port" \
  --resync-interval 1h >"$STATE/controller.log" 2>&1 &
ctrl=$!
pids+=("$ctrl")
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.5; done

metric() { # sum of a metric's series matching a regex
  curl -s "http://127.0.0.1:$port/metrics" | "$PY" -c '
import re, sys
pat = re.compile(sys.argv[1])
total = 0.0
for line in sys.stdin:
    if line.startswith("#"): continue
    name, _, value = line.rpartition(" ")
    if pat.search(name): total += float(value)
print(int(total))' "$1"
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$ctrl/status"; }

echo "==> 1. memory per $OBJECTS watched objects"
sleep 2
before=$(rss_kb)
"$PY" - "$OBJECTS" >"$STATE/objects.yaml" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    # EtlFunctions whose lake does not exist: each is cached, validated and given a status,
    # with no AWS call, so the measure is the controller's own per-object cost.
    print(f"""---
apiVersion: lakeops.dev/v1alpha1
kind: EtlFunction
metadata: {{name: f{i:05d}, labels: {{bench: memory}}}}
spec:
  dataLakeRef: {{name: missing}}
  source: {{zone: raw, prefix: in/{i}/}}
  destination: {{zone: curated, prefix: out/{i}/}}
  code: {{s3Bucket: bench-artifacts, s3Key: f{i}.zip}}
  runtime: python3.12
  handler: app.handler
  deadLetterQueueArn: arn:aws:sqs:eu-west-1:123456789012:dlq
  environment: {{MODE: batch, OUTPUT: parquet}}""")
PY
start=$(date +%s.%N)
kubectl apply --server-side -n "$NS" -f "$STATE/objects.yaml" >/dev/null
until [ "$(metric 'lakeops_objects\{kind="EtlFunction",ready="False"\}')" -ge "$OBJECTS" ]; do sleep 1; done
# Every object has been reconciled and given its status; let allocations settle.
until [ "$(kubectl get etl -n "$NS" -o name --selector bench=memory | wc -l)" -ge "$OBJECTS" ]; do sleep 1; done
sleep 5
after=$(rss_kb)
elapsed=$(python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 1))" "$(date +%s.%N)" "$start")
echo "    RSS before: $((before / 1024)) MiB, after $OBJECTS objects: $((after / 1024)) MiB"
echo "    => $(((after - before) / 1024)) MiB per $OBJECTS objects ($(((after - before) * 1024 / OBJECTS)) bytes each); all reconciled in ${elapsed} s"
kubectl delete etl -n "$NS" --selector bench=memory --wait=false >/dev/null

echo "==> 2. converging $LAKES DataLakes created at once (2 zones, 1 table, no trail)"
"$PY" - "$LAKES" >"$STATE/lakes.yaml" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"""---
apiVersion: lakeops.dev/v1alpha1
kind: DataLake
metadata: {{name: lake{i:03d}}}
spec:
  region: eu-west-1
  zones: [{{name: raw}}, {{name: curated}}]
  catalog: {{tables: [{{name: runs, partitionKey: {{name: id, type: S}}}}]}}
  audit: {{trail: false}}""")
PY
reads_before=$(metric 'lakeops_aws_requests_total\{.*operation="(Get|List|Describe|Head)')
all_before=$(metric 'lakeops_aws_requests_total')
start=$(date +%s.%N)
kubectl apply --server-side -n "$NS" -f "$STATE/lakes.yaml" >/dev/null
until [ "$(metric 'lakeops_objects\{kind="DataLake",ready="True"\}')" -ge "$LAKES" ]; do sleep 0.5; done
elapsed=$(python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 1))" "$(date +%s.%N)" "$start")
all=$(( $(metric 'lakeops_aws_requests_total') - all_before ))
reads=$(( $(metric 'lakeops_aws_requests_total\{.*operation="(Get|List|Describe|Head)') - reads_before ))
echo "    all Ready after ${elapsed} s; $all AWS requests ($((all / LAKES)) per lake: $((reads / LAKES)) reads, $(((all - reads) / LAKES)) writes)"

echo "==> 3. a full resync of $LAKES converged lakes"
all_before=$(metric 'lakeops_aws_requests_total')
reads_before=$(metric 'lakeops_aws_requests_total\{.*operation="(Get|List|Describe|Head)')
stamp="resync-$(date +%s)"
for i in $(seq 0 $((LAKES - 1))); do
  kubectl annotate datalake -n "$NS" "$(printf 'lake%03d' "$i")" "lakeops.dev/reconcile-requested-at=$stamp" --overwrite >/dev/null
done
until [ "$(kubectl get dl -n "$NS" -o jsonpath='{range .items[*]}{.status.lastHandledReconcileAt}{"\n"}{end}' | grep -c "$stamp")" -ge "$LAKES" ]; do sleep 0.5; done
all=$(( $(metric 'lakeops_aws_requests_total') - all_before ))
reads=$(( $(metric 'lakeops_aws_requests_total\{.*operation="(Get|List|Describe|Head)') - reads_before ))
echo "    $all AWS requests: $((reads / LAKES)) reads per lake, $((all - reads)) writes in total"
