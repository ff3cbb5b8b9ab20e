from pipec import Pipeline, retry, step


@retry(max_attempts=2)  # E: PC209
@step(outputs=["a"])
def make():
    return 1


class Holder:
    @step(outputs=["b"])  # E: PC208
    def method(self):
        return 2


def factory():
    @step  # E: PC208
    def inner():
        return 3

    return inner


pipeline = Pipeline("placement")
pipeline.add_step(make)
