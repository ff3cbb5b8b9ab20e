"""Shared helpers for pipec's benchmarks.

Everything here is standard library only.  The benchmarks time whole
processes (``run_process``: wall time, CPU time and peak RSS of exactly that
child, through ``os.wait4``) or code inside a fresh subprocess that prints a
JSON line (``run_json``), repeat each measurement, and report medians and
ratios of medians.  Inputs are generated deterministically into temporary
folders; nothing touches the network.

Generators:

- ``chain_module(n)``: a pipec pipeline module of ``n`` chained steps,
  ``@step(inputs=["v{i-1}"], outputs=["v{i}"])``, one ``add_step`` per line.
- ``kfp_chain_script(n)``: the same chain written for the KFP SDK
  (``@dsl.component`` per step, a ``@dsl.pipeline``), compiled by
  ``kfp.compiler.Compiler`` when the script runs.
- ``taskflow_dag(n)``: the same chain as a hand-written Airflow 3 TaskFlow DAG.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# The interpreter that runs everything: the one running the benchmark (the
# venv with pipec, Airflow, KFP and Prefect).  `pipec` is its console script.
PYTHON = sys.executable


def pipec_command() -> list[str]:
    """The `pipec` console script next to this interpreter, else
    `python -m pipec.cli`-like fallback through the entry point function."""
    script = Path(PYTHON).parent / "pipec"
    if script.exists():
        return [str(script)]
    return [PYTHON, "-c", "import sys; from pipec.cli import main; sys.exit(main())"]


# --------------------------------------------------------------------------
# Processes


@dataclass
class ProcResult:
    """One finished child process."""

    returncode: int
    wall: float  # seconds
    cpu: float  # user + system seconds of the child (and its reaped children)
    peak_rss_mb: float  # ru_maxrss of the child, in MiB
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A deterministic, offline environment for children."""
    env = dict(os.environ)
    for key in list(env):
        # Never point a child at a real Prefect server or Airflow install.
        if key.startswith(("PREFECT_", "AIRFLOW__", "AIRFLOW_HOME", "KFP_")):
            del env[key]
    env.update(
        {
            "PYTHONHASHSEED": "0",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "NO_COLOR": "1",
            "TZ": "UTC",
        }
    )
    if extra:
        env.update(extra)
    return env


