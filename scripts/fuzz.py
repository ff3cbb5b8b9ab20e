"""Differential fuzzing: random valid pipelines, run locally (the reference)
and on the real targets, every difference printed with its module.

    python scripts/fuzz.py --seed 1 --count 200 --targets airflow,kubeflow,prefect,dagster

The pipelines come from the hypothesis strategies in tests/fuzz/ (the same
seed gives the same pipelines).  Each batch of `--batch` pipelines runs in
one orchestrator process per target.  The modules that differ are copied to
`<out>/differences/`, each with the difference in its header; the summary
says how many pipelines ran on each target and how long it took.  Exit
status: 0 no difference, 1 differences.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from fuzz import harness, strategies  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--targets", default=",".join(harness.TARGETS))
    parser.add_argument("--batch", type=int, default=50, help="pipelines per orchestrator process")
    parser.add_argument("--features", default="",
                        help=f"comma-separated: {', '.join(sorted(strategies.FEATURES))}, "
                        f"or language (all of {', '.join(sorted(strategies.LANGUAGE))})")
    parser.add_argument("--range", default=None, metavar="START:STOP",
                        help="run only these pipelines of the batch (to share a batch between processes)")
    parser.add_argument("--out", type=Path, help="working folder (default: a new temporary folder)")
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(harness.TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    out = args.out or Path(tempfile.mkdtemp(prefix="pipec-fuzz-"))
    features = strategies.expand(f for f in args.features.split(",") if f)

    start = time.perf_counter()
    pipelines = strategies.batch(args.seed, args.count, features)
    if args.range:
        start_at, stop_at = (int(x) if x else None for x in args.range.split(":"))
        pipelines = pipelines[start_at:stop_at]
    print(f"{len(pipelines)} pipelines from seed {args.seed} in {time.perf_counter() - start:.1f} s; work in {out}",
          flush=True)
    total = harness.Report()
    shared: dict = {}
    for first in range(0, len(pipelines), args.batch):
        chunk = pipelines[first:first + args.batch]
        report = harness.run(chunk, out / f"batch-{first // args.batch}", targets,
                             progress=lambda line: print(f"  [{first}+{len(chunk)}] {line}", flush=True), shared=shared)
        for target, n in report.ran.items():
            total.ran[target] = total.ran.get(target, 0) + n
            total.seconds[target] = total.seconds.get(target, 0.0) + report.seconds[target]
        for target, names in report.refused.items():
            total.refused.setdefault(target, []).extend(names)
        for difference in report.differences:
            print(difference, flush=True)
        total.differences.extend(report.differences)
    saved = harness.save_differences(total.differences, out / "differences")
    print(f"\n{total.summary()}\ntotal {time.perf_counter() - start:.0f} s; modules that differ: {saved}")
    return 1 if total.differences else 0


if __name__ == "__main__":
    sys.exit(main())
