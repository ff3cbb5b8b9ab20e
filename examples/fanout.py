"""Fan-out: one step per element of a list, then a step over all results."""

from pipec import Pipeline, context, step

ctx = context(model=["mean", "median", "midrange"], values=[3, 1, 4, 1, 5, 9, 2, 6], shard_count=3)


@step(outputs=["data"])
def prepare(values: list) -> list:
    return list(values)


# foreach="model": the context list `model` is fanned out; each run of `fit`
# gets one element of it as its `model` parameter.
@step(inputs=["data"], outputs=["scores"], foreach="model")
def fit(model: str, data: list) -> float:
    if model == "mean":
        center = sum(data) / len(data)
    elif model == "median":
        ordered = sorted(data)
        mid = len(ordered) // 2
        center = (ordered[mid - 1] + ordered[mid]) / 2 if len(ordered) % 2 == 0 else ordered[mid]
    else:
        center = (min(data) + max(data)) / 2
    return round(sum(abs(x - center) for x in data) / len(data), 6)


@step(inputs=["scores"], outputs=["best_model", "best_score"])
def pick_best(model: list, scores: list):
    best = min(range(len(scores)), key=lambda i: (scores[i], i))
    return model[best], scores[best]


selection = Pipeline("model_selection", context=ctx, description="Fit every model type, keep the best")
selection.add_step(prepare).add_step(fit).add_step(pick_best)


@step(outputs=["shards"])
def make_shards(values: list, shard_count: int) -> list:
    return [values[i::shard_count] for i in range(shard_count)]


# foreach="shards": one run per element of the upstream list `shards`.
@step(inputs=["shards"], outputs=["shard_sums", "shard_sizes"], foreach="shards")
def summarize(shards: list):
    return sum(shards), len(shards)


@step(inputs=["shard_sums", "shard_sizes"], outputs=["total", "count"])
def combine(shard_sums: list, shard_sizes: list):
    return sum(shard_sums), sum(shard_sizes)


shards = Pipeline("shard_processing", context=ctx, description="Fan out over an upstream list")
shards.add_step(make_shards).add_step(summarize).add_step(combine)
