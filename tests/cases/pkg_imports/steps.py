"""Steps shared by the pipelines of this package."""

from pipec import step

from . import helpers
from .helpers import scale as scaled
from .shared import describe as summary_text


@step(outputs=["values"])
def make(size: int) -> list:
    return list(range(size))


@step(outputs=["scaled"])
def grow(values: list) -> list:
    return scaled(values) + helpers.scale([1])


@step(outputs=["report"])
def report(scaled: list) -> str:
    return summary_text(scaled)
