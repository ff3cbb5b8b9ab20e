"""Run every pipec benchmark and print one summary table.

Each benchmark runs in its own process and prints its own tables as it goes;
at the end this prints one Markdown table of every figure with its target
and PASS / MISS.

    python benchmarks/run_all.py            # modest: compile up to N=1000, 3 runs per figure
    python benchmarks/run_all.py --full     # each benchmark's full defaults (N=5000, 5 runs)
    python benchmarks/run_all.py --quick    # smoke: smallest sizes, 1 run
    python benchmarks/run_all.py --only compile,dag_parse
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common as c  # noqa: E402

BENCHMARKS = {
    "compile": ("bench_compile.py", ["--sizes", "10,100,1000", "--repeat", "3"]),
    "dag_parse": ("bench_dag_parse.py", ["--repeat", "3"]),
    "local_run": ("bench_local_run.py", ["--repeat", "3"]),
    "incremental": ("bench_incremental.py", ["--repeat", "3"]),
    "spec_size": ("bench_spec_size.py", []),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smallest sizes, 1 run (smoke)")
    mode.add_argument("--full", action="store_true", help="each benchmark's full defaults")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    rows: list[dict] = []
    status = 0
    started = time.perf_counter()
    for name in names:
        script, modest = BENCHMARKS[name]
        extra = ["--quick"] if args.quick else ([] if args.full else modest)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
            summary_path = Path(fh.name)
        cmd = [sys.executable, str(HERE / script), *extra, "--summary-json", str(summary_path)]
        print(f"\n$ {' '.join(Path(p).name if i < 2 else p for i, p in enumerate(cmd[:-2]))}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd)
        elapsed = time.perf_counter() - t0
        try:
            rows.extend(json.loads(summary_path.read_text() or "[]"))
        except (OSError, json.JSONDecodeError):
            rows.append(c.summary_row(name, "benchmark", f"exit {rc}, no figures", "", False))
        finally:
            summary_path.unlink(missing_ok=True)
        if rc != 0:
            status = 1
            if not any(r["benchmark"].replace(" ", "_") == name for r in rows):
                rows.append(c.summary_row(name, "benchmark", f"exit {rc}", "exit 0", False))
        print(f"({name}: {elapsed:.0f} s)", file=sys.stderr, flush=True)

    print(f"\n# Summary — {c.machine_line()}; {time.perf_counter() - started:.0f} s in all\n")
    print(
        c.markdown_table(
            ["benchmark", "figure", "value", "target", "verdict"],
            [[r["benchmark"], r["figure"], r["value"], r["target"], r["verdict"]] for r in rows],
        )
    )
    misses = sum(r["verdict"] == "MISS" for r in rows)
    print(f"\n{misses} MISS, {sum(r['verdict'] == 'PASS' for r in rows)} PASS")
    return 1 if (misses or status) else 0


if __name__ == "__main__":
    sys.exit(main())
