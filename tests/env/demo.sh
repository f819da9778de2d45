#!/usr/bin/env bash
# The main job: a local control plane (etcd + kube-apiserver) and the moto AWS emulator,
# the lakeops controller running against them, the examples applied, and what they turn
# into shown as it converges. Stays up until Ctrl-C when run from a terminal; set
# LAKEOPS_DEMO_ONCE=1 (or CI) to show the result and stop.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN="$(bash tests/env/install.sh | tail -n1)"
export PATH="$BIN:$PATH" LAKEOPS_BIN_DIR="$BIN"
TARGET="${CARGO_TARGET_DIR:-target}"
STATE="${LAKEOPS_DEMO_DIR:-$HOME/.cache/lakeops/demo}"
NS=lakeops-demo

echo "==> building lakeops"
cargo build --quiet --locked -p lakeops -p lakeops-testenv --bins

rm -rf "$STATE" && mkdir -p "$STATE"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "==> starting etcd, kube-apiserver and moto (HTTPS, with the project's extension layer)"
"$TARGET/debug/lakeops-testenv" --dir "$STATE/env" --env-file "$STATE/env.sh" >"$STATE/testenv.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do [ -s "$STATE/env.sh" ] && break; sleep 0.5; done
[ -s "$STATE/env.sh" ] || { echo "the control plane did not start; see $STATE/testenv.log" >&2; tail -20 "$STATE/testenv.log" >&2; exit 1; }
# shellcheck disable=SC1091
. "$STATE/env.sh"

metrics_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
echo "==> starting the lakeops controller (log: $STATE/controller.log, metrics: http://127.0.0.1:$metrics_port/metrics)"
"$TARGET/debug/lakeops" controller --metrics-addr "127.0.0.1:$metrics_port" >"$STATE/controller.log" 2>&1 &
pids+=($!)

