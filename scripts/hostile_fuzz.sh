#!/usr/bin/env bash
# The hostile-input tests with a large budget, by hand:
#   bash scripts/hostile_fuzz.sh [EXAMPLES_PER_STRATEGY]   (default 500)
# Each generated module goes through check, graph and compile for every
# target; every file produced is loaded by its orchestrator.  Hypothesis
# prints the smallest failing module for each kind of failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIPEC_HOSTILE_EXAMPLES="${1:-500}"
export PIPEC_HOSTILE_STRICT=1
exec .venv/bin/python -m pytest tests/test_hostile_fuzz.py -q -s -p no:cacheprovider
