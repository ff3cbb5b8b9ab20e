from pipec import Pipeline, step

COUNTER = 0


def bump():
    global COUNTER  # E: PC404
    COUNTER += 1
    return COUNTER


@step(outputs=["a"])
def make():
    return bump()


pipeline = Pipeline("state")
pipeline.add_step(make)
