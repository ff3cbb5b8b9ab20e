from math import *  # E: PC408

from pipec import Pipeline, step


@step(outputs=["a"])
def load():
    return sqrt(4)


pipeline = Pipeline("star").add_step(load)
