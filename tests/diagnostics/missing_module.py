from pipec import Pipeline, step

from ..outside import thing  # E: PC003
from no_such_pkg import other


@step(outputs=["a"])
def make():
    return thing() + other()


pipeline = Pipeline("missing")
pipeline.add_step(make)
