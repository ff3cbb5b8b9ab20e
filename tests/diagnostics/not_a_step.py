from pipec import Pipeline, step


def plain():
    return 1


@step(outputs=["a"])
def real():
    return 2


pipeline = Pipeline("plain")
pipeline.add_step(real).add_step(plain)  # E: PC211
