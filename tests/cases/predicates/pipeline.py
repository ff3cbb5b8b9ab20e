"""when (lambda and function), on_failure, @retry in any order, foreach."""

from pipec import Pipeline, context, on_failure, retry, step, when

ctx = context(threshold=0.5, region=["eu", "us"], enabled=True)

MINIMUM = 1


def has_rows(rows, enabled):
    return enabled and len(rows) >= MINIMUM


def empty_rows(region):
    return []


@step(outputs=["rows"], foreach="region")
@retry(max_attempts=4, delay=0.5)
@on_failure(empty_rows)
def fetch(region: str) -> list:
    return [region]


@step(inputs=["rows"], outputs=["score"])
@when(has_rows)
@retry(backoff=3)
def score(rows) -> float:
    return float(len(rows))


@step(outputs=["flag"], retries=1)
@when(lambda score, threshold: (
    score
    >= threshold
))
def gate(score: float) -> bool:
    return score > 0


@step(inputs=["rows"], outputs=["lengths"], foreach="rows")
def measure(rows) -> int:
    return len(rows)


pipeline = Pipeline("predicates", context=ctx)
pipeline.add_step(gate).add_step(measure).add_step(score).add_step(fetch)
