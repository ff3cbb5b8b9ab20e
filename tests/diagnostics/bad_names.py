from pipec import Pipeline, step


@step(outputs=["ok", "not-ok"])  # E: PC202
def make():
    return 1, 2


@step(name="class", outputs=["x"])  # E: PC202
def named():
    return 1


pipeline = Pipeline("../escape", context={"a b": 1, "fine": 2})  # E: PC304 PC307
pipeline.add_step(make).add_step(named)
