#!/usr/bin/env bash
# Set up pipec (compile-time dependencies only), run the bundled training
# example locally, then compile it for every target into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-demo
.venv-demo/bin/python -m pip install --quiet -c constraints.txt -e .
.venv-demo/bin/pipec run examples/training.py
for target in airflow kubeflow prefect dagster; do
  .venv-demo/bin/pipec compile examples/training.py --target "$target" -o "build/$target"
done
ls -R build
