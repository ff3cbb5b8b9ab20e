from pipec import Pipeline, context, step


@step(outputs=["items"], foreach="itme")  # E: PC205
def explode(item):
    return item


@step(outputs=["sizes"], foreach="size")  # E: PC206
def measure(size):
    return size


@step(outputs=["other"], foreach="value")  # E: PC206
def default_value(value=3):
    return value


pipeline = Pipeline("fanout", context=context(item=[1, 2], size=4))
pipeline.add_step(explode).add_step(measure).add_step(default_value)
