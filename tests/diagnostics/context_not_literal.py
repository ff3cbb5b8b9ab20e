import os

from pipec import Pipeline, context, step

ctx = context(
    home=os.environ["HOME"],  # E: PC301
    fine="yes",
    mixed=[1, len("ab")],  # E: PC301
)


@step(outputs=["a"])
def make(fine):
    return fine


pipeline = Pipeline("ctx", context=ctx)
pipeline.add_step(make)
