"""Ordering without data on every target: `notify` runs after `train`
without taking its output, and a skip or failure of `train` reaches it as
it reaches a consumer."""

from pipec import Pipeline, context, step, when

ctx = context(size=4, threshold=10)


@step(outputs=["rows"])
def load(size: int) -> list:
    if size < 0:
        raise ValueError(f"size {size} is negative")
    return list(range(size))


@step(outputs=["model"])
@when(lambda rows, threshold: sum(rows) < threshold)
def train(rows: list) -> int:
    return sum(rows)


@step(after=["load"], outputs=["note"])
def announce() -> str:
    return "loaded"


@step(after=["train", "announce"], outputs=["sent"])
def notify(note: str) -> str:
    return note + ", trained"


pipeline = Pipeline("after", context=ctx)
pipeline.add_step(load).add_step(train).add_step(announce).add_step(notify)
