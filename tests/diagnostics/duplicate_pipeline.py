from pipec import Pipeline, step


@step(outputs=["a"])
def make():
    return 1


one = Pipeline("same")
one.add_step(make)
two = Pipeline("same")  # E: PC305
two.add_step(make)
