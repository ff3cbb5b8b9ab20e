"""Companion of prefect_empty_foreach_failed_upstream: a foreach step over
an empty list that also takes the output of a skipped step.  The local run
reports it skipped (skips propagate); an empty `.map` creates no task, so
on Prefect the step succeeded."""

from pipec import Pipeline, context, step, when

ctx = context(items=[], go=False)


@step(outputs=["a"])
@when(lambda go: go)
def maybe():
    return 1


@step(foreach="items", outputs=["b"])
def each(a, items):
    return items


pipeline = Pipeline("prefect_empty_foreach_skipped_upstream", context=ctx)
pipeline.add_step(maybe).add_step(each)
