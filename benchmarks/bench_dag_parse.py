"""Benchmark 2 — Airflow DagBag parse of pipec's generated DAG.

The scheduler's DAG processor parses every DAG file over and over, so that
is where a generated DAG costs most.  For an N-step chain (default N=1000)
this compiles the chain with `pipec compile --target airflow` and parses,
each in a fresh subprocess, as the scheduler does (`gc.collect();
gc.freeze()`, then `DagBag(dag_folder=FILE)`, AIRFLOW_HOME in a temporary
folder; one untimed parse of each file first; the DAG file itself is
compiled from source on every parse, as the DAG processor does):

- **handwritten**: the same chain as a hand-written TaskFlow DAG (the anchor);
- **pipec**: pipec's DAG of the chain (target ≤ 1.2 × handwritten);
- **pipec + heavy import**: pipec's DAG of the same chain whose module
  imports a "heavy" library at top level (a stand-in for numpy/pandas that
  sleeps --heavy-delay s on import; the steps use it).  The generated DAG
  must import it inside the tasks only, so its parse time must not change
  (target ≤ 1.1 × pipec, less than half the heavy import's delay added to
  the wall time, and the heavy module not in `sys.modules` after the parse).

Runs are interleaved (one of each per round) and medians reported, of wall
and of CPU time.  A parse is CPU-bound, so the ratios are judged on CPU time,
which a busy shared machine distorts far less than wall time; the wall
figures are shown too (and a sleeping heavy import shows only there).

    python benchmarks/bench_dag_parse.py [--n 1000] [--repeat 5]
    python benchmarks/bench_dag_parse.py --quick
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

PARSE_TARGET = 1.2
HEAVY_TARGET = 1.1
HEAVY_MODULE = "heavy_lib"

CHILD = r"""
import gc, json, sys, time
from airflow.dag_processing.dagbag import DagBag

