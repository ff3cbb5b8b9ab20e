from pipec import Pipeline, context, step


@step(outputs=["a"])
def make(size, scale=2, missing=None):
    return size * scale


@step(inputs=["a"])
def use(a, nothing):  # E: PC203
    return a


pipeline = Pipeline("unbound", context=context(size=3))
pipeline.add_step(make).add_step(use)
