"""The language's static forms beyond one `add_step` per statement: steps
added in a loop over a literal tuple or list (unrolled at compile time), and
parameters wired to outputs of other names (`inputs` as a dict)."""

from pipec import Pipeline, context, step


@step(outputs=["raw"])
def load(size: int):
    return list(range(size))


@step(outputs=["cleaned"])
def clean(raw):
    return [x for x in raw if x % 3]


@step(outputs=["model"])
def train(cleaned):
    return {"n": len(cleaned), "total": sum(cleaned)}


@step(outputs=["report"])
def report(model, cleaned):
    return f"{model['n']} rows, mean {model['total'] / model['n']:.2f}"


# `rows` and `fitted` name no output: the dict wires them to outputs of
# other names; `size` is not wired, so it binds to the context key.
@step(inputs={"rows": "cleaned", "fitted": "model"}, outputs=["summary"])
def summarize(rows, fitted, size, label="summary"):
    return {"label": label, "kept": len(rows), "of": size, "n": fitted["n"]}


pipeline = Pipeline("language", context=context(size=10))
for s in (load, clean):
    pipeline.add_step(s)
for s in [train, report]:
    pipeline.add_step(s)
pipeline.add_step(summarize)
