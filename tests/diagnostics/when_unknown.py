from pipec import Pipeline, context, step, when


@step(outputs=["accuracy"])
def evaluate():
    return 0.9


def ready(accuracy, treshold):  # E: PC204
    return accuracy > treshold


@step(inputs=["accuracy"])
@when(lambda acuracy, threshold: acuracy > threshold)  # E: PC204
def register(accuracy):
    return accuracy


@step(inputs=["accuracy"])
@when(ready)
def publish(accuracy):
    return accuracy


pipeline = Pipeline("gated", context=context(threshold=0.5))
pipeline.add_step(evaluate).add_step(register).add_step(publish)
