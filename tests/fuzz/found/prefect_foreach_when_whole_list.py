"""Found by the differential fuzzer: a foreach step's `when` reads the list
the step maps over.  The local run evaluates the predicate once, on the
whole list; Prefect evaluated it in each element's task, on the element."""

from pipec import Pipeline, context, step, when

ctx = context(items=[1, 2, 3])


@step(foreach="items", outputs=["doubled"])
@when(lambda items: isinstance(items, list) and len(items) == 3)
def double(items):
    return items * 2


pipeline = Pipeline("prefect_foreach_when_whole_list", context=ctx)
pipeline.add_step(double)
