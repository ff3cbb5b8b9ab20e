from pipec import Pipeline, context, step


@step(outputs=["model", "report"], files={"modle": "Model", "report": "Modle"})  # E: PC226 PC227
def train(data):
    return "model", "report.txt"


@step(outputs=["scores"], metrics=["score"])  # E: PC226
def evaluate(model):
    return {"accuracy": 1.0}


@step(outputs=["shards"], foreach="part", files=["shards"])  # E: PC228
def shard(part):
    return part


@step(outputs=["both"], files=["both"], metrics=["both"])  # E: PC229
def both():
    return "x"


@step(outputs=["page"], files={"page": "Text"})  # E: PC227
def page():
    return "page.html"


pipeline = Pipeline("files", context=context(data=1, part=[1, 2]))
pipeline.add_step(train).add_step(evaluate).add_step(shard).add_step(both).add_step(page)
pipeline.add_step(page, name="page2", outputs=["page2"], files=["pages"])  # E: PC226
