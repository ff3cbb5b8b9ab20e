from pipec import Pipeline, step


def get_steps():
    return [make]


def name_from_function():
    return "dynamic"


@step(outputs=["a"])
def make():
    return 1


pipeline = Pipeline("loops")
for s in get_steps():
    pipeline.add_step(s)  # E: PC401
steps = [make]
pipeline.add_step(steps[0])  # E: PC401
other = Pipeline(name_from_function())  # E: PC401
other.add_step(make)


def build():
    return Pipeline("inside")  # E: PC401
