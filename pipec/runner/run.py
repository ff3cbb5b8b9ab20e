"""`run_pipeline`: the local, in-process run — the reference semantics.

Steps run one after the other in plan order (dependency order, ties in
add_step order).  For each step, in this order:

1. an upstream step (one whose output it or its predicate consumes) failed
   or is upstream_failed → `upstream_failed`; else one was skipped →
   `skipped` (skips propagate, as Airflow's all_success trigger rule does);
2. resuming, and the step succeeded, was cached or skipped in the resumed
   run (and so did all its upstream steps) → taken over, outputs loaded;
3. its `when` predicate is false → `skipped` (a predicate that raises fails
   the step);
4. a cache hit → `cached`;
5. run it (attempts, fallback, foreach: see `execute`).

A run succeeds when no step failed.  A failed step does not stop the steps
that do not depend on it.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from pipec.language import Pipeline
from pipec.runner.cache import cache_key
from pipec.runner.events import (RUN_FINISHED, RUN_STARTED, STEP_FINISHED, STEP_STARTED, Event,
                                 ProgressCallback)
from pipec.runner.execute import Call, Outcome, StepExecutor, describe
from pipec.runner.plan import FromContext, FromOutput, Plan, Source, StepPlan, build_plan, resolve_context
from pipec.runner.result import (CACHED, FAILED, PRODUCED, SKIPPED, SUCCEEDED, UPSTREAM_FAILED,
                                 PipelineResult, StepResult)
from pipec.runner.store import RunDir, Store, git_commit, now_iso

REUSABLE = (SUCCEEDED, CACHED, SKIPPED)


def run_pipeline(pipeline: Pipeline, context: Mapping[str, Any] | None = None, *, store: Any = None,
                 resume: str | None = None, progress: ProgressCallback | None = None,
                 run_id: str | None = None) -> PipelineResult:
    """Run `pipeline` locally.  `context` overrides the context's defaults
    (unknown keys are a ValueError); `store` is the folder for records,
    outputs and cache; `resume` is the id of an earlier run of this pipeline
    (or "latest") to go on from; `progress` receives `Event`s."""
    the_store = Store.open(store)
    previous = the_store.find_run(resume, pipeline.name) if resume else None
    previous_record = previous.read_resume_record() if previous else {}
    values = resolve_context(pipeline, context, previous_record.get("context"))
    plan = build_plan(pipeline, values)
    run = the_store.create_run(run_id)
    return _Run(plan, the_store, run, previous, previous_record, progress).execute()


class _Run:
    def __init__(self, plan: Plan, store: Store, run: RunDir, previous: RunDir | None,
                 previous_record: dict, progress: ProgressCallback | None):
        self.plan = plan
        self.store = store
        self.run = run
        self.previous = previous
        self.previous_steps = previous_record.get("step_results") or {}
        self.progress = progress
        self.outputs: dict[str, Any] = {}
        self.results: dict[str, StepResult] = {}
        self.started_at = now_iso()
        self.commit = git_commit()

    # -- the run -------------------------------------------------------------
    def execute(self) -> PipelineResult:
        """Run every step.  `record.json` is written at the start and at the
        end (and when the run is interrupted); in between, each finished
        step is appended to `steps.jsonl`, so recording a step costs the same
        however many steps the run has, and a run killed midway can still be
        resumed (`RunDir.read_resume_record`)."""
        start = time.perf_counter()
        self.emit(RUN_STARTED, detail=self.previous.run_id if self.previous else None)
        self.write_record(start, finished=False)
        log = self.run.open_step_log()
        try:
            for sp in self.plan.steps:
                result = self.run_step(sp)
                self.results[sp.name] = result
                log.append(result.to_dict())
        except BaseException:  # interrupted (Ctrl-C, a runner error): record how far it got
            try:
                self.write_record(start, finished=False)
            except Exception:
                pass
            raise
        finally:
            log.close()
        result = self.write_record(start, finished=True)
        self.emit(RUN_FINISHED, status=SUCCEEDED if result.success else FAILED,
                  duration_seconds=result.duration_seconds)
        return result

    def run_step(self, sp: StepPlan) -> StepResult:
        start = time.perf_counter()
        blocked = self.blocked(sp)
        if blocked is not None:
            return self.finish(StepResult(sp.name, blocked))
        reused = self.reuse(sp)
        if reused is not None:
            return self.finish(reused, detail=f"reused from run {self.previous.run_id}")
        self.emit(STEP_STARTED, step=sp.name)
        result = self.attempt_step(sp)
        result.duration_seconds = round(time.perf_counter() - start, 6)
        return self.finish(result, detail="fallback used" if result.fallback_used else None)

    def blocked(self, sp: StepPlan) -> str | None:
        statuses = [self.results[up].status for up in sp.upstream]
        if any(s in (FAILED, UPSTREAM_FAILED) for s in statuses):
            return UPSTREAM_FAILED
        if SKIPPED in statuses:
            return SKIPPED
        return None

    def attempt_step(self, sp: StepPlan) -> StepResult:
        step = sp.step
        if sp.predicate is not None:
            try:
                go = step.when(**{k: self.value(src) for k, src in sp.predicate.items()})
            except Exception as exc:
                return StepResult(sp.name, FAILED, error=f"`when` predicate raised {describe(exc)}")
            if not go:
                return StepResult(sp.name, SKIPPED)
        arguments = {name: self.value(src) for name, src in sp.params.items()}
        key = cache_key(step, arguments) if sp.cache else None
        if key is not None:
            hit = self.store.cache_get(key)
            if hit is not None and list(hit) == list(step.outputs):
                return self.produced(StepResult(sp.name, CACHED, cached=True), hit)
        outcome = self.call(sp, arguments)
        if not outcome.ok:
            return StepResult(sp.name, FAILED, attempts=outcome.attempts, error=outcome.error,
                              fallback_used=outcome.fallback_used, traceback=outcome.traceback)
        if key is not None and not outcome.fallback_used:
            self.store.cache_put(key, outcome.outputs)
        result = StepResult(sp.name, SUCCEEDED, attempts=outcome.attempts, error=outcome.error,
                            fallback_used=outcome.fallback_used, traceback=outcome.traceback)
        return self.produced(result, outcome.outputs)

    def call(self, sp: StepPlan, arguments: dict[str, Any]) -> Outcome:
        executor = StepExecutor(sp.step, self.progress_sink, self.step_event_maker(sp.name))
        if sp.step.foreach is None:
            return executor.run(_make_call(sp, arguments))
        items = arguments[sp.step.foreach]
        if not isinstance(items, (list, tuple)):
            error = (f"ValueError: foreach parameter '{sp.step.foreach}' of step '{sp.name}' is bound "
                     f"to {_short_repr(items)} ({type(items).__name__}), which is not a list")
            return Outcome(False, error=error)
        calls = [_make_call(sp, {**arguments, sp.step.foreach: item}) for item in items]
        return executor.run_foreach(calls)

    # -- outputs, resume ---------------------------------------------------------
    def value(self, source: Source) -> Any:
        if isinstance(source, FromOutput):
            return self.outputs[source.output]
        if isinstance(source, FromContext):
            return self.plan.context[source.key]
        return source.value

    def produced(self, result: StepResult, outputs: dict[str, Any]) -> StepResult:
        for name, value in outputs.items():
            self.outputs[name] = value
            uri = self.run.save_output(name, value)
            if uri is not None:
                result.artifacts[name] = uri
        result.artifact_uri = _artifact_uri(self.run, result.artifacts, len(outputs))
        return result

    def reuse(self, sp: StepPlan) -> StepResult | None:
        before = self.previous_steps.get(sp.name)
        if not before or before.get("status") not in REUSABLE:
            return None
        if any(not self.results[up].reused for up in sp.upstream):
            return None
        result = StepResult(sp.name, before["status"], cached=bool(before.get("cached")),
                            fallback_used=bool(before.get("fallback_used")), error=before.get("error"),
                            reused=True)
        if result.status not in PRODUCED:
            return result
        try:
            values = {name: self.previous.load_output(name) for name in sp.step.outputs}
        except Exception:  # missing or unreadable: run the step again
            return None
        for name in sp.step.outputs:
            result.artifacts[name] = self.run.copy_output_from(self.previous, name)
            self.outputs[name] = values[name]
        result.artifact_uri = _artifact_uri(self.run, result.artifacts, len(sp.step.outputs))
        return result

    # -- events and record -------------------------------------------------------
    def emit(self, kind: str, **fields: Any) -> None:
        if self.progress is not None:
            self.progress(Event(kind, self.plan.pipeline.name, self.run.run_id, **fields))

    def progress_sink(self, event: Event) -> None:
        if self.progress is not None:
            self.progress(event)

    def step_event_maker(self, step: str):
        def make(kind: str, **fields: Any) -> Event:
            return Event(kind, self.plan.pipeline.name, self.run.run_id, step=step, **fields)
        return make

    def finish(self, result: StepResult, detail: str | None = None) -> StepResult:
        self.emit(STEP_FINISHED, step=result.name, status=result.status, attempt=result.attempts,
                  duration_seconds=result.duration_seconds, error=result.error, detail=detail)
        return result

    def write_record(self, start: float, finished: bool) -> PipelineResult:
        result = PipelineResult(
            run_id=self.run.run_id,
            pipeline_name=self.plan.pipeline.name,
            success=all(r.ok for r in self.results.values()),
            outputs=dict(self.outputs),
            step_results=dict(self.results),
            duration_seconds=round(time.perf_counter() - start, 6),
            started_at=self.started_at,
            finished_at=now_iso() if finished else "",
            context=dict(self.plan.context),
            resumed_from=self.previous.run_id if self.previous else None,
            git_commit=self.commit,
            run_dir=str(self.run.path),
            producers=dict(self.plan.producers),
        )
        record = result.to_dict(outputs=False)  # values stay in outputs/*.pkl
        record["output_names"] = list(self.outputs)
        record["finished"] = finished
        if not finished:
            record["success"] = None
        self.run.write_record(record)
        return result


def _make_call(sp: StepPlan, arguments: dict[str, Any]) -> Call:
    args = tuple(arguments[name] for name in sp.positional)
    kwargs = {k: v for k, v in arguments.items() if k not in sp.positional}
    return Call(args, kwargs)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _artifact_uri(run: RunDir, artifacts: dict[str, str], declared: int) -> str | None:
    """The output file of a one-output step; the outputs folder when the step
    has several; None when nothing was saved."""
    if not artifacts:
        return None
    if declared == 1:
        return next(iter(artifacts.values()))
    return run.outputs_dir.as_uri()
