from pipec import Pipeline, step


@step(outputs=["a"])
def load(n: int = 1) -> Resultt:  # E: PC405
    local: NotEvaluated = n  # a local variable's annotation is never evaluated
    return local


pipeline = Pipeline("annotations").add_step(load)
