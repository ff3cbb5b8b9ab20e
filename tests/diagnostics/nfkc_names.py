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
