"""`run_pipeline`: the local, in-process run — the reference semantics.

It runs the IR the targets are compiled from (`plan`), each step's carried
code loaded as a target's task loads it (`_pipec_load` of the shared task
runtime), never the user's imported module.  Steps run one after the other
in the IR's order (dependency order, ties in add_step order).  For each
step, in this order:

1. its upstream steps (those whose outputs it or its predicate consumes,
   its `after` steps; for the final step, every other step) ended so that
   its trigger rule does not let it run → `upstream_failed` or `skipped`
   (`plan.blocked`: by default, one failed or is upstream_failed →
   `upstream_failed`, else one was skipped → `skipped`); a parameter bound
   to an output of an upstream step that produced nothing gets None, and
   a final step's `statuses` the status of every other step;
2. resuming, and the step succeeded or was cached in the resumed run with
   the same key (code, arguments: see `cache`) → taken over, outputs loaded;
3. its `when` predicate is false → `skipped` (a predicate that raises fails
   the step);
4. a cache hit (same key) → `cached`;
5. run it (attempts, fallback, foreach: see `execute`).

Values travel between steps as envelopes (`_pipec_dumps`: JSON when exact,
else a pickle), and every call reads its arguments back afresh.

What a step prints (`print`, writes to sys.stdout / sys.stderr) and logs
is captured into `<run>/logs/<step>.log` and reported line by line as
`step_output` events (see `capture`); without a progress callback the lines
go to the real stdout / stderr as before.  A skipped or upstream_failed
step's `StepResult.reason` (and its event's `detail`) says why.

A run succeeds when no step failed.  A failed step does not stop the steps
that do not depend on it.
"""

from __future__ import annotations

import importlib
import sys
from urllib.parse import quote
import time
from pathlib import Path
from typing import Any, Mapping

from pipec import ir
from pipec.runner import capture
from pipec.runner.cache import code_digest, step_key
from pipec.runner.events import (RUN_FINISHED, RUN_STARTED, STEP_FINISHED, STEP_OUTPUT,
                                 STEP_STARTED, Event, ProgressCallback)
from pipec.runner.execute import Call, Outcome, StepExecutor, describe, exit_guard
from pipec.runner.plan import blocked_by, compile_pipeline, resolve_context, run_statuses
from pipec.runner.result import (CACHED, FAILED, SKIPPED, SUCCEEDED, PipelineResult, StepResult)
from pipec.runner.store import RunDir, Store, git_commit, now_iso
from pipec.templates.task_runtime import (_PIPEC_FOREIGN, _pipec_dumps, _pipec_field, _pipec_load, _pipec_loads,
                                          _pipec_unpack)

REUSABLE = (SUCCEEDED, CACHED)
_NONE = _pipec_dumps(None)


def run_pipeline(pipeline: Any, context: Mapping[str, Any] | None = None, *, store: Any = None,
                 resume: str | None = None, progress: ProgressCallback | None = None,
                 run_id: str | None = None, root: str | Path | None = None) -> PipelineResult:
    """Run `pipeline` locally: a live `pipec.Pipeline` (its module file is
    compiled statically, see `plan.compile_pipeline`) or an `ir.Pipeline`
    (with `root`, its source root).  `context` overrides the context's
    defaults (unknown keys are a ValueError); `store` is the folder for
    records, outputs and cache; `resume` is the id of an earlier run of this
    pipeline (or "latest") to go on from; `progress` receives `Event`s."""
    if not isinstance(pipeline, ir.Pipeline):
        pipeline, root = compile_pipeline(pipeline.name, getattr(pipeline, "defined_in", None))
    the_store = Store.open(store)
    previous = the_store.find_run(resume, pipeline.name) if resume else None
    previous_record = previous.read_resume_record() if previous else {}
    values = resolve_context(pipeline, context, previous_record.get("context"))
    run = the_store.create_run(run_id)
    _PIPEC_FOREIGN.clear()  # classes loaded to read values of an earlier run's code
    with _source_root(root, pipeline), exit_guard():
        return _Run(pipeline, values, the_store, run, previous, previous_record, progress).execute()


