"""Smoke test of the benchmark scripts: each runs in --quick mode (smallest
sizes, one run) and prints its table.  Behaviour only: no timing is asserted
here (figures are measured by running the benchmarks by hand, see
benchmarks/README.md), and a MISS does not fail the test."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

CASES = [
    # script, orchestrators it needs, a heading its output must contain
    ("bench_compile.py", ("kfp",), "## Compile time"),
    ("bench_dag_parse.py", ("airflow",), "## DagBag parse"),
    ("bench_local_run.py", ("prefect",), "## Run time and cost per step"),
    ("bench_incremental.py", (), "## Compile of the repository"),
    ("bench_spec_size.py", ("kfp",), "## KFP spec size"),
]


@pytest.mark.parametrize("script, needs, heading", CASES, ids=[c[0] for c in CASES])
def test_benchmark_quick(script: str, needs: tuple[str, ...], heading: str, tmp_path: Path) -> None:
    for module in needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    summary = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--summary-json", str(summary)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert heading in proc.stdout
    assert "| " in proc.stdout  # a Markdown table
    assert "PASS" in proc.stdout or "MISS" in proc.stdout or "n/a" in proc.stdout
    assert summary.read_text().startswith("[")


def test_run_all_lists_benchmarks() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "--quick" in proc.stdout and "--full" in proc.stdout
