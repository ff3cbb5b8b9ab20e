"""A pipeline module inside a package: relative and absolute imports."""

from pipec import Pipeline, context, step

from pkg.sub import helpers
from .helpers import FACTOR


@step(outputs=["tripled"])
def triple(n: int) -> int:
    return n * FACTOR * helpers.FACTOR // 3


first = Pipeline("first", context=context(n=2)).add_step(triple)
second = Pipeline("second", context=context(n=5)).add_step(triple)
alias = first
