from pipec import Pipeline, step


@step(outputs=["a"])
def make():
    return 1


pipeline = Pipeline("opts", shedule="@daily", tags="ml")  # E: PC303 PC304
pipeline.add_step(make)
