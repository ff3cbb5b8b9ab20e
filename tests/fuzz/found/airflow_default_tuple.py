"""Found by the differential fuzzer: a parameter default that JSON cannot
carry exactly (a tuple) reaches the step as a list on Airflow."""

from pipec import Pipeline, step


@step(outputs=["out"])
def make(pair=(1, "a")):
    return pair


pipeline = Pipeline("airflow_default_tuple")
pipeline.add_step(make)