path, heavy = sys.argv[1], sys.argv[2]
gc.collect()
gc.freeze()  # as the DAG processor does before parsing
t0, c0 = time.perf_counter(), time.process_time()
bag = DagBag(dag_folder=path)
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({
    "seconds": elapsed,
    "cpu": cpu,
    "dags": sorted(bag.dags),
    "tasks": sum(len(d.tasks) for d in bag.dags.values()),
    "errors": {k: str(v)[-600:] for k, v in bag.import_errors.items()},
    "heavy_imported": heavy in sys.modules,
    "pipec_imported": any(m == "pipec" or m.startswith("pipec.") for m in sys.modules),
}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = c.common_args(__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="chain length (default 1000; --quick 20)")
    parser.add_argument("--heavy-delay", type=float, default=1.0, help="seconds the heavy module sleeps on import")
    args = parser.parse_args(argv)
    n = args.n or (20 if args.quick else 1000)
    repeat = 1 if args.quick else args.repeat
    pipec = c.pipec_command()
    summary: list[dict] = []
    failures: list[str] = []

    print(f"# bench_dag_parse — {c.machine_line()}; N={n}; {repeat} run(s) per figure\n", flush=True)
    with c.Workdir("dagparse", args.keep) as work:
        src = work / "src"
        c.write(src / f"chain_{n}.py", c.chain_module(n, name=f"chain_{n}"))
        c.write(src / f"chain_heavy_{n}.py", c.chain_module(n, name=f"chain_heavy_{n}", heavy_import=HEAVY_MODULE))
        c.write(src / f"{HEAVY_MODULE}.py", c.heavy_module(args.heavy_delay))
        files = {"handwritten TaskFlow": c.write(work / "dags_handwritten" / f"chain_{n}.py", c.taskflow_dag(n))}
        for label, module, name in (
            ("pipec", src / f"chain_{n}.py", f"chain_{n}"),
            ("pipec + heavy import", src / f"chain_heavy_{n}.py", f"chain_heavy_{n}"),
        ):
            out = work / ("dags_" + name)
            res = c.run_process([*pipec, "compile", str(module), "--target", "airflow", "-o", str(out)], env=c.base_env(), cwd=work)
            if not res.ok or not (out / f"{name}.py").exists():
                failures.append(f"pipec compile --target airflow {module.name}: exit {res.returncode}\n{res.stderr[-1500:]}")
                continue
            files[label] = out / f"{name}.py"

        env = c.base_env(
            {
                "AIRFLOW_HOME": str(work / "airflow_home"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                # The source tree is importable, as on a worker: if the DAG
                # imported the heavy module at parse time it would be found
                # (and cost its import) rather than fail.
                "PYTHONPATH": str(src),
            }
        )
        cmd = lambda path: [c.PYTHON, "-c", CHILD, str(path), HEAVY_MODULE]  # noqa: E731
        results: dict[str, list[dict]] = {label: [] for label in files}
        for label, path in files.items() if not args.quick else ():  # warm-up: Airflow's first-run setup, caches
            try:
                c.run_json(cmd(path), env=env)
            except RuntimeError as exc:
                failures.append(f"{label}: {exc}")
        for _ in range(repeat):
            for label, path in files.items():
                try:
                    data, _res = c.run_json(cmd(path), env=env)
                except RuntimeError as exc:
                    failures.append(f"{label}: {exc}")
                    continue
                results[label].append(data)

    medians = {label: c.median(r["seconds"] for r in runs) for label, runs in results.items() if runs}
    cpu = {label: c.median(r["cpu"] for r in runs) for label, runs in results.items() if runs}
    base = medians.get("handwritten TaskFlow")
    plain = medians.get("pipec")
    cpu_base = cpu.get("handwritten TaskFlow")
    rows = []
    for label, runs in results.items():
        if not runs:
            rows.append([label, "—", "—", "—", "—", "—", "—", "—", "MISS (failed)"])
            continue
        last = runs[-1]
        problems = []
        if last["errors"]:
            problems.append("import errors: " + "; ".join(f"{k}: {v}" for k, v in last["errors"].items()))
        if len(last["dags"]) != 1 or last["tasks"] != n:
            problems.append(f"expected 1 DAG of {n} tasks, got {len(last['dags'])} DAG(s) {last['dags']} with {last['tasks']} tasks")
        if label.startswith("pipec") and last["pipec_imported"]:
            problems.append("the DAG imports pipec at parse time")
        if problems:
            failures.append(f"{label}: " + "; ".join(problems))
        vs_hand = c.ratio(medians[label], base) if base else None
        cpu_vs_hand = c.ratio(cpu[label], cpu_base) if cpu_base else None
        if label == "handwritten TaskFlow":
            target, ok = "anchor", None
        elif label == "pipec":
            target = f"CPU ≤ {PARSE_TARGET}× handwritten"
            ok = cpu_vs_hand is not None and cpu_vs_hand <= PARSE_TARGET and not problems
            summary.append(c.summary_row(
                "dag parse", f"pipec DAG N={n} / handwritten",
                f"CPU {c.fmt_x(cpu_vs_hand)} ({c.fmt_s(cpu[label])} vs {c.fmt_s(cpu_base)}); wall {c.fmt_x(vs_hand)}",
                f"≤ {PARSE_TARGET}× (CPU)", ok))
        else:
            cpu_vs_plain = c.ratio(cpu[label], cpu["pipec"]) if cpu.get("pipec") else None
            extra = medians[label] - plain if plain is not None else None
            ok = (cpu_vs_plain is not None and cpu_vs_plain <= HEAVY_TARGET and extra is not None
                  and extra < args.heavy_delay / 2 and not last["heavy_imported"] and not problems)
            target = f"CPU ≤ {HEAVY_TARGET}× pipec, wall +< {args.heavy_delay / 2:g} s, heavy module not imported"
            summary.append(c.summary_row(
                "dag parse", f"heavy-import DAG vs plain DAG (N={n})",
                f"CPU {c.fmt_x(cpu_vs_plain)}, wall {'+' if extra >= 0 else '−'}{c.fmt_s(abs(extra))}, heavy imported: "
                f"{'yes' if last['heavy_imported'] else 'no'}" if extra is not None else "—",
                f"≤ {HEAVY_TARGET}× (CPU), not imported", ok))
        rows.append(
            [
                label,
                c.fmt_s(medians[label]),
                c.fmt_x(vs_hand) if vs_hand is not None else "—",
                c.fmt_s(cpu[label]),
                c.fmt_x(cpu_vs_hand) if cpu_vs_hand is not None else "—",
                "yes" if last["heavy_imported"] else "no",
                f"{len(last['dags'])} / {last['tasks']}",
                target,
                c.verdict(ok),
            ]
        )
    print(f"## DagBag parse of a {n}-step chain (median over {repeat} fresh processes, after gc.freeze())\n")
    print(c.markdown_table(["DAG file", "parse (wall)", "vs handwritten", "parse (CPU)", "CPU vs handwritten", "heavy module imported", "DAGs / tasks", "target", "verdict"], rows))
    if failures:
        print("\n## Failures\n")
        for failure in failures:
            print("- " + failure.replace("\n", "\n  "))
        summary.append(c.summary_row("dag parse", "runs failed", str(len(failures)), "0", False))
    c.emit_summary(args.summary_json, summary)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
