"""The language's static forms beyond one `add_step` per statement: steps
added in a loop over a literal tuple or list (unrolled at compile time)."""

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


pipeline = Pipeline("language", context=context(size=10))
for s in (load, clean):
    pipeline.add_step(s)
for s in [train, report]:
    pipeline.add_step(s)
