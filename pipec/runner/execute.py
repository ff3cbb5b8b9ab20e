"""Running one step: attempts, backoff, timeouts, fallback, fan-out.

Retries: `max_attempts` counts the first try; the delay before retry k
(k = 1, 2, ...) is `retry_delay * retry_backoff ** (k - 1)` seconds.

Timeouts: with `timeout` set, each attempt runs in a daemon worker thread and
the runner stops waiting at the deadline; the attempt then fails with
TimeoutError (and counts as a failed attempt).  Python cannot kill a thread:
the timed-out call keeps running in the background until it returns, and its
result is discarded.  Steps that must really stop should check a deadline
themselves.

Fallback: when the last attempt fails, the fallback is called once (no
retries, no timeout) with the same arguments; its return value is normalised
like the step's.

Foreach: every element is its own task, as on the orchestrators: it has its
own attempts, timeout and fallback.  Elements run in a thread pool; results
are kept in element order; each element's end is reported as an
`element_finished` event (element k of n, how many are done), and what an
element prints is captured as that element's (`capture.element_capture`).

Values: a call holds its arguments as envelopes (`_pipec_dumps`) and each
attempt reads them back afresh, and each attempt's outputs are written to
envelopes, as a target's task does: an in-place change of an argument never
reaches another step or attempt, and an output no target can carry (a
generator, a lock) fails the attempt (like a target's task, the fallback
does not cover that: it covers the step's call).

Exits: `sys.exit()` in a step raises SystemExit, which fails the attempt
like any exception.  `os._exit()` would end the whole run; while steps run,
`exit_guard` replaces `os._exit` with a function that raises instead (in the
runner's own process only: a child forked by a step still exits).  This is
cheaper and simpler than a worker process per attempt (a fork per step, and
the step's values pickled both ways), and covers what a step can call.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from pipec.runner.capture import element_capture
from pipec.runner.events import ATTEMPT_FAILED, ELEMENT_FINISHED, Event
from pipec.runner.outputs import normalize_outputs
from pipec.templates.task_runtime import (_pipec_call, _pipec_dumps, _pipec_fallback_args, _pipec_loads,
                                          _pipec_typed, _pipec_unpack)

# Module-level so tests can replace it: execute.sleep = fake.
sleep = time.sleep
FOREACH_WORKERS = 8


class StepExit(Exception):
    """A step called `os._exit()`."""


@contextlib.contextmanager
def exit_guard():
    """While the block runs, `os._exit()` called in this process raises
    StepExit instead of ending the process."""
    real, pid = os._exit, os.getpid()

    def guarded(status):
        if os.getpid() != pid:  # a child forked by a step
            real(status)
        raise StepExit(f"the step called os._exit({status})")

    os._exit = guarded
    try:
        yield
    finally:
        os._exit = real


@dataclass
class Call:
    """The arguments of one call of a step function, as envelopes, by
    parameter name in signature order (positional-only ones are passed by
    position)."""

    arguments: dict[str, bytes]

    def values(self) -> dict[str, Any]:
        # A file output arrives as the path of a fresh copy, as on every target.
        return {name: _pipec_unpack(_pipec_loads(data)) for name, data in self.arguments.items()}

    def invoke(self, fn: Callable, values: dict[str, Any] | None = None) -> Any:
        """`fn` called with this call's values (or `values`), as every target
        calls it (`_pipec_call`: positional-only parameters by position)."""
        return _pipec_call(fn, self.values() if values is None else values)


@dataclass
class Outcome:
    ok: bool
    outputs: dict[str, Any] | None = None  # raw values (foreach elements)
    attempts: int = 0
    error: str | None = None
    traceback: str | None = None
    fallback_used: bool = False
    envelopes: dict[str, bytes] | None = None


class _NotCarried(Exception):
    """An output that cannot be written to an envelope."""


def _envelopes(step: str, outputs: dict[str, Any]) -> dict[str, bytes]:
    envelopes = {}
    for name, value in outputs.items():
        try:
            envelopes[name] = _pipec_dumps(value)
        except Exception as exc:
            raise _NotCarried(f"output {name!r} of step {step!r} cannot be passed on "
                              f"(no target can carry it): {describe(exc)}") from exc
    return envelopes


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def call_with_timeout(fn: Callable, call: Call, timeout: float | None, label: str) -> Any:
    if timeout is None:
        return call.invoke(fn)
    box: dict[str, Any] = {}
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            box["value"] = ctx.run(call.invoke, fn)
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"pipec-{label}", daemon=True)
    worker.start()
    # A timeout past the platform's limit (e.g. 1e15) is a wait without end.
    worker.join(min(timeout, threading.TIMEOUT_MAX))
    if worker.is_alive():
        raise TimeoutError(f"step {label!r} timed out after {timeout:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class StepExecutor:
    """Runs one step's calls; reports failed attempts through `emit`.
    `step` is the IR step, `module` its carried code, loaded."""

    def __init__(self, step: Any, module: Any, emit: Callable[[Event], None],
                 make_event: Callable[..., Event]):
        self.step = step
        self.function = getattr(module, step.code.function)
        self.fallback = getattr(module, step.code.fallback) if step.code.fallback else None
        self.emit = emit
        self.make_event = make_event

    def run(self, call: Call, element: int | None = None) -> Outcome:
        step = self.step
        policy = step.retry
        attempts = max(1, int(policy.max_attempts))
        error = tb = None
        carried_error = False
        for attempt in range(1, attempts + 1):
            try:
                value = call_with_timeout(self.function, call, step.timeout, step.name)
                outputs = self.typed(normalize_outputs(step.name, step.outputs, value))
                return Outcome(True, outputs, attempt, envelopes=_envelopes(step.name, outputs))
            except (Exception, SystemExit) as exc:
                error, tb = describe(exc), traceback.format_exc()
                carried_error = isinstance(exc, _NotCarried)
                wait = policy.delay_before(attempt) if attempt < attempts else None
                self.emit(self.make_event(ATTEMPT_FAILED, attempt=attempt, max_attempts=attempts,
                                          retry_in=wait, error=error, element=element))
                if wait is not None:
                    sleep(wait)
        if self.fallback is None or carried_error:
            return Outcome(False, attempts=attempts, error=error, traceback=tb)
        return self._fallback(call, attempts, error, tb)

    def typed(self, outputs: dict[str, Any]) -> dict[str, Any]:
        """File outputs packed (their contents, as they are now), metrics checked."""
        return _pipec_typed(self.step.name, outputs, self.step.file_outputs, self.step.metrics)

    def _fallback(self, call: Call, attempts: int, error: str | None, tb: str | None) -> Outcome:
        step = self.step
        try:
            value = call.invoke(self.fallback, _pipec_fallback_args(self.function, call.values()))
            outputs = self.typed(normalize_outputs(step.name, step.outputs, value))
            envelopes = _envelopes(step.name, outputs)
        except (Exception, SystemExit) as exc:
            message = f"{error}; then fallback {step.code.fallback!r} failed: {describe(exc)}"
            return Outcome(False, attempts=attempts, error=message, traceback=traceback.format_exc())
        return Outcome(True, outputs, attempts, error=error, traceback=tb, fallback_used=True,
                       envelopes=envelopes)

    def run_foreach(self, calls: list[Call], limit: int | None = None) -> Outcome:
        """Every element, at most `limit` (and FOREACH_WORKERS) at once."""
        if not calls:
            return Outcome(True, {}, 0, envelopes=self._gather([]))
        workers = min(FOREACH_WORKERS, len(calls), limit or FOREACH_WORKERS)
        progress = _Progress(len(calls))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"pipec-{self.step.name}") as pool:
            futures = [pool.submit(contextvars.copy_context().run, self._element, call, i, progress)
                       for i, call in enumerate(calls)]
            outcomes = [f.result() for f in futures]
        attempts = max(o.attempts for o in outcomes)
        used = any(o.fallback_used for o in outcomes)
        failed = [(i, o) for i, o in enumerate(outcomes) if not o.ok]
        if failed:
            i, first = failed[0]
            more = f" (and {len(failed) - 1} more element(s) failed)" if len(failed) > 1 else ""
            return Outcome(False, attempts=attempts, error=f"element {i}: {first.error}{more}",
                           traceback=first.traceback, fallback_used=used)
        errors = [f"element {i}: {o.error}" for i, o in enumerate(outcomes) if o.error]
        return Outcome(True, {}, attempts, error="; ".join(errors) or None, fallback_used=used,
                       envelopes=self._gather([o.outputs for o in outcomes]))

    def _element(self, call: Call, element: int, progress: "_Progress") -> Outcome:
        with element_capture(element):
            outcome = self.run(call, element)
        self.emit(self.make_event(ELEMENT_FINISHED, element=element, elements=progress.total,
                                  status="succeeded" if outcome.ok else "failed",
                                  detail=f"{progress.done()}/{progress.total} done"))
        return outcome

    def _gather(self, per_element: list[dict[str, Any]]) -> dict[str, bytes]:
        """Each declared output as the list of the per-element values (each
        already checked to fit an envelope), in element order."""
        return {name: _pipec_dumps([outputs[name] for outputs in per_element])
                for name in self.step.outputs}


class _Progress:
    """How many elements of a foreach step have ended (counted across threads)."""

    def __init__(self, total: int):
        self.total = total
        self.count = 0
        self.lock = threading.Lock()

    def done(self) -> int:
        with self.lock:
            self.count += 1
            return self.count
