"""Found by the differential fuzzer: a context string holding a NUL
character; the local run hands it to the foreach step, kfp.local never runs
the step's iterations."""

from pipec import Pipeline, context, step

ctx = context(items=["a\x00b"])


@step(outputs=["echo"], foreach="items")
def each(items):
    return items


pipeline = Pipeline("kubeflow_nul_in_context", context=ctx)
pipeline.add_step(each)
