from pipec import Pipeline, step


@step(outputs=["data"])
def one():
    return 1


@step(outputs=["data", "other"])  # E: PC102
def two():
    return 2, 3


pipeline = Pipeline("twice")
pipeline.add_step(one).add_step(two)
