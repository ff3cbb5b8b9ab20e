"""Benchmark 1 — compile time of large pipelines, pipec vs the KFP SDK.

For each N (default 10,100,1000,5000) it generates a pipec module of N
chained steps and the same chain written with the KFP SDK
(`@dsl.component` per step, compiled by `kfp.compiler.Compiler`), then
times, as whole processes on the same machine in the same run and
interleaved, `pipec compile chain_N.py --target T -o DIR` for each target and
`python kfp_chain_N.py out.yaml`.  It prints the medians over --repeat runs,
the ratio pipec / KFP SDK (target ≤ 1/3), the growth factor between
consecutive sizes (target ≤ 1.1 × the size ratio: N=1000 ≤ 11 × N=100,
N=5000 ≤ 5.5 × N=1000) and the peak RSS of each process.

The KFP SDK grows quadratically: when one of its runs takes longer than
--anchor-cap seconds (default 60), that size is measured once only; when it
exceeds --anchor-timeout it is killed and its time is reported as a lower
bound (">"), which keeps the ratio an upper bound.

    python benchmarks/bench_compile.py                  # full
    python benchmarks/bench_compile.py --sizes 100,1000 --targets kubeflow
    python benchmarks/bench_compile.py --quick          # smoke
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

TARGETS = ("kubeflow", "airflow", "prefect", "dagster")
EXT = {"kubeflow": ".yaml", "airflow": ".py", "prefect": ".py", "dagster": ".py", "ir": ".json"}
RATIO_TARGET = 1 / 3


def growth_limit(small: int, large: int) -> float:
    """Linear growth with 10 % slack: 11× for 100→1000, 5.5× for 1000→5000."""
    return 1.1 * large / small


def pipec_env(work: Path) -> dict[str, str]:
    # Any user-level cache pipec might keep goes to a throwaway folder, so
    # every timed compile is a cold compile (benchmark 4 measures the warm one).
    return c.base_env({"XDG_CACHE_HOME": str(work / "xdg-cache"), "HOME": str(work / "home")})


def clean_caches(src: Path, work: Path, out: Path) -> None:
    for path in (src / ".pipec", src / "__pycache__", work / ".pipec", work / "xdg-cache", out):
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = c.common_args(__doc__.splitlines()[0], sizes="10,100,1000,5000", quick_sizes="10,100")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated pipec targets")
    parser.add_argument("--anchor-cap", type=float, default=60.0, help="one KFP SDK run above this (s): measure that size once")
    parser.add_argument("--anchor-timeout", type=float, default=300.0, help="kill a KFP SDK run after this (s): lower bound")
    parser.add_argument("--pipec-timeout", type=float, default=300.0, help="kill a pipec compile after this (s): MISS, lower bound")
    parser.add_argument("--no-anchor", action="store_true", help="pipec only (no ratios)")
    args = parser.parse_args(argv)
    sizes = c.parse_sizes(args.sizes or ("10,100" if args.quick else "10,100,1000,5000"))
    repeat = 1 if args.quick else args.repeat
    targets = [t for t in args.targets.split(",") if t]
    pipec = c.pipec_command()

    anchor: dict[int, list[float]] = {}
    anchor_rss: dict[int, list[float]] = {}
    anchor_note: dict[int, str] = {}
    times: dict[tuple[str, int], list[float]] = {}
    rss: dict[tuple[str, int], list[float]] = {}
    failures: list[str] = []
    killed: set[tuple[str, int]] = set()  # pipec runs killed at --pipec-timeout

    print(f"# bench_compile — {c.machine_line()}; sizes {sizes}; {repeat} run(s) per figure\n", flush=True)
    with c.Workdir("compile", args.keep) as work:
        env = pipec_env(work)
        srcs = {}
        for n in sizes:
            src = work / f"src_{n}"
            c.write(src / f"chain_{n}.py", c.chain_module(n))
            c.write(work / f"kfp_chain_{n}.py", c.kfp_chain_script(n))
            srcs[n] = src

        # Warm-up (bytecode of pipec, kfp and their dependencies), untimed.
        n0 = sizes[0]
        if not args.no_anchor and not args.quick:
            c.run_process([c.PYTHON, str(work / f"kfp_chain_{n0}.py"), str(work / "warm.yaml")], env=c.base_env())
        for target in targets if not args.quick else ():
            c.run_process([*pipec, "compile", str(srcs[n0] / f"chain_{n0}.py"), "--target", target, "-o", str(work / "warm")], env=env, cwd=work)

        for n in sizes:
            src = srcs[n]
            module = src / f"chain_{n}.py"
            anchor[n], anchor_rss[n] = [], []
            for r in range(repeat):
                # Side by side: one KFP SDK run, then one pipec run per target.
                if not args.no_anchor and not (anchor_note.get(n) and r > 0):
                    out_yaml = work / f"kfp_out_{n}.yaml"
                    res = c.run_process(
                        [c.PYTHON, str(work / f"kfp_chain_{n}.py"), str(out_yaml)],
                        env=c.base_env(),
                        timeout=args.anchor_timeout,
                    )
                    if res.ok and out_yaml.exists():
                        anchor[n].append(res.wall)
                        anchor_rss[n].append(res.peak_rss_mb)
                        if res.wall > args.anchor_cap:
                            anchor_note[n] = f"1 run (> {args.anchor_cap:.0f} s cap)"
                    elif res.wall >= args.anchor_timeout:
                        anchor[n].append(res.wall)
                        anchor_note[n] = f"killed at {args.anchor_timeout:.0f} s (lower bound)"
                    else:
                        failures.append(f"KFP SDK N={n}: exit {res.returncode}: {res.stderr[-500:]}")
                for target in targets:
                    out = work / f"out_{target}_{n}"
                    clean_caches(src, work, out)
                    if (target, n) in killed:
                        continue  # one run past the timeout is enough
                    res = c.run_process(
                        [*pipec, "compile", str(module), "--target", target, "-o", str(out)],
                        env=env, cwd=work, timeout=args.pipec_timeout,
                    )
                    produced = out / f"chain_{n}{EXT.get(target, '')}"
                    if res.wall >= args.pipec_timeout:
                        killed.add((target, n))
                        times.setdefault((target, n), []).append(res.wall)
                        rss.setdefault((target, n), []).append(res.peak_rss_mb)
                        continue
                    if not res.ok or not produced.exists():
                        failures.append(
                            f"pipec --target {target} N={n}: exit {res.returncode}, "
                            f"{'output present' if produced.exists() else 'no ' + produced.name}\n{res.stderr[-800:]}"
                        )
                        continue
                    times.setdefault((target, n), []).append(res.wall)
                    rss.setdefault((target, n), []).append(res.peak_rss_mb)
            line = [f"N={n}: KFP SDK {c.fmt_s(c.median(anchor[n]))}"]
            line += [f"{t} {c.fmt_s(c.median(times.get((t, n), [])))}" for t in targets]
            print("  " + ", ".join(line), file=sys.stderr, flush=True)

    summary: list[dict] = []
    rows = []
    for n in sizes:
        a = c.median(anchor[n]) if anchor[n] else None
        lower = "killed" in anchor_note.get(n, "")
        anchor_cell = ("> " if lower else "") + c.fmt_s(a) + (f" ({anchor_note[n]})" if n in anchor_note else "")
        for target in targets:
            t = c.median(times[(target, n)]) if (target, n) in times else None
            ratio = c.ratio(t, a) if (t is not None and a) else None
            ok = None if ratio is None else ratio <= RATIO_TARGET
            if (target, n) in killed:
                ok = False
            rows.append(
                [
                    n,
                    target,
                    ("> " if (target, n) in killed else "") + c.fmt_s(t),
                    anchor_cell,
                    _bound_prefix((target, n) in killed, lower) + (c.fmt_x(ratio) if ratio is not None else "—"),
                    c.verdict(ok),
                    f"{c.median(rss[(target, n)]):.0f} MiB" if (target, n) in rss else "—",
                    f"{c.median(anchor_rss[n]):.0f} MiB" if anchor_rss.get(n) else "—",
                ]
            )
            if ratio is not None and n >= 1000 or (ratio is not None and n == max(sizes)):
                summary.append(
                    c.summary_row("compile", f"{target} N={n} / KFP SDK", f"{c.fmt_x(ratio)} ({c.fmt_s(t)} vs {c.fmt_s(a)})", "≤ 0.33×", ok)
                )
    print("## Compile time (median wall time of the whole process)\n")
    print(
        c.markdown_table(
            ["N", "target", "pipec", "KFP SDK", "pipec / KFP", "≤ 1/3", "pipec peak RSS", "KFP peak RSS"], rows
        )
    )

    growth_rows = []
    for small, large in zip(sizes, sizes[1:]):
        limit = growth_limit(small, large)
        cells = [f"{large}/{small}", f"≤ {limit:.1f}×"]
        for target in targets:
            if (target, small) in times and (target, large) in times:
                g = c.median(times[(target, large)]) / c.median(times[(target, small)])
                ok = g <= limit
                if (target, large) in killed:
                    ok = False
                cells.append(f"{'> ' if (target, large) in killed else ''}{c.fmt_x(g)} {c.verdict(ok)}")
                if large >= 1000:
                    summary.append(c.summary_row("compile", f"{target} growth N={large}/N={small}", c.fmt_x(g), f"≤ {limit:.1f}×", ok))
            else:
                cells.append("—")
        if anchor.get(small) and anchor.get(large):
            cells.append(c.fmt_x(c.median(anchor[large]) / c.median(anchor[small])) + (" (lower bound)" if "killed" in anchor_note.get(large, "") else ""))
        else:
            cells.append("—")
        growth_rows.append(cells)
    if growth_rows:
        print("\n## Growth between sizes (ratio of medians; linear + 10 % allowed)\n")
        print(c.markdown_table(["sizes", "limit", *[f"pipec {t}" for t in targets], "KFP SDK (info)"], growth_rows))

    if failures:
        print("\n## Failures\n")
        for failure in failures:
            print("- " + failure.replace("\n", "\n  "))
        summary.append(c.summary_row("compile", "runs failed", str(len(failures)), "0", False))
    c.emit_summary(args.summary_json, summary)
    return 1 if failures else 0


def _bound_prefix(pipec_killed: bool, anchor_killed: bool) -> str:
    """A ratio from a killed run is a bound: '>' when pipec's time is a lower
    bound, '<' when the anchor's is, '?' when both are."""
    if pipec_killed and anchor_killed:
        return "? "
    return "> " if pipec_killed else ("< " if anchor_killed else "")


if __name__ == "__main__":
    sys.exit(main())
