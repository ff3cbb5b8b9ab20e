"""What a local run returns: `PipelineResult` and one `StepResult` per step."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

SUCCEEDED = "succeeded"
FAILED = "failed"
SKIPPED = "skipped"
CACHED = "cached"
UPSTREAM_FAILED = "upstream_failed"
STATUSES = (SUCCEEDED, FAILED, SKIPPED, CACHED, UPSTREAM_FAILED)
# Statuses whose outputs exist (a `cached` step's outputs came from the cache).
PRODUCED = (SUCCEEDED, CACHED)


@dataclass
class StepResult:
    """One step of a run.

    `attempts` counts the tries of the step function in this run (0 when it
    did not run; for a foreach step, the most tries any element needed).
    `error` is the last error as "Type: message" (also set when a fallback
    took over: then `fallback_used` is True and the status is succeeded).
    `artifact_uri` is the file URI of the pickled output (the run's outputs
    folder when the step has several; `artifacts` maps each output to its
    file).  `reused` marks a step taken over from the run being resumed."""

    name: str
    status: str
    duration_seconds: float = 0.0
    attempts: int = 0
    cached: bool = False
    error: str | None = None
    artifact_uri: str | None = None
    fallback_used: bool = False
    artifacts: dict[str, str] = field(default_factory=dict)
    reused: bool = False
    traceback: str | None = None
    # The step's key (`pipec.runner.cache`) when its outputs came from its
    # own code: what `--resume` compares before reusing them.
    key: str | None = None
    # Why a skipped or upstream_failed step did not run.
    reason: str | None = None
    # The file its print output and logging were captured into, if any.
    log: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != FAILED and self.status != UPSTREAM_FAILED

    def to_dict(self) -> dict[str, Any]:
        """The fields in declaration order (what `dataclasses.asdict` gives,
        without its deep copy of every value)."""
        data = {name: getattr(self, name) for name in _STEP_FIELDS}
        data["artifacts"] = dict(self.artifacts)
        return data


_STEP_FIELDS = tuple(f.name for f in fields(StepResult))


def _json_value(value: Any) -> Any:
    """`value` when it is JSON as it is, else its (shortened) repr."""
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        text = repr(value)
        return text if len(text) <= 200 else text[:197] + "..."


@dataclass
class PipelineResult:
    run_id: str
    pipeline_name: str
    success: bool
    outputs: dict[str, Any]
    step_results: dict[str, StepResult]
    duration_seconds: float
    started_at: str = ""
    finished_at: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None
    git_commit: str | None = None
    run_dir: str | None = None
    # output name -> the step that declares it (for error messages)
    producers: dict[str, str] = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> Any:
        if name in self.outputs:
            return self.outputs[name]
        known = ", ".join(repr(n) for n in self.outputs) or "none"
        producer = self.producers.get(name)
        if producer is not None:
            status = self.step_results[producer].status
            raise KeyError(
                f"output {name!r} was not produced: its step {producer!r} is {status}; "
                f"outputs produced: {known}"
            )
        raise KeyError(f"no output named {name!r}; outputs produced: {known}")

    def __contains__(self, name: object) -> bool:
        return name in self.outputs

    @property
    def failed_steps(self) -> list[str]:
        return [n for n, r in self.step_results.items() if r.status == FAILED]

    def to_dict(self, *, outputs: bool = True) -> dict[str, Any]:
        """JSON-serialisable.  Output values that are not plain JSON appear
        as their repr (the values themselves are in `run_dir`/outputs);
        `outputs=False` leaves the "outputs" key out."""
        data = {
            "run_id": self.run_id,
            "pipeline_name": self.pipeline_name,
            "success": self.success,
            "duration_seconds": self.duration_seconds,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "context": {k: _json_value(v) for k, v in self.context.items()},
            "resumed_from": self.resumed_from,
            "git_commit": self.git_commit,
            "run_dir": self.run_dir,
            "step_results": {n: r.to_dict() for n, r in self.step_results.items()},
        }
        if outputs:
            data["outputs"] = {k: _json_value(v) for k, v in self.outputs.items()}
        return data

    def summary(self) -> str:
        """A table: one row per step, in the order the steps were run."""
        verdict = "succeeded" if self.success else "failed"
        head = f"pipeline {self.pipeline_name!r} {verdict} in {self.duration_seconds:.2f}s (run {self.run_id})"
        if self.resumed_from:
            head += f", resumed from {self.resumed_from}"
        rows = [("step", "status", "attempts", "duration", "note")]
        for r in self.step_results.values():
            rows.append((r.name, r.status, str(r.attempts), f"{r.duration_seconds:.2f}s", _note(r)))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [head]
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
            lines.append("  " + "  ".join(cells).rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _note(r: StepResult) -> str:
    notes = []
    if r.reused:
        notes.append("reused")
    if r.fallback_used:
        notes.append("fallback used")
    if r.reason:
        notes.append(r.reason[:120])
    if r.error:
        notes.append(" ".join(r.error.split())[:120])
    return "; ".join(notes)
