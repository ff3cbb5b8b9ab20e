"""Benchmark 5 — size of the KFP spec, pipec vs the KFP SDK.

The KFP v2 backend keeps a run's compiled spec in an Argo workflow
annotation capped at 262,144 bytes (kubeflow/pipelines#10968): a spec over
it cannot run on a real cluster.  For the bundled ETL (`examples/etl.py`)
and chains of N trivial steps (default 100 and 150; `common.chain_module`),
it compiles the pipeline with `pipec compile --target kubeflow` and the
same pipeline written with the KFP SDK (`common.kfp_etl_script`,
`common.kfp_chain_script`), and prints both sizes in bytes and their ratio.
Sizes are deterministic: one run each.

Targets: a 100-step chain at most 1.0× the KFP SDK's bytes; a 150-step
chain under 262,144 bytes.  The ETL's ratio is reported.  Each pipeline is
compiled twice: with the runtime carried in the spec (the default, a
self-contained file), and with `runtime: image` (the components import
pipec's runtime from their image, as KFP SDK components import kfp), which
must be no larger than the KFP SDK's spec for every pipeline.

    python benchmarks/bench_spec_size.py
    python benchmarks/bench_spec_size.py --sizes 100,150,1000
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

ANNOTATION_CAP = 262_144


def pipec_size(pipec: list[str], module: Path, out: Path, name: str, config: Path | None = None) -> int:
    extra = ["--config", str(config)] if config else []
    res = c.run_process([*pipec, "compile", str(module), "--target", "kubeflow", "-o", str(out), *extra],
                        cwd=module.parent)
    produced = out / f"{name}.yaml"
    if not res.ok or not produced.exists():
        raise RuntimeError(f"pipec failed on {module}:\n{res.stderr[-2000:]}")
    return produced.stat().st_size


def sdk_size(script: Path, out: Path) -> int:
    res = c.run_process([c.PYTHON, str(script), str(out)])
    if not res.ok or not out.exists():
        raise RuntimeError(f"KFP SDK failed on {script}:\n{res.stderr[-2000:]}")
    return out.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = c.common_args(__doc__.splitlines()[0], sizes="100,150", quick_sizes="100,150")
    args = parser.parse_args(argv)
    sizes = c.parse_sizes(args.sizes or "100,150")
    pipec = c.pipec_command()
    print(f"# bench_spec_size — {c.machine_line()}; chain sizes {sizes}\n", flush=True)
    rows, summary = [], []
    with c.Workdir("spec-size", args.keep) as work:
        cases = [("ETL", c.REPO / "examples" / "etl.py", "etl", c.kfp_etl_script(), None)]
        for n in sizes:
            module = c.write(work / f"src_{n}" / f"chain_{n}.py", c.chain_module(n))
            cases.append((f"chain N={n}", module, f"chain_{n}", c.kfp_chain_script(n), n))
        image_config = c.write(work / "image.yaml", "pipec:\n  kubeflow: {runtime: image}\n")
        for label, module, name, script, n in cases:
            theirs = sdk_size(c.write(work / f"sdk_{name}.py", script), work / f"sdk_{name}.yaml")
            for runtime, config in (("embedded", None), ("image", image_config)):
                ours = pipec_size(pipec, module, work / "out" / runtime, name, config)
                ratio = c.ratio(ours, theirs)
                if runtime == "image":
                    ok, target = ratio <= 1.0, "≤ 1.0×"
                elif n == 100:
                    ok, target = ratio <= 1.0, "≤ 1.0×"
                elif n == 150:
                    ok, target = ours < ANNOTATION_CAP, f"< {ANNOTATION_CAP:,} B"
                else:
                    ok, target = None, "reported"
                over = " (over the cap)" if ours > ANNOTATION_CAP else ""
                row = [label, runtime, f"{ours:,} B{over}", f"{theirs:,} B", c.fmt_x(ratio), target, c.verdict(ok)]
                rows.append(row)
                value = f"{c.fmt_x(ratio)} ({ours:,} B vs {theirs:,} B)"
                summary.append(c.summary_row("spec size", f"kubeflow {label} ({runtime}) / KFP SDK", value, target, ok))
    print("## KFP spec size\n")
    print(c.markdown_table(["pipeline", "runtime", "pipec", "KFP SDK", "ratio", "target", "verdict"], rows))
    c.emit_summary(args.summary_json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
