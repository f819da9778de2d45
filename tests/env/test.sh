#!/usr/bin/env bash
# The whole test suite, from a fresh machine: provisions the local control plane, then
# format, lints, unit tests and the end-to-end tests against a real kube-apiserver + moto.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN="$(bash tests/env/install.sh | tail -n1)"
export PATH="$BIN:$PATH" LAKEOPS_BIN_DIR="$BIN"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "helm lint charts/lakeops"
helm lint charts/lakeops

step "example pipeline handlers against moto's S3 and Secrets Manager"
"$HOME/.cache/lakeops/venv/bin/python" -m unittest discover -s examples/pipeline/tests

step "cargo test (unit and end-to-end)"
cargo test --workspace --locked
