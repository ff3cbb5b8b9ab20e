"""The progress printer of `pipec run`: one line per event.

    pipec: running pipeline 'resilient' (run 20250101T120000-1a2b3c)
      flaky_fetch: started
      flaky_fetch: attempt 1/3 failed: ConnectionError: upstream unavailable; retrying in 0.2s
      flaky_fetch: succeeded in 0.61s (3 attempts)
      train: started (4 elements)
      train | fitting model 0
      train[0]: element 1/4 succeeded (1/4 done)
      ...
      report: skipped (`when` predicate `lambda score: score > 0.9` was false: score=0.8)
      fetch_prices: succeeded in 0.10s (2 attempts, fallback used)
    pipec: pipeline 'resilient' succeeded in 0.75s (run 20250101T120000-1a2b3c)
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from pipec.runner.events import (ATTEMPT_FAILED, ELEMENT_FINISHED, RUN_FINISHED, RUN_STARTED,
                                 STEP_FINISHED, STEP_OUTPUT, STEP_STARTED, Event)


def _seconds(value: float | None) -> str:
    value = value or 0.0
    return f"{value:.2f}s" if value < 60 else f"{int(value // 60)}m{value % 60:04.1f}s"


def _label(event: Event) -> str:
    return event.step if event.element is None else f"{event.step}[{event.element}]"


def _short(text: str | None, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_event(event: Event) -> str:
    """The line printed for `event`."""
    if event.kind == RUN_STARTED:
        extra = f", resuming {event.detail}" if event.detail else ""
        return f"pipec: running pipeline {event.pipeline!r} (run {event.run_id}{extra})"
    if event.kind == RUN_FINISHED:
        return (f"pipec: pipeline {event.pipeline!r} {event.status} in "
                f"{_seconds(event.duration_seconds)} (run {event.run_id})")
    if event.kind == STEP_STARTED:
        extra = f" ({event.elements} element{'s' * (event.elements != 1)})" if event.elements is not None else ""
        return f"  {_label(event)}: started{extra}"
    if event.kind == STEP_OUTPUT:
        return f"  {_label(event)} | {event.detail}"
    if event.kind == ELEMENT_FINISHED:
        line = f"  {_label(event)}: element {event.element + 1}/{event.elements} {event.status}"
        return line + (f" ({event.detail})" if event.detail else "")
    if event.kind == ATTEMPT_FAILED:
        line = f"  {_label(event)}: attempt {event.attempt}/{event.max_attempts} failed: {_short(event.error)}"
        if event.retry_in is not None:
            line += f"; retrying in {event.retry_in:g}s"
        return line
    if event.kind == STEP_FINISHED:
        return _finished(event)
    return f"  {event.kind}: {event.step or ''}"


def _finished(event: Event) -> str:
    line = f"  {_label(event)}: {event.status}"
    if event.status in ("succeeded", "failed"):
        line += f" in {_seconds(event.duration_seconds)}"
    notes = []
    if event.attempt and event.attempt > 1:
        notes.append(f"{event.attempt} attempts")
    if event.detail:
        notes.append(event.detail)
    if notes:
        line += f" ({', '.join(notes)})"
    if event.status == "failed" and event.error:
        line += f": {_short(event.error)}"
    return line


class ConsolePrinter:
    """A progress callback printing one line per event to `stream`
    (default: sys.stderr at the time of each event).  Thread-safe."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        stream = self.stream or sys.stderr
        line = format_event(event)
        with self._lock:
            stream.write(line + "\n")
            stream.flush()
