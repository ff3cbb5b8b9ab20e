"""Benchmark 3 — local runs: pipec's runner overhead per step vs Prefect.

Developers re-run pipelines locally all day, so the runner's own cost per
step must be small.  With trivial steps (`return v + 1`) and the cache off,
the cost of a step is the runner's overhead.  Measured the same way for both:

- **pipec**: `pipeline.run()` in-process on generated chains of N=10 and
  N=200 steps (`enable_cache=False`), in a fresh process, after one warm-up
  run; per-step overhead = (median T(200) − median T(10)) / 190.
- **Prefect** (the anchor): a `@flow` calling N chained `@task`s inside
  `prefect_test_harness` (its temporary server on loopback, PREFECT_HOME and
  result storage in a temporary folder), one size after the other, each
  after one warm-up run; per-task cost = (median T(200) − median T(10)) / 190.  Both are computed from wall time
  and from the process's CPU time; the verdict uses CPU time, because under
  load Prefect's temporary server stalls its client for seconds (wall
  figures of Prefect are then meaningless) and a loaded machine inflates
  every wall time.

Targets: pipec per step ≤ 1/10 of Prefect per task; a 10-step run < 0.2 s.
Caching: a 10-step chain with caching on, run twice in-process and once more
in a fresh process (same store): every step of the repeated runs must be
`cached` and the step functions must not run again.

    python benchmarks/bench_local_run.py [--small 10 --large 200] [--repeat 5]
    python benchmarks/bench_local_run.py --quick
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

OVERHEAD_TARGET = 1 / 10
TEN_STEP_TARGET = 0.2
PIPEC_LABEL = "pipec `pipeline.run()` (cache off)"
PREFECT_LABEL = "Prefect flow of tasks (anchor)"

PIPEC_CHILD = r"""
import importlib, json, sys, time
src, sizes, repeat = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], int(sys.argv[3])
sys.path.insert(0, src)
pipelines = {n: importlib.import_module(f"chain_{n}").pipeline for n in sizes}

def run(n):
    t0, c0 = time.perf_counter(), time.process_time()
    result = pipelines[n].run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    statuses = sorted({r.status for r in result.step_results.values()})
    assert result.success and statuses == ["succeeded"], (n, statuses)
    assert result[f"v{n - 1}"] == n, result[f"v{n - 1}"]
    return wall, cpu

for n in sizes:
    run(n)  # warm-up
out = {n: {"wall": [], "cpu": []} for n in sizes}
for _ in range(repeat):
    for n in sizes:
        wall, cpu = run(n)
        out[n]["wall"].append(wall)
        out[n]["cpu"].append(cpu)
print(json.dumps(out))
"""

PIPEC_CACHE_CHILD = r"""
import importlib, json, sys, time
src, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, src)
module = importlib.import_module(f"cached_{n}")
runs = []

def called():  # the steps run their carried code, which appends to calls.txt
    try:
        with open("calls.txt") as f:
            return len(f.read())
    except FileNotFoundError:
        return 0

for _ in range(rounds):
    before = called()
    t0 = time.perf_counter()
    result = module.pipeline.run()
    runs.append({
        "seconds": time.perf_counter() - t0,
        "success": result.success,
        "statuses": {name: r.status for name, r in result.step_results.items()},
        "cached_flags": sum(bool(r.cached) for r in result.step_results.values()),
        "calls": called() - before,
        "last": result[f"v{n - 1}"],
    })
print(json.dumps(runs))
"""

PREFECT_CHILD = r"""
import json, sys, time
from prefect import flow, task
from prefect.testing.utilities import prefect_test_harness

sizes, repeat = [int(x) for x in sys.argv[1].split(",")], int(sys.argv[2])


@task
def bump(v: int) -> int:
    return v + 1


def make(n):
    steps = [bump.with_options(name=f"step_{i}") for i in range(n)]

    @flow(name=f"chain-{n}")
    def chain(seed: int = 0) -> int:
        v = seed
        for step in steps:
            v = step(v)
        return v

    return chain


