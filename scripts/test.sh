#!/usr/bin/env bash
# Set up a virtual environment with pipec, its optional targets (Airflow,
# Kubeflow Pipelines, Prefect) and its development tools, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[all,dev]"
exec .venv/bin/python -m pytest "$@"