class _source_root:
    """The source root first on sys.path while the run lasts, so the carried
    code's imports of helper modules of the source tree work; the helper
    modules are imported afresh for each run (a task imports them in a
    process of its own), so a run never uses an edited module's old code."""

    def __init__(self, root: str | Path | None, pipeline: ir.Pipeline):
        self.entry = str(Path(root).resolve()) if root is not None else None
        self.helpers = {name for step in pipeline.steps for name in step.code.helper_modules}

    def __enter__(self) -> None:
        if self.entry is not None:
            sys.path.insert(0, self.entry)
        for name in [m for m in sys.modules if m in self.helpers or m.split(".")[0] in self.helpers]:
            del sys.modules[name]
        if self.helpers:
            importlib.invalidate_caches()

    def __exit__(self, *exc: Any) -> None:
        if self.entry is not None:
            try:
                sys.path.remove(self.entry)
            except ValueError:
                pass


class _Run:
    def __init__(self, pipeline: ir.Pipeline, context: dict[str, Any], store: Store, run: RunDir,
                 previous: RunDir | None, previous_record: dict, progress: ProgressCallback | None):
        self.pipeline = pipeline
        self.context = context
        self.context_envelopes = {key: _pipec_dumps(value) for key, value in context.items()}
        self.producers = {output: s.name for s in pipeline.steps for output in s.outputs}
        self.store = store
        self.run = run
        self.previous = previous
        self.previous_steps = previous_record.get("step_results") or {}
        self.progress = progress
        self.envelopes: dict[str, bytes] = {}  # output name -> envelope
        self.results: dict[str, StepResult] = {}
        self.started_at = now_iso()
        self.commit = git_commit()
        self.streams = capture.installed()
        self.logs = run.path / "logs"

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
        self.streams.__enter__()
        try:
            for step in self.pipeline.steps:
                result = self.run_step(step)
                self.results[step.name] = result
                log.append(result.to_dict())
        except BaseException:  # interrupted (Ctrl-C, a runner error): record how far it got
            try:
                self.write_record(start, finished=False)
            except Exception:
                pass
            raise
        finally:
            self.streams.__exit__()
            log.close()
        result = self.write_record(start, finished=True)
        self.emit(RUN_FINISHED, status=SUCCEEDED if result.success else FAILED,
                  duration_seconds=result.duration_seconds)
        return result

    def run_step(self, step: ir.Step) -> StepResult:
        start = time.perf_counter()
        status, reason = blocked_by(step.upstream, self.results, step.trigger)
        if status is not None:
            return self.finish(StepResult(step.name, status, reason=reason), detail=reason)
        result = self.attempt_step(step)
        if not result.reused:
            result.duration_seconds = round(time.perf_counter() - start, 6)
        return self.finish(result, detail=self.detail(result))

    def detail(self, result: StepResult) -> str | None:
        if result.reason:
            return result.reason
        if result.reused:
            return f"reused from run {self.previous.run_id}"
        return "fallback used" if result.fallback_used else None

    def attempt_step(self, step: ir.Step) -> StepResult:
        module = _pipec_load(step.code.source, f"<pipec step {step.name}>", "_pipec_step_" + step.name)
        sink = capture.StepSink(step.name, self.logs, self.echo)
        try:
            result = self.attempt_captured(step, module, sink)
        finally:
            sink.close()
        if sink.written:
            result.log = str(sink.path)
        return result

    def attempt_captured(self, step: ir.Step, module: Any, sink: capture.StepSink) -> StepResult:
        if step.when is not None:
            when_args = self.arguments(step.when.params)
            try:
                predicate = getattr(module, step.code.predicate)
                with capture.step_capture(sink):
                    go = Call(when_args).invoke(predicate)
            except (Exception, SystemExit) as exc:
                self.emit(STEP_STARTED, step=step.name)
                return StepResult(step.name, FAILED, error=f"`when` predicate raised {describe(exc)}")
            if not go:
                return StepResult(step.name, SKIPPED, reason=_false_predicate(step, when_args))
        arguments = self.arguments(step.params, step.foreach, step)
        key = step_key(code_digest(step), arguments.items())
        reused = self.reuse(step, key)
        if reused is not None:
            return reused
        self.emit(STEP_STARTED, step=step.name, elements=_elements(step, arguments))
        if step.cache:
            hit = self.store.cache_get(key, step.cache_ttl)
            if hit is not None and list(hit) == list(step.outputs):
                return self.produced(StepResult(step.name, CACHED, cached=True, key=key), hit)
        with capture.step_capture(sink):
            outcome = self.call(step, module, arguments)
        if not outcome.ok:
            return StepResult(step.name, FAILED, attempts=outcome.attempts, error=outcome.error,
                              fallback_used=outcome.fallback_used, traceback=outcome.traceback)
        if step.cache and not outcome.fallback_used:
            self.store.cache_put(key, outcome.envelopes)
        result = StepResult(step.name, SUCCEEDED, attempts=outcome.attempts, error=outcome.error,
                            fallback_used=outcome.fallback_used, traceback=outcome.traceback,
                            key=None if outcome.fallback_used else key)
        return self.produced(result, outcome.envelopes)

    def arguments(self, bindings: tuple[ir.Binding, ...], foreach: str | None = None,
                  step: ir.Step | None = None) -> dict[str, bytes]:
        """The envelope of each bound parameter, in signature order.  A
        default is left to the function's signature (the IR's literal is
        JSON: a tuple default would arrive as a list), as every target does,
        except the list a foreach step maps over."""
        out = {}
        for binding in bindings:
            ref = binding.ref
            if isinstance(ref, ir.OutputRef):  # None when its step produced nothing
                out[binding.param] = self.envelopes.get(ref.output, _NONE)
            elif isinstance(ref, ir.StatusesRef):
                out[binding.param] = _pipec_dumps(run_statuses(self.pipeline, step, self.results))
            elif isinstance(ref, ir.ContextRef):
                out[binding.param] = self.context_envelopes[ref.key]
            elif isinstance(ref, ir.ConstantValue):
                out[binding.param] = _pipec_dumps(ref.value)
            elif ref.is_literal and binding.param == foreach:
                out[binding.param] = _pipec_dumps(ref.value)
        return out

    def call(self, step: ir.Step, module: Any, arguments: dict[str, bytes]) -> Outcome:
        executor = StepExecutor(step, module, self.progress_sink, self.step_event_maker(step.name))
        if step.foreach is None:
            return executor.run(Call(arguments))
        items = _pipec_loads(arguments[step.foreach])
        if not isinstance(items, (list, tuple)):
            error = (f"ValueError: foreach parameter '{step.foreach}' of step '{step.name}' is bound "
                     f"to {_short_repr(items)} ({type(items).__name__}), which is not a list")
            return Outcome(False, error=error)
        if step.foreach_key is not None:
            try:
                items = _pipec_field(step.name, step.foreach, step.foreach_key, items)
            except ValueError as exc:
                return Outcome(False, error=f"ValueError: {exc}")
        calls = [Call({**arguments, step.foreach: _pipec_dumps(item)}) for item in items]
        return executor.run_foreach(calls, self.pipeline.element_limit(step))

    # -- outputs, resume ---------------------------------------------------------
    def produced(self, result: StepResult, envelopes: dict[str, bytes]) -> StepResult:
        for name, data in envelopes.items():
            self.envelopes[name] = data
            result.artifacts[name] = self.run.save_output(name, data)
        result.artifact_uri = _artifact_uri(self.run, result.artifacts, len(envelopes))
        return result

    def reuse(self, step: ir.Step, key: str) -> StepResult | None:
        """The step's result in the resumed run, when it produced outputs
        there with the same key (same code, same arguments)."""
        before = self.previous_steps.get(step.name)
        if not before or before.get("status") not in REUSABLE or before.get("key") != key:
            return None
        try:
            envelopes = {name: self.previous.load_output(name) for name in step.outputs}
        except Exception:  # missing or unreadable: run the step again
            return None
        result = StepResult(step.name, before["status"], cached=bool(before.get("cached")),
                            error=before.get("error"), reused=True, key=key)
        return self.produced(result, envelopes)

    # -- events and record -------------------------------------------------------
    def emit(self, kind: str, **fields: Any) -> None:
        if self.progress is not None:
            self.progress_sink(Event(kind, self.pipeline.name, self.run.run_id, **fields))

    def progress_sink(self, event: Event) -> None:
        """Hand `event` to the progress callback, outside any step's capture
        (a callback printing to sys.stderr must not print into a step's log)."""
        if self.progress is not None:
            with capture.step_capture(None):
                self.progress(event)

    def echo(self, step: str, element: int | None, stream: str, line: str) -> None:
        if self.progress is not None:
            self.progress_sink(Event(STEP_OUTPUT, self.pipeline.name, self.run.run_id, step=step,
                                     element=element, status=stream, detail=line))
            return
        real = self.streams.stdout if stream == "stdout" else self.streams.stderr
        real.write(line + "\n")

    def step_event_maker(self, step: str):
        def make(kind: str, **fields: Any) -> Event:
            return Event(kind, self.pipeline.name, self.run.run_id, step=step, **fields)
        return make

    def finish(self, result: StepResult, detail: str | None = None) -> StepResult:
        self.emit(STEP_FINISHED, step=result.name, status=result.status, attempt=result.attempts,
                  duration_seconds=result.duration_seconds, error=result.error, detail=detail)
        return result

    def output_values(self) -> dict[str, Any]:
        """Every output's value; a file output's is the path of its copy in
        the run's folder `files/<output>/`."""
        files = {name for step in self.pipeline.steps for name in step.file_outputs}
        values = {}
        for name, data in self.envelopes.items():
            value = _pipec_loads(data)
            if name in files:
                folder = self.run.path / "files" / quote(name, safe="")
                if not folder.exists():
                    folder.mkdir(parents=True)
                    value = _pipec_unpack(value, str(folder))
                else:
                    value = str(folder / value[1]) if isinstance(value, tuple) else value
            values[name] = value
        return values

    def write_record(self, start: float, finished: bool) -> PipelineResult:
        result = PipelineResult(
            run_id=self.run.run_id,
            pipeline_name=self.pipeline.name,
            success=all(r.ok for r in self.results.values()),
            outputs=self.output_values() if finished else {},
            step_results=dict(self.results),
            duration_seconds=round(time.perf_counter() - start, 6),
            started_at=self.started_at,
            finished_at=now_iso() if finished else "",
            context=dict(self.context),
            resumed_from=self.previous.run_id if self.previous else None,
            git_commit=self.commit,
            run_dir=str(self.run.path),
            producers=dict(self.producers),
        )
        record = result.to_dict(outputs=False)  # values stay in outputs/*.pkl
        record["output_names"] = list(self.envelopes)
        record["finished"] = finished
        if not finished:
            record["success"] = None
        self.run.write_record(record)
        return result


