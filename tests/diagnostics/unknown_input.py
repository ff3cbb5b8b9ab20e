from pipec import Pipeline, step


@step(outputs=["X_train"])
def load():
    return [1]


@step(inputs=["X_tran"], outputs=["model"])  # E: PC103
def train(X_tran):
    return X_tran


pipeline = Pipeline("typo")
pipeline.add_step(load).add_step(train)
