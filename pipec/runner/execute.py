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
are kept in element order.
"""

from __future__ import annotations

import contextvars
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from pipec.runner.events import ATTEMPT_FAILED, Event
from pipec.runner.outputs import gather_foreach, normalize_outputs

# Module-level so tests can replace it: execute.sleep = fake.
sleep = time.sleep
FOREACH_WORKERS = 8


@dataclass
class Call:
    """The arguments of one call of a step function."""

    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def invoke(self, fn: Callable) -> Any:
        return fn(*self.args, **self.kwargs)


@dataclass
class Outcome:
    ok: bool
    outputs: dict[str, Any] | None = None
    attempts: int = 0
    error: str | None = None
    traceback: str | None = None
    fallback_used: bool = False


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def retry_delay(step: Any, retry: int) -> float:
    """Seconds to wait before retry `retry` (1-based) of `step`."""
    return float(step.retry_delay) * float(step.retry_backoff) ** (retry - 1)


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
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"step {label!r} timed out after {timeout:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class StepExecutor:
    """Runs one step's calls; reports failed attempts through `emit`."""

    def __init__(self, step: Any, emit: Callable[[Event], None], make_event: Callable[..., Event]):
        self.step = step
        self.emit = emit
        self.make_event = make_event

    def run(self, call: Call, element: int | None = None) -> Outcome:
        step = self.step
        attempts = max(1, int(step.max_attempts))
        error = tb = None
        for attempt in range(1, attempts + 1):
            try:
                value = call_with_timeout(step.fn, call, step.timeout, step.name)
                return Outcome(True, normalize_outputs(step.name, step.outputs, value), attempt)
            except Exception as exc:
                error, tb = describe(exc), traceback.format_exc()
                wait = retry_delay(step, attempt) if attempt < attempts else None
                self.emit(self.make_event(ATTEMPT_FAILED, attempt=attempt, max_attempts=attempts,
                                          retry_in=wait, error=error, element=element))
                if wait is not None:
                    sleep(wait)
        if step.fallback is None:
            return Outcome(False, attempts=attempts, error=error, traceback=tb)
        return self._fallback(call, attempts, error, tb)

    def _fallback(self, call: Call, attempts: int, error: str | None, tb: str | None) -> Outcome:
        step = self.step
        try:
            value = call.invoke(step.fallback)
            outputs = normalize_outputs(step.name, step.outputs, value)
        except Exception as exc:
            name = getattr(step.fallback, "__name__", "fallback")
            message = f"{error}; then fallback {name!r} failed: {describe(exc)}"
            return Outcome(False, attempts=attempts, error=message, traceback=traceback.format_exc())
        return Outcome(True, outputs, attempts, error=error, traceback=tb, fallback_used=True)

    def run_foreach(self, calls: list[Call]) -> Outcome:
        if not calls:
            return Outcome(True, {name: [] for name in self.step.outputs}, 0)
        workers = min(FOREACH_WORKERS, len(calls))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"pipec-{self.step.name}") as pool:
            futures = [pool.submit(contextvars.copy_context().run, self.run, call, i)
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
        outputs = gather_foreach(self.step.outputs, [o.outputs for o in outcomes])
        return Outcome(True, outputs, attempts, error="; ".join(errors) or None, fallback_used=used)