def _false_predicate(step: ir.Step, arguments: dict[str, bytes]) -> str:
    """Why a step was skipped: its predicate (where it is, and its condition
    when the predicate is one `return`, as a lambda becomes), and the values
    it was given."""
    when = step.when
    text = _predicate_text(step.code.source, step.code.predicate) or when.source
    if len(text) > 80:
        text = text[:77] + "..."
    where = f"{when.span.path}:{when.span.line}" if when.span and when.span.path else ""
    values = ", ".join(f"{name}={_short_repr(_pipec_loads(data), 40)}"
                       for name, data in arguments.items())
    line = f"`when` predicate `{text}`" + (f" ({where})" if where else "") + " was false"
    return line + (f": {values}" if values else "")


def _predicate_text(source: str, name: str | None) -> str | None:
    """The expression of a predicate `def name(...): return EXPR` in the
    carried code (a lambda is carried as such a function), else None."""
    head = f"def {name}("
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(head):
            body = [b.strip() for b in lines[i + 1:] if b.strip()][:1]
            if body and body[0].startswith("return ") and (i + 2 >= len(lines) or not lines[i + 2].startswith(" ")):
                return " ".join(body[0][len("return "):].split())
            return None
    return None


def _elements(step: ir.Step, arguments: dict[str, bytes]) -> int | None:
    """The number of elements of a foreach step (None for other steps, or
    when the bound value is no list: the call then fails with a message)."""
    if step.foreach is None:
        return None
    items = _pipec_loads(arguments[step.foreach])
    return len(items) if isinstance(items, (list, tuple)) else None


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _artifact_uri(run: RunDir, artifacts: dict[str, str], declared: int) -> str | None:
    """The output file of a one-output step; the outputs folder when the step
    has several; None when nothing was saved."""
    if not artifacts:
        return None
    if declared == 1:
        return next(iter(artifacts.values()))
    return run.outputs_dir.as_uri()
