"""Progress events: what `run_pipeline(progress=callback)` receives.

Kinds, in the order a run emits them:

- ``run_started``: `pipeline`, `run_id` (and `resumed_from` in `detail`);
- ``step_started``: the step is about to run (not emitted for steps that are
  skipped, upstream_failed or reused from a resumed run); `elements` is
  the number of elements of a foreach step;
- ``attempt_failed``: `attempt` of `max_attempts` failed with `error`;
  `retry_in` is the delay before the next attempt, or None after the last
  one; `element` is the element index for foreach steps;
- ``element_finished``: element `element` of a foreach step's `elements`
  ended with `status` (succeeded or failed); `detail` is "k/n done";
- ``step_output``: a line the step printed or logged, in `detail`
  (`status` names the stream: stdout, stderr or log; `element` is set for
  foreach elements);
- ``step_finished``: `status` (succeeded, failed, skipped, cached,
  upstream_failed), `duration_seconds`, `error`, `detail` (e.g. "fallback
  used", "reused from run X", or why a step was skipped or upstream_failed:
  "`when` predicate ... was false", "upstream step 'x' was skipped");
- ``run_finished``: `status` "succeeded" or "failed", `duration_seconds`.

Foreach elements may run in worker threads: a callback must be thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

RUN_STARTED = "run_started"
STEP_STARTED = "step_started"
ATTEMPT_FAILED = "attempt_failed"
ELEMENT_FINISHED = "element_finished"
STEP_OUTPUT = "step_output"
STEP_FINISHED = "step_finished"
RUN_FINISHED = "run_finished"


@dataclass(frozen=True)
class Event:
    kind: str
    pipeline: str
    run_id: str
    step: Optional[str] = None
    status: Optional[str] = None
    attempt: Optional[int] = None
    max_attempts: Optional[int] = None
    retry_in: Optional[float] = None
    error: Optional[str] = None
    element: Optional[int] = None
    elements: Optional[int] = None
    duration_seconds: Optional[float] = None
    detail: Optional[str] = None


ProgressCallback = Callable[[Event], None]