# One size after the other (a warm-up run first): the temporary server goes
# on ingesting a run's task events after the flow returns, and the next run
# waits for it, so in steady state each run pays for a run of its own size.
with prefect_test_harness():
    out = {n: {"wall": [], "cpu": []} for n in sizes}
    for n in sizes:
        chain = make(n)
        assert chain() == n  # warm-up
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            assert chain() == n
            out[n]["wall"].append(time.perf_counter() - t0)
            out[n]["cpu"].append(time.process_time() - c0)
print(json.dumps(out))
"""


def cached_module(n: int) -> str:
    """A chain with caching on whose steps count their calls (in the file
    `calls.txt` of the working directory: a step runs its carried code)."""
    text = c.chain_module(n, name=f"cached_{n}", body='_called()\n    return {arg} + 1')
    called = 'def _called():\n    with open("calls.txt", "a") as f:\n        f.write("x")\n'
    return text.replace("ctx = context(seed=0)", "ctx = context(seed=0)\n\n\n" + called)


def per_step(data: dict, small: int, large: int, key: str) -> float:
    return (c.median(data[str(large)][key]) - c.median(data[str(small)][key])) / (large - small)


def main(argv: list[str] | None = None) -> int:
    parser = c.common_args(__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=None, help="default 200 (--quick 50)")
    parser.add_argument("--no-anchor", action="store_true", help="skip Prefect")
    args = parser.parse_args(argv)
    small, large = args.small, args.large or (50 if args.quick else 200)
    repeat = 1 if args.quick else args.repeat
    sizes = f"{small},{large}"
    summary: list[dict] = []
    failures: list[str] = []

    print(f"# bench_local_run — {c.machine_line()}; N={small} vs N={large}; {repeat} run(s) per figure\n", flush=True)
    with c.Workdir("localrun", args.keep) as work:
        src = work / "src"
        for n in (small, large):
            c.write(src / f"chain_{n}.py", c.chain_module(n, enable_cache=False))
        c.write(src / f"cached_{small}.py", cached_module(small))

        # -- pipec, cache off ------------------------------------------------
        pipec_data = None
        (work / "run_nocache").mkdir()
        try:
            pipec_data, _ = c.run_json(
                [c.PYTHON, "-c", PIPEC_CHILD, str(src), sizes, str(repeat)],
                cwd=work / "run_nocache",
                env=c.base_env({"PIPEC_HOME": str(work / "run_nocache" / ".pipec")}),
            )
        except RuntimeError as exc:
            failures.append(f"pipec run: {exc}")

        # -- pipec, cache on ---------------------------------------------------
        cache_runs = []
        (work / "run_cache").mkdir()
        cache_env = c.base_env({"PIPEC_HOME": str(work / "run_cache" / ".pipec")})
        try:
            first, _ = c.run_json([c.PYTHON, "-c", PIPEC_CACHE_CHILD, str(src), str(small), "2"], cwd=work / "run_cache", env=cache_env)
            again, _ = c.run_json([c.PYTHON, "-c", PIPEC_CACHE_CHILD, str(src), str(small), "1"], cwd=work / "run_cache", env=cache_env)
            cache_runs = first + again
        except RuntimeError as exc:
            failures.append(f"pipec cached run: {exc}")

        # -- Prefect ----------------------------------------------------------------
        prefect_data = None
        if not args.no_anchor:
            home = work / "prefect_home"
            env = c.base_env(
                {
                    "PREFECT_HOME": str(home),
                    "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
                    "PREFECT_MEMO_STORE_PATH": str(home / "memo_store.toml"),
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_LOGGING_LEVEL": "WARNING",
                    "PREFECT_LOGGING_TO_API_ENABLED": "false",
                }
            )
            try:
                prefect_data, _ = c.run_json([c.PYTHON, "-c", PREFECT_CHILD, sizes, str(repeat)], cwd=work, env=env, timeout=1800)
            except RuntimeError as exc:
                failures.append(f"Prefect: {exc}")

    rows = []
    est: dict[str, dict[str, float]] = {}
    for label, data in ((PIPEC_LABEL, pipec_data), (PREFECT_LABEL, prefect_data)):
        if not data:
            continue
        est[label] = {key: per_step(data, small, large, key) for key in ("wall", "cpu")}
        rows.append(
            [label, c.fmt_s(c.median(data[str(small)]["wall"])), c.fmt_s(c.median(data[str(large)]["wall"])),
             c.fmt_s(est[label]["wall"]), c.fmt_s(est[label]["cpu"])]
        )
    print("## Run time and cost per step (medians; per step = (T(large) − T(small)) / (large − small))\n")
    print(c.markdown_table(["runner", f"T(N={small}) wall", f"T(N={large}) wall", "per step (wall)", "per step (CPU)"], rows))

    checks = []
    p_est, a_est = est.get(PIPEC_LABEL), est.get(PREFECT_LABEL)
    if p_est and a_est:
        # Verdict on CPU time: Prefect's temporary server stalls its client
        # for seconds under load, which makes its wall figures unusable on a
        # busy machine; CPU time is measured the same way for both.  The wall
        # ratio is shown too when Prefect's wall estimate is positive.
        cpu_ratio = c.ratio(p_est["cpu"], a_est["cpu"]) if a_est["cpu"] > 0 else None
        wall_ratio = c.ratio(p_est["wall"], a_est["wall"]) if a_est["wall"] > 0 else None
        value = (f"CPU: {c.fmt_x(cpu_ratio)} ({c.fmt_s(p_est['cpu'])} vs {c.fmt_s(a_est['cpu'])}); "
                 f"wall: {c.fmt_x(wall_ratio) + ' (' + c.fmt_s(p_est['wall']) + ' vs ' + c.fmt_s(a_est['wall']) + ')' if wall_ratio else 'Prefect estimate not positive (noise)'}")
        ok = None if cpu_ratio is None else cpu_ratio <= OVERHEAD_TARGET
        checks.append(["pipec per step / Prefect per task", value, "≤ 0.10× (CPU)", c.verdict(ok)])
        summary.append(c.summary_row("local run", "pipec per step / Prefect per task", value, "≤ 0.10× (CPU)", ok))
    if pipec_data and small == 10:
        t10 = c.median(pipec_data[str(small)]["wall"])
        ok = t10 < TEN_STEP_TARGET
        checks.append(["10-step run, in-process", c.fmt_s(t10), f"< {TEN_STEP_TARGET} s", c.verdict(ok)])
        summary.append(c.summary_row("local run", "10-step run in-process", c.fmt_s(t10), f"< {TEN_STEP_TARGET} s", ok))
    if cache_runs:
        first, repeats = cache_runs[0], cache_runs[1:]
        first_ok = first["success"] and set(first["statuses"].values()) == {"succeeded"} and first["calls"] == small
        rep_ok = all(
            r["success"] and set(r["statuses"].values()) == {"cached"} and r["calls"] == 0 and r["cached_flags"] == small and r["last"] == small
            for r in repeats
        )
        detail = "; ".join(
            f"{'first' if i == 0 else ('repeat in-process' if i == 1 else 'repeat, new process')}: "
            f"{', '.join(f'{v}×{k}' for k, v in sorted(_count(r['statuses']).items()))}, {r['calls']} calls, {c.fmt_s(r['seconds'])}"
            for i, r in enumerate(cache_runs)
        )
        ok = first_ok and rep_ok
        checks.append([f"cache: repeated {small}-step run skips every step", detail, "all cached, 0 calls", c.verdict(ok)])
        summary.append(c.summary_row("local run", "repeated run with cache skips every step", "yes" if ok else "no: " + detail, "all cached", ok))
    print("\n## Targets\n")
    print(c.markdown_table(["figure", "value", "target", "verdict"], checks))
    if failures:
        print("\n## Failures\n")
        for failure in failures:
            print("- " + failure.replace("\n", "\n  "))
        summary.append(c.summary_row("local run", "runs failed", str(len(failures)), "0", False))
    c.emit_summary(args.summary_json, summary)
    return 1 if failures else 0


def _count(statuses: dict) -> dict:
    out: dict[str, int] = {}
    for status in statuses.values():
        out[status] = out.get(status, 0) + 1
    return out


if __name__ == "__main__":
    sys.exit(main())
