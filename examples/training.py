"""Train a tiny classifier and register it when it is good enough.

Standard library only: the "model" is a threshold on one feature.
"""

import random
import statistics

from pipec import Pipeline, context, step, when

ctx = context(n_samples=200, test_size=0.25, seed=7, threshold=0.8)

NOISE = 0.1


def _label(x: float, rng: random.Random) -> int:
    label = 1 if x > 0.5 else 0
    return 1 - label if rng.random() < NOISE else label


@step(outputs=["raw"])
def load(n_samples: int, seed: int) -> list:
    rng = random.Random(seed)
    rows = []
    for _ in range(n_samples):
        x = round(rng.random(), 4)
        rows.append([x, _label(x, rng)])
    return rows


@step(inputs=["raw"], outputs=["X_train", "X_test", "y_train", "y_test"])
def split(raw: list, test_size: float):
    cut = int(len(raw) * (1 - test_size))
    train, test = raw[:cut], raw[cut:]
    return {
        "X_train": [r[0] for r in train],
        "X_test": [r[0] for r in test],
        "y_train": [r[1] for r in train],
        "y_test": [r[1] for r in test],
    }


@step(inputs=["X_train", "y_train"], outputs=["model"], retries=2, retry_delay=1, timeout=600)
def train(X_train: list, y_train: list) -> dict:
    positives = [x for x, y in zip(X_train, y_train) if y == 1]
    negatives = [x for x, y in zip(X_train, y_train) if y == 0]
    cut = (statistics.mean(positives) + statistics.mean(negatives)) / 2
    return {"kind": "threshold", "cut": round(cut, 6)}


@step(inputs=["model", "X_test", "y_test"], outputs=["accuracy"])
def evaluate(model: dict, X_test: list, y_test: list) -> float:
    hits = sum(1 for x, y in zip(X_test, y_test) if (1 if x > model["cut"] else 0) == y)
    return round(hits / len(y_test), 6)


@step(inputs=["model", "accuracy"], outputs=["registered"])
@when(lambda accuracy, threshold: accuracy >= threshold)
def register(model: dict, accuracy: float) -> str:
    return f"threshold-model cut={model['cut']} accuracy={accuracy}"


pipeline = Pipeline(
    "ml_training",
    context=ctx,
    schedule="0 3 * * *",
    description="Nightly training",
    owner="ml-team",
    tags=["ml"],
)
pipeline.add_step(load).add_step(split).add_step(train).add_step(evaluate).add_step(register)
