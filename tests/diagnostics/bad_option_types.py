from pipec import Pipeline, retry, step


@step(
    outputs=["a"],
    timeout="ten minutes",  # E: PC202
    retries=-1,  # E: PC202
    retry_backoff=0.5,  # E: PC202
    cache="yes",  # E: PC202
    outputs_are_fine=None,  # E: PC201
)
def make():
    return 1


@step(outputs="b")  # E: PC202
@retry(backoff=0.5, max_attempts=0)  # E: PC202
def other():
    return 2


pipeline = Pipeline("types")
pipeline.add_step(make).add_step(other)
