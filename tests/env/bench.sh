#!/usr/bin/env bash
# Scale benchmarks against the real local control plane and moto (not part of `make test`:
# they measure, they do not pass or fail on timing):
#   1. controller memory per 1,000 watched objects (RSS of the controller process);
#   2. time, AWS requests and object writes to create N DataLakes at once, against a
#      straight-line baseline that sends only the writes the same end state needs;
#   3. a full resync of the converged lakes: AWS reads, and writes (must be 0).
# Usage: tests/env/bench.sh [OBJECTS] [SIZES] [RUNS]   (defaults 1000, "10 50 200" and 3)
# Each size is measured RUNS times, controller and baseline in turn, on fresh namespaces and
# buckets; the time ratio quoted is the median of the runs' ratios (one run on a shared
# machine is too noisy to quote).
set -euo pipefail
cd "$(dirname "$0")/../.."

OBJECTS="${1:-1000}"
SIZES="${2:-10 50 200}"
RUNS="${3:-3}"
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
"$TARGET/$PROFILE/lakeops" controller --metrics-addr "127.0.0.1:$port" \
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
by_operation() { # AWS requests so far by operation, as JSON
  curl -s "http://127.0.0.1:$port/metrics" | "$PY" -c '
import json, re, sys
out = {}
for line in sys.stdin:
    m = re.match(r"lakeops_aws_requests_total\{(.*)\} (\S+)", line)
    if not m: continue
    op = re.search(r"operation=\"([^\"]+)\"", m.group(1)).group(1)
    out[op] = out.get(op, 0) + int(float(m.group(2)))
print(json.dumps(out))'
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

echo "==> 2. creating lakes: the controller against a straight-line baseline (3 zones, 1 table, trail)"
# Time is measured from the apply until one watch of the lakes has seen every one Ready (each
# watch event is stamped as it arrives; `kubectl wait` only tells when to stop looking, as it
# waits for one object after another and would add its own per-object latency).
# The baseline sends only the writes the end state needs, with as many lakes in flight as
# the controller's --concurrency (8); `lakeops plan` on its lakes must then find nothing to
# change, which proves both reached the identical end state.
lakes_yaml() { # COUNT
  "$PY" - "$1" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"""---
apiVersion: lakeops.dev/v1alpha1
kind: DataLake
metadata: {{name: lake{i:03d}}}
spec:
  region: eu-west-1
  zones: [{{name: raw}}, {{name: curated}}, {{name: analytics}}]
  catalog: {{tables: [{{name: runs, partitionKey: {{name: id, type: S}}}}]}}
  audit: {{trail: true}}""")
PY
}
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}' if b else 'n/a')" "$1" "$2"; }
reads_re='lakeops_aws_requests_total\{.*operation="(Get|List|Describe|Head)'
median() { python3 -c "import statistics, sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }
last_ns=""
summary=()
for n in $SIZES; do
 lakes_yaml "$n" >"$STATE/lakes-$n.yaml"
 ratios=(); reads_ratios=(); ctl_reads_ratios=()
 for run in $(seq 1 "$RUNS"); do
  ns="lakes-$n-r$run"; base_ns="baseline-$n-r$run"; last_ns="$ns"
  kubectl create namespace "$ns" >/dev/null
  # Every MODIFIED event of a lake between its creation and Ready: the finalizer patch and
  # each status write (nothing else writes these objects here), stamped on arrival.
  kubectl get datalakes -n "$ns" --watch --output-watch-events \
    -o jsonpath='{.type} {.object.metadata.name} {.object.status.conditions[?(@.type=="Ready")].status}{"\n"}' 2>/dev/null \
    > >("$PY" -u -c 'import sys, time
for line in sys.stdin: print(time.time(), line, end="", flush=True)' >"$STATE/watch-$ns.txt") &
  watcher=$!
  pids+=("$watcher")
  sleep 1
  all_before=$(metric 'lakeops_aws_requests_total')
  reads_before=$(metric "$reads_re")
  ops_before=$(by_operation)
  start=$(date +%s.%N)
  kubectl apply --server-side -n "$ns" -f "$STATE/lakes-$n.yaml" >/dev/null
  # kubectl creates the lakes one request after another; the baseline knows them all at once.
  applied_s=$(python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 2))" "$(date +%s.%N)" "$start")
  kubectl wait --for=condition=Ready datalakes --all -n "$ns" --timeout=60m >/dev/null
  sleep 2
  kill "$watcher" 2>/dev/null || true
  # When the watch had seen the last lake turn Ready.
  ctl_s=$("$PY" - "$STATE/watch-$ns.txt" "$start" <<'PY'
import sys
ready, last = set(), 0.0
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) >= 4 and parts[3] == "True" and parts[2] not in ready:
        ready.add(parts[2]); last = float(parts[0])
print(round(last - float(sys.argv[2]), 2))
PY
)
  ctl_all=$(( $(metric 'lakeops_aws_requests_total') - all_before ))
  ctl_reads=$(( $(metric "$reads_re") - reads_before ))
  ctl_writes=$((ctl_all - ctl_reads))
  modified=$(grep -c '^[0-9.]* MODIFIED ' "$STATE/watch-$ns.txt" || true)
  ops_after=$(by_operation)

  base_json=$("$TARGET/$PROFILE/lakeops-bench-baseline" --manifests "$STATE/lakes-$n.yaml" --namespace "$base_ns" --concurrency 8)
  # The same baseline plus the controller's existence reads (one per resource, at once before
  # the first write): what those reads alone cost on this emulator.
  reads_json=$("$TARGET/$PROFILE/lakeops-bench-baseline" --manifests "$STATE/lakes-$n.yaml" --namespace "$base_ns-reads" --concurrency 8 --existence-reads)
  reads_s=$(echo "$reads_json" | jq -r .seconds)
  base_s=$(echo "$base_json" | jq -r .seconds)
  base_writes=$(echo "$base_json" | jq -r .writes)
  base_all=$(echo "$base_json" | jq -r .requests)
  if "$TARGET/$PROFILE/lakeops" plan -n "$base_ns" --detailed-exitcode "$STATE/lakes-$n.yaml" >"$STATE/plan-$n.txt" 2>&1; then
    same="identical end state (lakeops plan: no changes)"
  else
    same="END STATES DIFFER: lakeops plan on the baseline's lakes wants changes (see below)"
  fi
  echo "    $n lakes, run $run of $RUNS:"
  echo "    $n lakes: controller ${ctl_s} s, $ctl_all requests ($((ctl_writes / n)) writes + $((ctl_reads / n)) reads per lake), $((modified / n)) object writes per lake (finalizer + status); the apply itself took ${applied_s} s"
  echo "    $n lakes: baseline   ${base_s} s, $base_all requests ($((base_writes / n)) writes per lake); $same"
  echo "    $n lakes: baseline with the existence reads ${reads_s} s, $(echo "$reads_json" | jq -r .requests) requests"
  echo "    $n lakes: controller/baseline time $(ratio "$ctl_s" "$base_s"), writes $(ratio "$ctl_writes" "$base_writes"), requests $(ratio "$ctl_all" "$base_all"); baseline with reads/baseline time $(ratio "$reads_s" "$base_s"), controller/baseline with reads $(ratio "$ctl_s" "$reads_s")"
  # Requests the controller sent beyond the baseline's, by operation (reads included).
  "$PY" - "$ops_before" "$ops_after" "$base_json" "$n" <<'PY'
