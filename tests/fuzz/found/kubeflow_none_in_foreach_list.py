"""Found by the differential fuzzer: a foreach over a context list that
holds None (such a list travels to KFP as JSON text); the local run runs the
step once per element, kfp.local never runs its iterations."""

from pipec import Pipeline, context, step

ctx = context(items=["x", None])


@step(outputs=["echo"], foreach="items")
def each(items):
    return items


pipeline = Pipeline("kubeflow_none_in_foreach_list", context=ctx)
pipeline.add_step(each)
