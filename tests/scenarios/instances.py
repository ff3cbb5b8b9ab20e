"""Step instances and the fan-out forms: one function added several times
under different names, each with its own bindings (an upstream output of any
name, a literal per parameter) and outputs; explicit wiring through
add_step; `foreach` over a literal list, given at the step or by @step; and
`foreach_key` over a field of each element of an upstream list of dicts."""

from pipec import Pipeline, context, step


@step(outputs=["sum"])
def add(a: int, b: int) -> int:
    return a + b


@step(outputs=["raw_rows"])
def load(size: int):
    return [{"id": i, "score": i * 10} for i in range(size)]


@step(outputs=["kept"])
def keep(df):
    return [row for row in df if row["score"] > 0]


@step(outputs=["squares"], foreach="x", params={"x": [1, 2, 3]})
def square(x):
    return x * x


@step(outputs=["shifted"])
def shift(value, by=1):
    return value + by


@step(outputs=["report"])
def report(total, squares, scores, cubes, picked_scores):
    return {
        "total": total,
        "squares": squares,
        "scores": scores,
        "cubes": cubes,
        "picked": picked_scores,
    }


pipeline = Pipeline("instances", context=context(size=4, b=100))
# Literals for both parameters (`b` also names a context key: the literal wins).
pipeline.add_step(add, name="first", params={"a": 1, "b": 2}, outputs=["s1"])
# An upstream output of another name, and a literal.
pipeline.add_step(add, name="second", inputs={"a": "s1"}, params={"b": 3}, outputs=["s2"], retries=1)
# `b` unbound here: the context key.
pipeline.add_step(add, name="third", inputs={"a": "s2"}, outputs=["total"])
# A single-use step wired explicitly where it is added.
pipeline.add_step(load)
pipeline.add_step(keep, inputs={"df": "raw_rows"})
# The decorator's literal list.
pipeline.add_step(square)
# A literal list given where the step is added; another function's instance.
pipeline.add_step(square, name="cube_base", params={"x": [2, 4]}, outputs=["cubes"])
# One field of each element of an upstream list of dicts.
pipeline.add_step(shift, name="scores", foreach="value", inputs={"value": "kept"}, foreach_key="score", params={"by": 5}, outputs=["scores"])
pipeline.add_step(shift, name="picked", foreach="value", inputs={"value": "raw_rows"}, foreach_key="id", outputs=["picked_scores"])
pipeline.add_step(report)


@step(outputs=["halved"], foreach="row", foreach_key="weight")
def halve(row):
    return row / 2


@step(outputs=["after"])
def after_halve(halved):
    return len(halved)


# An element without the key fails the step, as a value that is no list
# does; its consumer is then upstream_failed.
missing_key = Pipeline("missing_key")
missing_key.add_step(load, params={"size": 2})
missing_key.add_step(halve, inputs={"row": "raw_rows"})
missing_key.add_step(after_halve)