echo "==> uploading the example ETL packages to s3://lakeops-demo-artifacts (the EtlFunctions' code; the pipeline's handlers packaged from source)"
bash examples/pipeline/package.sh >/dev/null
"$HOME/.cache/lakeops/venv/bin/python" - <<'PY'
import io, pathlib, zipfile, boto3
s3 = boto3.client("s3", region_name="eu-west-1")
s3.create_bucket(Bucket="lakeops-demo-artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
s3.put_bucket_versioning(Bucket="lakeops-demo-artifacts", VersioningConfiguration={"Status": "Enabled"})
package = io.BytesIO()
with zipfile.ZipFile(package, "w") as z:
    z.writestr("app.py", "def handler(event, context):\n    return {'records': len(event.get('Records', []))}\n")
s3.put_object(Bucket="lakeops-demo-artifacts", Key="etl/orders-to-curated.zip", Body=package.getvalue())
for name in ("validate", "tokenise"):
    body = pathlib.Path(f"examples/pipeline/dist/{name}.zip").read_bytes()
    s3.put_object(Bucket="lakeops-demo-artifacts", Key=f"pipeline/{name}.zip", Body=body)
PY

echo "==> lakeops validate examples/"
"$TARGET/debug/lakeops" validate -n "$NS" examples/

echo "==> lakeops plan -n $NS examples/   (what a reviewer sees before merging)"
"$TARGET/debug/lakeops" plan -n "$NS" examples/

echo "==> kubectl apply --server-side -n $NS -f examples/ -f examples/pipeline/"
kubectl create namespace "$NS" >/dev/null
kubectl apply --server-side -n "$NS" -f examples/ -f examples/pipeline/

echo "==> kubectl get lakeops -n $NS   (converging)"
ready() { kubectl get "$1" -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null; }
# The BackupPolicy is Ready once the table replicas are ACTIVE, which it re-checks every 30 s.
for _ in $(seq 1 120); do
  if [ "$(ready datalake/sales)" = True ] && [ "$(ready etlfunction/orders-to-curated)" = True ] \
    && [ "$(ready backuppolicy/sales-backup)" = True ] && [ "$(ready etlpipeline/customers)" = True ]; then break; fi
  sleep 1
done
kubectl get lakeops -n "$NS"

echo
echo "==> conditions"
kubectl get lakeops -n "$NS" -o jsonpath='{range .items[*]}{.kind}/{.metadata.name}: {range .status.conditions[*]}{.type}={.status} ({.reason}) {end}{"\n"}  {.status.conditions[?(@.type=="Ready")].message}{"\n"}{end}'

echo
echo "==> lakeops plan -n $NS examples/   (after convergence)"
"$TARGET/debug/lakeops" plan -n "$NS" examples/

echo
echo "==> writing an object into the raw zone over HTTPS (SSE-KMS with the lake key, as its policy demands)"
lake_key="$(kubectl get datalake/sales -n "$NS" -o jsonpath='{.status.kmsKeyArn}')"
LAKE_KEY="$lake_key" "$HOME/.cache/lakeops/venv/bin/python" - <<'PY'
import json, os, time, boto3
raw, replica, key = "lakeops-demo-sales-raw", "lakeops-demo-sales-raw-replica", "incoming/customers/2024-06-01.json"
s3 = boto3.client("s3", region_name="eu-west-1")
put = s3.put_object(Bucket=raw, Key=key, Body=json.dumps({"order": 1}).encode(),
                    ServerSideEncryption="aws:kms", SSEKMSKeyId=os.environ["LAKE_KEY"])
print(f"  s3://{raw}/{key} version {put['VersionId']}, encrypted with {put['SSEKMSKeyId']}")
backup = boto3.client("s3", region_name="eu-central-1")
for _ in range(30):
    try:
        copy = backup.head_object(Bucket=replica, Key=key)
        break
    except backup.exceptions.ClientError:
        time.sleep(0.5)
else:
    raise SystemExit(f"the object did not reach s3://{replica}")
source = s3.head_object(Bucket=raw, Key=key)
print(f"  s3://{replica}/{key} (eu-central-1) version {copy['VersionId']}, {copy.get('StorageClass', 'STANDARD')},"
      f" encrypted with {copy['SSEKMSKeyId']}")
print(f"  replication status: source {source.get('ReplicationStatus')}, replica {copy.get('ReplicationStatus')}")
PY

echo
echo "==> what exists in AWS (moto at $AWS_ENDPOINT_URL)"
"$HOME/.cache/lakeops/venv/bin/python" - <<'PY'
import boto3
region = "eu-west-1"
s3 = boto3.client("s3", region_name=region)
kms = boto3.client("kms", region_name=region)
ddb = boto3.client("dynamodb", region_name=region)
buckets = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
aliases = [a["AliasName"] for a in kms.list_aliases().get("Aliases", []) if a["AliasName"].startswith("alias/lakeops/")]
tables = ddb.list_tables().get("TableNames", [])
trails = [t["Name"] for t in boto3.client("cloudtrail", region_name=region).describe_trails().get("trailList", [])]
functions = [f["FunctionName"] for f in boto3.client("lambda", region_name=region).list_functions().get("Functions", [])]
roles = [r["RoleName"] for r in boto3.client("iam", region_name=region).list_roles(PathPrefix="/lakeops/").get("Roles", [])]
print(f"  S3 buckets:      {', '.join(buckets) or '(none)'}")
print(f"  KMS aliases:     {', '.join(aliases) or '(none)'}")
print(f"  DynamoDB tables: {', '.join(tables) or '(none)'}")
for table in tables:
    replicas = ddb.describe_table(TableName=table)["Table"].get("Replicas", [])
    for r in replicas:
        print(f"    replica of {table} in {r['RegionName']}: {r['ReplicaStatus']}")
print(f"  CloudTrail:      {', '.join(trails) or '(none)'}")
print(f"  Lambda:          {', '.join(functions) or '(none)'}")
print(f"  IAM roles:       {', '.join(roles) or '(none)'}")
PY

if [ -t 0 ] && [ -z "${CI:-}" ] && [ -z "${LAKEOPS_DEMO_ONCE:-}" ]; then
  cat <<MSG

The control plane, moto and the controller keep running. In another shell:
  source $STATE/env.sh
  kubectl get lakeops -A -w
Press Ctrl-C here to stop everything.
MSG
  wait "${pids[1]}"
fi
