from pipec import Pipeline, step


@step(outputs=["a"])
def make():
    return 1


one = Pipeline("one", schedule="0 3 * *")  # E: PC302
one.add_step(make)
two = Pipeline("two", schedule="61 3 * * *")  # E: PC302
two.add_step(make)
three = Pipeline("three", schedule="@fortnightly")  # E: PC302
three.add_step(make)
four = Pipeline("four", schedule="@daily")
four.add_step(make)
