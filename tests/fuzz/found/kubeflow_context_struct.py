"""Found by the differential fuzzer: a context list of dicts reaches the
step on KFP with an integer beyond 2**53 rounded (it travels as a protobuf
double); given as a run-time override, the dicts' keys also come back sorted
and such an integer as a float.  The local run keeps the value exactly."""

from pipec import Pipeline, context, step

ctx = context(rows=[{"b": 1, "a": 9007199254740993}])


@step(outputs=["same"])
def echo(rows):
    return rows


pipeline = Pipeline("kubeflow_context_struct", context=ctx)
pipeline.add_step(echo)
