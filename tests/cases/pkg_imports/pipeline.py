"""Steps imported with relative and absolute imports; two pipelines."""

from pipec import Pipeline, step

from pkg_imports.steps import make
from .steps import grow, report
from .shared import ctx
import pkg_imports.steps as more


@step(outputs=["count"])
def count(values: list) -> int:
    return len(values)


full = Pipeline("full", context=ctx)
full.add_step(report).add_step(grow).add_step(make)
full.add_step(count)

small = Pipeline("small", context=ctx, enable_cache=False)
small.add_step(more.make).add_step(count)
