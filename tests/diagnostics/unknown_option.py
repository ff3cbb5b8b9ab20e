from pipec import Pipeline, retry, step


@step(outputs=["a"], retires=3)  # E: PC201
@retry(max_attempt=2)  # E: PC201
def make():
    return 1


pipeline = Pipeline("options")
pipeline.add_step(make)
