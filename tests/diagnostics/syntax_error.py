from pipec import Pipeline, step


@step(outputs=["x"])
def broken(:  # E: PC001
    return 1
