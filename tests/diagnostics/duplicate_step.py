from pipec import Pipeline, step


@step(outputs=["a"])
def make():
    return 1


@step(name="make", outputs=["b"])
def make_again():
    return 2


pipeline = Pipeline("dupes")
pipeline.add_step(make)
pipeline.add_step(make_again)  # E: PC104
