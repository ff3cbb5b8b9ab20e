"""Found by the differential fuzzer: a run-time context value holding a
NUL character (here a dict key), in a value that travels as JSON text.  The
local run passes it to the gate and the step; on kfp.local the run stops
before the gate of the step that reads it runs."""

from pipec import Pipeline, context, step, when

ctx = context(rows=[{}, None])

# The run's context overrides (read by tests/test_fuzz.py).
RUN_OVERRIDES = {"rows": [{"\x00": 0}, None]}


@step(outputs=["same"])
@when(lambda rows: not rows)
def gated(rows):
    return rows


@step(outputs=["echo"])
def echo(rows):
    return rows


pipeline = Pipeline("kubeflow_nul_in_override", context=ctx)
pipeline.add_step(gated).add_step(echo)
