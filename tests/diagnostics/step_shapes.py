from pipec import Pipeline, context, on_failure, retry, step, when


@step(outputs=["x", "x"])  # E: PC212
def twice():
    return 1, 2


@step(outputs=["a"], retries=2)
@retry(max_attempts=5)  # E: PC213
def retried():
    return 1


@step(outputs=["b"])
async def coroutine():  # E: PC214
    return 1


@step(outputs=["c"])
def generator():
    yield 1  # E: PC214


@step(outputs=["d", "e", "f"])
def short(a):
    if a:
        return a, a  # E: PC215
    return {"d": 1, "e": 2}  # E: PC215


@step(outputs=["g", "h"])
def fine(a):
    def inner():
        yield 1
        return 1, 2, 3

    parts = [a, a]
    return (*parts,)


@step(outputs=["i"])
@on_failure(own)  # E: PC216
def own(a):
    return a


def rescue(other):
    return 0


@step(outputs=["j"])
@on_failure(rescue)  # E: PC217
def rescued(a):
    return a


async def later(a):  # E: PC214
    return a


@step(outputs=["k"])
@when(later)
def gated(a):
    return a


@step(outputs=["l"])
@retry(3, max_attempts=4)  # E: PC308
def retried_twice():
    return 1


pipeline = Pipeline("shapes", name="other", context=context(a=1))  # E: PC308
pipeline.add_step(twice).add_step(retried).add_step(coroutine).add_step(generator)
pipeline.add_step(short).add_step(fine).add_step(own).add_step(rescued)
pipeline.add_step(gated).add_step(retried_twice)
