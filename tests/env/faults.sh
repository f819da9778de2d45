#!/usr/bin/env bash
# The fault-injection run at full size (`make faults`): 10 DataLakes, 5 EtlFunctions and
# 3 BackupPolicies converging through the fault proxy (10% errors and throttling, latency,
# stalls past the SDK timeout, 20 SIGKILLs), once with 10% and once with 30% of the answers
# to writes lost after the write happened. Each run must end with every object Ready and a
# census of zero duplicate or orphaned AWS resources. Then the Kubernetes API faults at the
# same size: refused status writes and finalizer conflicts. Usage: tests/env/faults.sh [SEED]
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN="$(bash tests/env/install.sh | tail -n1)"
export PATH="$BIN:$PATH" LAKEOPS_BIN_DIR="$BIN"
export LAKEOPS_FAULTS_LAKES=10 LAKEOPS_FAULTS_FUNCTIONS=5 LAKEOPS_FAULTS_POLICIES=3 LAKEOPS_FAULTS_KILLS=20
export LAKEOPS_FAULTS_SEED="${1:-12}" LAKEOPS_FAULTS_MINUTES=15

for drop in 0.1 0.3; do
  printf '\n==> faults: %s of write answers lost (seed %s)\n' "$drop" "$LAKEOPS_FAULTS_SEED"
  LAKEOPS_FAULTS_DROP="$drop" cargo test --locked -p lakeops-testenv --test e2e faults::under_lost_answers -- --nocapture
done
printf '\n==> faults: refused status writes and finalizer conflicts\n'
cargo test --locked -p lakeops-testenv --test e2e faults::under_refused -- --ignored --nocapture
