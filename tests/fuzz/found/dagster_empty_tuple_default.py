"""Found by the differential fuzzer (seed 200): a tuple parameter default
(here the empty tuple; `({},)` too) reaches the step as a list in the local
run, the reference, and on Airflow, KFP and Prefect; the Dagster op keeps the
function's own default, a tuple, as Python does."""

from pipec import Pipeline, step


@step(outputs=["out"])
def make(pair=()):
    return pair


pipeline = Pipeline("dagster_empty_tuple_default")
pipeline.add_step(make)
