import os

from pipec import Pipeline, on_failure, step, when

RETRIES = int(os.environ.get("RETRIES", "2"))


@step(outputs=["a"], retries=RETRIES)  # E: PC210
def make():
    return 1


@step(outputs=["b"], image=f"python:{os.name}")  # E: PC210
@when(os.path.exists)  # E: PC210
@on_failure(print)  # E: PC210
def other():
    return 2


pipeline = Pipeline("dynamic")
pipeline.add_step(make).add_step(other)
