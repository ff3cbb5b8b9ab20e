"""The training pipeline with scikit-learn (needs `pip install scikit-learn`
to run locally; compiling needs nothing: pipec never imports it).

Each step declares the packages and image its task needs; compiled tasks
import scikit-learn inside the task, so the scheduler never does.
"""

from pipec import Pipeline, context, step, when

ctx = context(n_samples=500, test_size=0.2, seed=0, n_estimators=50, threshold=0.8)

SKLEARN = ["scikit-learn>=1.3"]
IMAGE = "python:3.11-slim"


@step(outputs=["X", "y"], packages=SKLEARN, image=IMAGE)
def make_data(n_samples: int, seed: int):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n_samples, n_features=8, random_state=seed)
    return X.tolist(), y.tolist()


@step(outputs=["X_train", "X_test", "y_train", "y_test"], packages=SKLEARN, image=IMAGE)
def split(X: list, y: list, test_size: float, seed: int):
    from sklearn.model_selection import train_test_split

    return tuple(train_test_split(X, y, test_size=test_size, random_state=seed))


@step(
    outputs=["model"],
    packages=SKLEARN,
    image=IMAGE,
    retries=2,
    retry_delay=5,
    retry_backoff=2.0,
    timeout=600,
    cpu="2",
    memory="4Gi",
)
def train(X_train: list, y_train: list, n_estimators: int, seed: int):
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=n_estimators, random_state=seed)
    return model.fit(X_train, y_train)


@step(outputs=["accuracy"], packages=SKLEARN, image=IMAGE)
def evaluate(model, X_test: list, y_test: list) -> float:
    return float(model.score(X_test, y_test))


@step(inputs=["model", "accuracy"], outputs=["model_path"], packages=SKLEARN, image=IMAGE)
@when(lambda accuracy, threshold: accuracy >= threshold)
def register(model, accuracy: float) -> str:
    import os
    import pickle
    import tempfile

    path = os.path.join(tempfile.gettempdir(), f"model-{accuracy:.3f}.pkl")
    with open(path, "wb") as f:
        pickle.dump(model, f)
    return path


pipeline = Pipeline(
    "sklearn_training",
    context=ctx,
    schedule="@weekly",
    description="Random forest on synthetic data",
    owner="ml-team",
    tags=["ml", "sklearn"],
)
pipeline.add_step(make_data).add_step(split).add_step(train).add_step(evaluate).add_step(register)
