"""Found by the differential fuzzer (seed 2026, fz_2026_126): a foreach step
over an empty list that also takes the output of a step that failed.  The
local run reports it upstream_failed; on Prefect the empty `.map` creates
no task, so nothing waits for the failed step and the step succeeds."""

from pipec import Pipeline, context, step

ctx = context(items=[])


@step(outputs=["a"])
def broken():
    raise ValueError("broken fails")


@step(foreach="items", outputs=["b"])
def each(a, items):
    return items


pipeline = Pipeline("prefect_empty_foreach_failed_upstream", context=ctx)
pipeline.add_step(broken).add_step(each)
