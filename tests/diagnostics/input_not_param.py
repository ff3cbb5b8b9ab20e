from pipec import Pipeline, step


@step(outputs=["a", "b"])
def make():
    return 1, 2


@step(inputs=["a", "b"], outputs=["c"])  # E: PC207
def use(a):
    return a


pipeline = Pipeline("inputs")
pipeline.add_step(make).add_step(use)