import json, sys
before, after, base, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])["operations"], int(sys.argv[4])
ctl = {op: after.get(op, 0) - before.get(op, 0) for op in after}
extra = {op: ctl.get(op, 0) - base.get(op, 0) for op in set(ctl) | set(base)}
extra = {op: d for op, d in sorted(extra.items()) if d}
print("    beyond the baseline, per lake: " + (", ".join(f"{op} {d / n:+g}" for op, d in extra.items()) or "nothing"))
PY
  if [ "$same" != "identical end state (lakeops plan: no changes)" ]; then head -40 "$STATE/plan-$n.txt"; fi
  ratios+=("$(ratio "$ctl_s" "$base_s")")
  reads_ratios+=("$(ratio "$reads_s" "$base_s")")
  ctl_reads_ratios+=("$(ratio "$ctl_s" "$reads_s")")
 done
 summary+=("$n lakes, medians of $RUNS runs: controller/baseline time $(median "${ratios[@]}") (runs: ${ratios[*]}); baseline with the existence reads/baseline $(median "${reads_ratios[@]}"); controller/baseline with reads $(median "${ctl_reads_ratios[@]}")")
done
for line in "${summary[@]}"; do echo "    $line"; done

echo "==> 3. a full resync of the lakes in $last_ns"
count=$(kubectl get dl -n "$last_ns" -o name | wc -l)
all_before=$(metric 'lakeops_aws_requests_total')
reads_before=$(metric "$reads_re")
status_before=$(metric 'lakeops_status_writes_total\{.*written="true"')
stamp="resync-$(date +%s)"
kubectl get dl -n "$last_ns" -o name | xargs -I{} kubectl annotate -n "$last_ns" {} "lakeops.dev/reconcile-requested-at=$stamp" --overwrite >/dev/null
until [ "$(kubectl get dl -n "$last_ns" -o jsonpath='{range .items[*]}{.status.lastHandledReconcileAt}{"\n"}{end}' | grep -c "$stamp")" -ge "$count" ]; do sleep 0.5; done
all=$(( $(metric 'lakeops_aws_requests_total') - all_before ))
reads=$(( $(metric "$reads_re") - reads_before ))
status=$(( $(metric 'lakeops_status_writes_total\{.*written="true"') - status_before ))
echo "    $all AWS requests: $((reads / count)) reads per lake, $((all - reads)) AWS writes in total; $status status writes ($count echo the requested reconcile, as asked)"
