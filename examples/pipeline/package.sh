#!/usr/bin/env bash
# Packages each handler from source into dist/<name>.zip (app.py at the archive root, as
# Lambda's `app.handler` expects). No dependencies beyond the runtime's boto3.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p dist
for fn in functions/*/; do
  name="$(basename "$fn")"
  rm -f "dist/$name.zip"
  (cd "$fn" && python3 -m zipfile -c "../../dist/$name.zip" app.py)
  echo "dist/$name.zip"
done
