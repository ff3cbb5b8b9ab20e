"""The local runner: runs a pipeline's IR in-process (CONTRACT §2).

    from pipec.runner import run_pipeline
    result = run_pipeline(pipeline, context={"threshold": 0.9}, progress=ConsolePrinter())

Modules: `plan` (the IR to run, context overrides, skip propagation),
`execute` (attempts, timeouts, fallback, foreach, exits), `outputs` (return
value → outputs, shared with the targets), `cache` (step keys), `store`
(`.pipec/` records and outputs), `result`, `events` and `console` (progress).
"""

from pipec.runner.console import ConsolePrinter
from pipec.runner.events import Event
from pipec.runner.outputs import normalize_outputs
from pipec.runner.plan import PipelineError
from pipec.runner.result import PipelineResult, StepResult
from pipec.runner.run import run_pipeline

__all__ = [
    "ConsolePrinter", "Event", "PipelineError", "PipelineResult", "StepResult", "normalize_outputs",
    "run_pipeline",
]
