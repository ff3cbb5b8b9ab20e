from __future__ import annotations

import math

from pipec import Pipeline, context, on_failure, step, when

SCALE = 2


class Config:
    factor = 3
    doubled = [factor * 2]  # a class body reads its own names
    scaled = [x * factor for x in range(2)]  # E: PC405


def helper(values):
    total = 0

    def add(v):
        nonlocal total
        total += v

    for v in values:
        add(v)
    return total + undefined_in_helper  # E: PC405


def rescue(a):
    return fallback_missing  # E: PC405


@step(outputs=["a"])
def load(n: MissingType) -> Unknown:  # annotations are not evaluated
    squares = [i * i for i in range(n)]
    local: AlsoMissing = 1
    del local
    return sum(squares) + SCALE + math.floor(1.5) + helper([n]) + Config.factor


@step(outputs=["b"])
@on_failure(rescue)
@when(lambda a: a > treshold)  # E: PC405
def use(a):
    result = [lenght(x) for x in [a]]  # E: PC405
    return result + printt  # E: PC405


pipeline = Pipeline("undefined", context=context(n=3, threshold=1))
pipeline.add_step(load).add_step(use)
