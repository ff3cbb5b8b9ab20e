"""What a KFP backend refuses, found at compile time and reported at the
source: the pipeline name (`pipelineInfo.name`: `^[a-z0-9][a-z0-9-]{0,127}$`,
as the KFP SDK checks it), resource limits that are no Kubernetes quantity
(`cpu=float("inf")` would be written `inf`), and retry delays that are no
finite duration (KFP durations are whole seconds in an int64)."""

from __future__ import annotations

import math
import re

from pipec import ir
from pipec.diagnostics import Diagnostics

# A Kubernetes resource quantity (apimachinery's resource.Quantity).
_QUANTITY = re.compile(r"[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?")
PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
# The longest retry delay KFP is given (one year): a longer one never ends a run.
LONGEST_DELAY = 365 * 24 * 3600


def check(pipeline: ir.Pipeline, kfp_name: str, diagnostics: Diagnostics) -> None:
    """Report every KFP limit `pipeline` breaks (PC612)."""
    if not PIPELINE_NAME.fullmatch(kfp_name):
        detail = f"its KFP name '{kfp_name}' must match ^[a-z0-9][a-z0-9-]{{0,127}}$ (at most 128 characters)"
        diagnostics.add("PC612", pipeline.span, what=f"the name of pipeline '{pipeline.name}'", detail=detail)
    for step in pipeline.steps:
        for option, value in (("cpu", step.resources.cpu), ("memory", step.resources.memory)):
            if value is None:
                continue
            text = str(value)
            if not _QUANTITY.fullmatch(text) or not math.isfinite(float(re.sub(r"[a-zA-Z]+$", "", text) or 0)):
                detail = f"{text!r} is no Kubernetes quantity (like '2', '500m', '4Gi')"
                diagnostics.add("PC612", step.option_span(option), what=f"{option} of step '{step.name}'", detail=detail)
        retry = step.retry
        if not (math.isfinite(float(retry.delay)) and math.isfinite(float(retry.backoff))):
            detail = "a retry delay must be a finite number of seconds"
            diagnostics.add("PC612", step.option_span("retry_delay"), what=f"the retries of step '{step.name}'", detail=detail)


def longest_delay(retry: ir.RetryPolicy) -> int:
    """The longest delay between two attempts, in whole seconds, at most
    `LONGEST_DELAY` (no float overflow for any backoff)."""
    delay = float(retry.delay)
    for _ in range(max(retry.retries - 1, 0)):
        if delay >= LONGEST_DELAY:
            break
        delay *= float(retry.backoff)
    return int(min(delay, LONGEST_DELAY))


def duration(seconds: float) -> str:
    """A protobuf duration (`"5s"`, `"0.5s"`, never an exponent), at most
    `LONGEST_DELAY` seconds."""
    return f"{min(float(seconds), LONGEST_DELAY):.9f}".rstrip("0").rstrip(".") + "s"
