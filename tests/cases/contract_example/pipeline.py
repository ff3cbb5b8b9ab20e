"""The example of CONTRACT §1."""

from pipec import Pipeline, context, on_failure, retry, step, when

ctx = context(data_path="data/train.csv", test_size=0.2, threshold=0.8)


@step(outputs=["raw"])
def load(data_path: str) -> list:
    return [[float(i), i % 2] for i in range(10)]


@step(inputs=["raw"], outputs=["X_train", "X_test", "y_train", "y_test"])
def split(raw, test_size: float):
    cut = int(len(raw) * (1 - test_size))
    return [r[0] for r in raw[:cut]], [r[0] for r in raw[cut:]], [r[1] for r in raw[:cut]], [r[1] for r in raw[cut:]]


@step(inputs=["X_train", "y_train"], outputs=["model"],
      retries=2, retry_delay=5, retry_backoff=2.0, timeout=600,
      cpu="2", memory="4Gi", gpu=0, image="python:3.11-slim",
      packages=["scikit-learn>=1.3"], cache=True)
def train(X_train, y_train, n_estimators: int = 100):
    return {"n": n_estimators, "size": len(X_train)}


@step(inputs=["model", "X_test", "y_test"], outputs=["accuracy"])
def evaluate(model, X_test, y_test) -> float:
    return 0.9


@step(inputs=["model", "accuracy"])
@when(lambda accuracy, threshold: accuracy >= threshold)
def register(model, accuracy):
    return None


pipeline = Pipeline("ml_training", context=ctx, schedule="0 3 * * *",
                    description="Nightly training", owner="ml-team", tags=["ml"])
pipeline.add_step(load).add_step(split).add_step(train).add_step(evaluate).add_step(register)
