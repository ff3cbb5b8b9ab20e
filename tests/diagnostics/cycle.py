from pipec import Pipeline, step


@step(inputs=["c"], outputs=["a"])
def first(c):
    return c


@step(inputs=["a"], outputs=["b"])
def second(a):
    return a


@step(inputs=["b"], outputs=["c"])
def third(b):
    return b


@step(outputs=["d"])
def fine():
    return 1


pipeline = Pipeline("cyclic")
pipeline.add_step(fine).add_step(second)  # E: PC101
pipeline.add_step(third).add_step(first)
