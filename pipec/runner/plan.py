"""What a local run executes: the IR that pipec's frontend builds, the same
IR every target is compiled from.

Bindings, the step order (dependency order, ties in `add_step` order) and
each step's upstream steps are the frontend's (`pipec.frontend.binding`);
the runner adds no rule of its own but the run-time ones that every target
applies too: context overrides (`resolve_context`) and the propagation of
failures and skips (`blocked`).

`pipeline.run()` starts from a live `Pipeline`: the module file that created
it (`Pipeline.defined_in`) is compiled statically and the pipeline of that
name is taken from it, so `pipeline.run()` and `pipec run` run the same IR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from pipec import ir
from pipec.templates.task_runtime import _pipec_blocked

FAILED = "failed"
UPSTREAM_FAILED = "upstream_failed"
SKIPPED = "skipped"
SUCCEEDED = "succeeded"
CACHED = "cached"


class PipelineError(ValueError):
    """The pipeline cannot run as defined; `problems` lists every reason."""

    def __init__(self, pipeline: str, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"pipeline {pipeline!r} cannot run:\n{lines}")


def blocked(upstream_statuses: Iterable[str], trigger: str = "all_succeeded") -> str | None:
    """The status of a step whose upstream steps ended with these statuses
    without running it (upstream_failed or skipped), or None (the step
    runs), by its trigger rule: `_pipec_blocked` of the task runtime, the
    one definition the targets that decide it at run time embed too."""
    return _pipec_blocked(upstream_statuses, trigger)


def blocked_by(upstream: Iterable[str], results: Mapping[str, Any],
               trigger: str = "all_succeeded") -> tuple[str | None, str | None]:
    """`blocked` for a step whose upstream steps are `upstream` (names, with
    their `results`), and why: "upstream step 'x' failed" names the first
    failed (or upstream_failed) one, else the first skipped one."""
    names = list(upstream)
    status = blocked((results[name].status for name in names), trigger)
    if status is None:
        return None, None
    wanted = (SKIPPED,) if status == SKIPPED else (FAILED, UPSTREAM_FAILED)
    name = next(n for n in names if results[n].status in wanted)
    verb = {FAILED: "failed", UPSTREAM_FAILED: "did not run (upstream_failed)",
            SKIPPED: "was skipped"}[results[name].status]
    reason = f"upstream step {name!r} {verb}"
    if trigger == "one_succeeded":
        reason = f"no upstream step succeeded ({reason})"
    return status, reason


def run_statuses(pipeline: ir.Pipeline, step: ir.Step, results: Mapping[str, Any]) -> dict[str, str]:
    """What a final step's `statuses` parameter receives: {step name:
    succeeded | failed | skipped | upstream_failed} of every other step, in
    pipeline order (a cached step succeeded)."""
    return {
        other.name: SUCCEEDED if results[other.name].status == CACHED else results[other.name].status
        for other in pipeline.steps
        if other.name != step.name
    }


def resolve_context(pipeline: ir.Pipeline, overrides: Mapping[str, Any] | None,
                    base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The pipeline's context defaults (or `base`, e.g. a resumed run's
    context), with `overrides` applied.  Unknown keys are a ValueError."""
    values = {param.name: param.default for param in pipeline.context}
    if base:
        values.update({k: v for k, v in base.items() if k in values})
    unknown = [k for k in (overrides or {}) if k not in values]
    if unknown:
        known = ", ".join(values) or "(no keys)"
        names = ", ".join(repr(k) for k in unknown)
        raise ValueError(
            f"unknown context key(s) {names} for pipeline {pipeline.name!r}; the context has: {known}"
        )
    values.update(overrides or {})
    return values


def compile_pipeline(name: str, path: str | Path | None) -> tuple[ir.Pipeline, Path]:
    """The IR of pipeline `name` of the module file `path`, compiled by the
    frontend, and the module's source root.  A PipelineError lists the
    frontend's errors (as `pipec check` prints them)."""
    from pipec import frontend
    from pipec.diagnostics import Diagnostic

    if path is None or not Path(path).is_file():
        where = f" ({path})" if path else ""
        raise PipelineError(name, [
            f"pipeline.run() compiles the module file that defines the pipeline, and "
            f"found none{where}: define the pipeline at the top level of a .py file"
        ])
    result = frontend.load(Path(path))
    errors = [d for d in result.diagnostics if d.severity == "error"]
    if errors or result.module is None:
        problems = [d.format() for d in sorted(errors, key=Diagnostic.sort_key)]
        raise PipelineError(name, problems or [f"{path}: cannot be compiled"])
    for pipeline in result.module.pipelines:
        if pipeline.name == name:
            return pipeline, result.root
    raise PipelineError(name, [
        f"{path} defines no pipeline named {name!r} at its top level (pipec reads pipelines "
        f"statically: `Pipeline({name!r}, ...)` assigned at module level)"
    ])
