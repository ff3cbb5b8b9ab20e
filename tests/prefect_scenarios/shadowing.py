"""Step names that are builtins the Prefect runtime calls (and a dunder),
and positional-only step parameters: the flow must run as locally."""

from pipec import Pipeline, context, step

ctx = context(n=4)


@step(name="isinstance", outputs=["values"])
def make(n: int, /) -> list:
    return list(range(n))


@step(name="len", outputs=["size"])
def size(values):
    return len(values)


@step(name="getattr", outputs=["doubled"])
def doubled(values, /, factor: int = 2) -> list:
    return [v * factor for v in values]


@step(name="compile", outputs=["summary"])
def summary(size, doubled) -> dict:
    return {"size": size, "sum": sum(doubled)}


@step(name="__name__", outputs=["done"])
def finish(summary) -> bool:
    return summary["size"] == 4


shadowing = Pipeline("shadowing", context=ctx)
shadowing.add_step(make).add_step(size).add_step(doubled).add_step(summary).add_step(finish)