def run_process(
    cmd: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> ProcResult:
    """Run `cmd` to completion; measure its wall time, CPU time and peak RSS
    with `os.wait4` (the rusage of that child only)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env if env is not None else base_env(), stdout=out, stderr=err)
        deadline = None if timeout is None else start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
            if pid:
                break
            if deadline and time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        out.seek(0)
        err.seek(0)
        return ProcResult(
            returncode=proc.returncode,
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            peak_rss_mb=usage.ru_maxrss / 1024.0,  # Linux: KiB
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


def run_json(cmd: Sequence[str], **kwargs) -> tuple[dict, ProcResult]:
    """Run a child that prints one JSON value (object or list) as its last JSON-looking stdout line."""
    res = run_process(cmd, **kwargs)
    if not res.ok:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {res.returncode}:\n{res.stderr[-4000:]}")
    lines = [line for line in res.stdout.splitlines() if line.strip().startswith(("{", "["))]
    if not lines:
        raise RuntimeError(f"no JSON from {' '.join(map(str, cmd))}:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return json.loads(lines[-1]), res


# --------------------------------------------------------------------------
# Statistics


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


@dataclass
class Series:
    """Repeated measurements of one quantity."""

    label: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return median(self.values)

    def spread(self) -> str:
        if len(self.values) < 2:
            return ""
        return f"{min(self.values):.3g}–{max(self.values):.3g}"


def repeat_process(
    cmd: Sequence[str], repeat: int, *, setup: Callable[[], None] | None = None, **kwargs
) -> tuple[list[float], list[float], list[ProcResult]]:
    """Run `cmd` `repeat` times (calling `setup` before each); return the wall
    times, the peak RSS values and the results.  A failing run raises."""
    walls, rss, results = [], [], []
    for _ in range(repeat):
        if setup:
            setup()
        res = run_process(cmd, **kwargs)
        if not res.ok:
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited {res.returncode}:\n{res.stderr[-4000:]}")
        walls.append(res.wall)
        rss.append(res.peak_rss_mb)
        results.append(res)
    return walls, rss, results


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return "PASS" if ok else "MISS"


# --------------------------------------------------------------------------
# Output


def fmt_s(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "—"
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def fmt_x(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:.2f}×"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    rows = [["" if c is None else str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def emit_summary(path: str | None, rows: list[dict]) -> None:
    """Write the summary rows (for run_all.py) as JSON when asked."""
    if path:
        Path(path).write_text(json.dumps(rows, indent=1, sort_keys=True))


def summary_row(benchmark: str, figure: str, value: str, target: str, ok: bool | None) -> dict:
    return {"benchmark": benchmark, "figure": figure, "value": value, "target": target, "verdict": verdict(ok)}


def common_args(description: str, *, sizes: str | None = None, quick_sizes: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median reported); default 5")
    parser.add_argument("--quick", action="store_true", help="smallest sizes, 1 repeat (smoke test)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    parser.add_argument("--summary-json", help=argparse.SUPPRESS)
    if sizes is not None:
        parser.add_argument("--sizes", default=None, help=f"comma-separated chain lengths (default {sizes}; --quick {quick_sizes})")
    return parser


def parse_sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


class Workdir:
    """A temporary folder, removed at exit unless `keep`."""

    def __init__(self, prefix: str, keep: bool = False) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"pipec-bench-{prefix}-"))
        self.keep = keep

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        if self.keep:
            print(f"(kept {self.path})", file=sys.stderr)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def machine_line() -> str:
    import platform

    try:
        load = "load %.2f" % os.getloadavg()[0]
    except OSError:
        load = ""
    return f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, {load}"


# --------------------------------------------------------------------------
# Generators (deterministic)


def chain_module(
    n: int,
    *,
    name: str | None = None,
    enable_cache: bool = True,
    heavy_import: str | None = None,
    body: str = "return {arg} + 1",
) -> str:
    """A pipec pipeline module of `n` chained steps.

    Step 0 reads the context key `seed` and outputs `v0`; step i (i ≥ 1) is
    `@step(inputs=["v{i-1}"], outputs=["v{i}"])`.  With `heavy_import`, the
    module imports that module at top level and every step uses it (so the
    import belongs inside the tasks, never at DAG parse)."""
    name = name or f"chain_{n}"
    lines = [f'"""A chain of {n} steps (generated by pipec\'s benchmarks)."""', ""]
    if heavy_import:
        lines.append(f"import {heavy_import}")
        lines.append("")
    lines += ["from pipec import Pipeline, context, step", "", "ctx = context(seed=0)", "", ""]
    for i in range(n):
        if i == 0:
            lines.append('@step(outputs=["v0"])')
            arg, sig = "seed", "seed: int"
        else:
            lines.append(f'@step(inputs=["v{i - 1}"], outputs=["v{i}"])')
            arg, sig = f"v{i - 1}", f"v{i - 1}: int"
        lines.append(f"def step_{i}({sig}) -> int:")
        if heavy_import:
            lines.append(f"    return {heavy_import}.bump({arg})")
        else:
            lines.append("    " + body.format(arg=arg))
        lines += ["", ""]
    cache = "" if enable_cache else ", enable_cache=False"
    lines.append(f'pipeline = Pipeline("{name}", context=ctx{cache})')
    lines += [f"pipeline.add_step(step_{i})" for i in range(n)]
    return "\n".join(lines) + "\n"


HEAVY_MODULE = '''"""Stands in for numpy/pandas/torch: slow to import."""

import time

time.sleep({delay})


def bump(value):
    return value + 1
'''


def heavy_module(delay: float = 1.0) -> str:
    return HEAVY_MODULE.format(delay=delay)


def kfp_chain_script(n: int, *, name: str | None = None) -> str:
    """A script that defines the `n`-step chain with the KFP SDK and compiles
    it to `sys.argv[1]` (a whole-process anchor for `pipec compile`)."""
    name = name or f"chain-{n}"
    lines = [
        f'"""A chain of {n} KFP components (generated by pipec\'s benchmarks)."""',
        "",
        "import sys",
        "",
        "from kfp import compiler, dsl",
        "",
        "",
    ]
    for i in range(n):
        arg = "seed" if i == 0 else f"v{i - 1}"
        lines += [
            '@dsl.component(base_image="python:3.11-slim")',
            f"def step_{i}({arg}: int) -> int:",
            f"    return {arg} + 1",
            "",
            "",
        ]
    lines += [f'@dsl.pipeline(name="{name}")', "def chain(seed: int = 0):", "    t0 = step_0(seed=seed)"]
    lines += [f"    t{i} = step_{i}(v{i - 1}=t{i - 1}.output)" for i in range(1, n)]
    lines += ["", "", 'if __name__ == "__main__":', "    compiler.Compiler().compile(chain, sys.argv[1])"]
    return "\n".join(lines) + "\n"


def taskflow_dag(n: int, *, dag_id: str | None = None) -> str:
    """The `n`-step chain as a hand-written Airflow 3 TaskFlow DAG file."""
    dag_id = dag_id or f"chain_{n}"
    lines = [
        f'"""A chain of {n} TaskFlow tasks (hand-written style; generated by pipec\'s benchmarks)."""',
        "",
        "from airflow.sdk import Param, dag, task",
        "",
        "",
        f'@dag(dag_id="{dag_id}", schedule=None, catchup=False, params={{"seed": Param(0, type="integer")}})',
        "def chain():",
        "    @task",
        "    def step_0(params=None) -> int:",
        '        return params["seed"] + 1',
        "",
    ]
    for i in range(1, n):
        lines += ["    @task", f"    def step_{i}(v{i - 1}: int) -> int:", f"        return v{i - 1} + 1", ""]
    lines.append("    v0 = step_0()")
    lines += [f"    v{i} = step_{i}(v{i - 1})" for i in range(1, n)]
    lines += ["", "", "chain()"]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


KFP_ETL_SCRIPT = '''"""examples/etl.py written with the KFP SDK (generated by pipec's benchmarks)."""

import sys
from typing import NamedTuple

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def extract(source: str) -> list:
    RECORDS = {
        "inventory": [
            {"sku": "A-100", "qty": 4, "price": 2.5},
            {"sku": "B-200", "qty": 0, "price": 10.0},
            {"sku": "C-300", "qty": 7, "price": 1.25},
        ],
    }
    return [dict(row) for row in RECORDS[source]]


@dsl.component(base_image="python:3.11")
def transform(records: list, multiplier: int) -> list:
    return [
        {"sku": r["sku"], "qty": r["qty"] * multiplier, "value": r["qty"] * multiplier * r["price"]}
        for r in records
        if r["qty"] > 0
    ]


@dsl.component(base_image="python:3.11")
def load(rows: list) -> NamedTuple("Outputs", [("total_value", float), ("row_count", int)]):
    from collections import namedtuple

    outputs = namedtuple("Outputs", ["total_value", "row_count"])
    return outputs(sum(r["value"] for r in rows), len(rows))


@dsl.pipeline(name="etl", description="Extract, transform, load")
def etl(source: str = "inventory", multiplier: int = 3):
    records = extract(source=source)
    rows = transform(records=records.output, multiplier=multiplier)
    load(rows=rows.output)


if __name__ == "__main__":
    compiler.Compiler().compile(etl, sys.argv[1])
'''


def kfp_etl_script() -> str:
    """`examples/etl.py` written with the KFP SDK; compiles to `sys.argv[1]`."""
    return KFP_ETL_SCRIPT
