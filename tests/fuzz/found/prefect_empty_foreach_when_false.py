"""Found by the differential fuzzer: a foreach step over an empty list
whose `when` predicate is false.  The local run (and Airflow) evaluate the
predicate once and skip the step; on Prefect the empty fan-out runs no task,
the predicate is never evaluated, and the step is reported succeeded."""

from pipec import Pipeline, context, on_failure, step, when

ctx = context(items=[])


def fallback(items):
    return None


@step(foreach="items")
@on_failure(fallback)
@when(lambda items: items)
def each(items):
    raise ValueError("each fails")


pipeline = Pipeline("prefect_empty_foreach_when_false", context=ctx)
pipeline.add_step(each)
