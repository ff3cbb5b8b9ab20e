"""What a step's code carries: imports, constants, classes and helpers it
uses (transitively, in source order), never what it does not use."""

import json
import os.path
from collections import OrderedDict as ODict
from functools import lru_cache

from pipec import Pipeline, context, on_failure, step

try:
    import tomllib as toml_reader
except ImportError:  # pragma: no cover
    toml_reader = None

UNUSED = "never carried"
BASE = 2
POWERS = [BASE ** i for i in range(4)]
LABEL = "pow" "ers"  # implicit concatenation


class Record:
    def __init__(self, values):
        self.values = ODict((str(i), v) for i, v in enumerate(values))

    def dump(self) -> str:
        return json.dumps(self.values)


def _unused_helper():
    return UNUSED


@lru_cache(maxsize=None)
def weight(i: int) -> int:
    return POWERS[i % len(POWERS)]


def build(values: list) -> Record:
    return Record([v * weight(i) for i, v in enumerate(values)])


def safe_default(values: list, where: str = os.path.join("a", "b")) -> str:
    return "{}"


@step(outputs=["values"])
def numbers(n: int, start: int = -1) -> list:
    return list(range(start, start + n))


@step(outputs=["encoded"])
@on_failure(safe_default)
def encode(values: list, where: str = os.path.join("out", LABEL)) -> str:
    loader = toml_reader
    return build(values).dump() + where + str(loader is None)


pipeline = Pipeline("closure", context=context(n=3))
pipeline.add_step(numbers).add_step(encode)
