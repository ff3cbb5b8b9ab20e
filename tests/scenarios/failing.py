"""A step that fails: the run fails, its consumers do not run, an
independent branch still does."""

from pipec import Pipeline, context, step

ctx = context(divisor=0)


@step(outputs=["numbers"])
def numbers() -> list:
    return [1, 2, 3]


@step(inputs=["numbers"], outputs=["ratios"])
def divide(numbers: list, divisor: int) -> list:
    return [n / divisor for n in numbers]


@step(inputs=["ratios"], outputs=["ratio_sum"])
def total(ratios: list) -> float:
    return sum(ratios)


@step(inputs=["numbers"], outputs=["count"])
def count(numbers: list) -> int:
    return len(numbers)


pipeline = Pipeline("failing", context=ctx)
pipeline.add_step(numbers).add_step(count).add_step(divide).add_step(total)
