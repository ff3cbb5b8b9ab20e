from pipec import Pipeline, step


@step(outputs=["first"])
def load():
    return 1


@step(outputs=["second"])
def ｌｏａｄ():
    return 2


# Python reads `ｌｏａｄ` as `load`: both name the second function.
pipeline = Pipeline("same_name")
pipeline.add_step(load).add_step(ｌｏａｄ)  # E: PC104


@step(outputs=["ｘ"])  # E: PC202
def wide():
    return 3


@step(name="ｗｉｄｅ", outputs=["y"])  # E: PC202
def named():
    return 4


other = Pipeline("wide", context={"ｎ": 1})  # E: PC307
other.add_step(wide).add_step(named)
