"""Found by the differential fuzzer: a context list of dicts reaches the
step on KFP with its dict keys re-ordered and an integer beyond 2**53 turned
into a float (the local run and the other targets keep both)."""

from pipec import Pipeline, context, step

ctx = context(rows=[{"b": 1, "a": 9007199254740993}])


@step(outputs=["same"])
def echo(rows):
    return rows


pipeline = Pipeline("kubeflow_context_struct", context=ctx)
pipeline.add_step(echo)
