"""Files, directories and metrics on every target: `train` writes a
directory of several files (a Model) and a single file, `export` returns a
path as a `pathlib.Path`, `read` gets local copies and returns their names
and contents (so the comparison checks contents, not paths), `evaluate`
reports metrics that stay an ordinary output for `summarize`.  With
`broken`, `export` returns a path that names nothing and fails."""

import json
import os
import pathlib
import tempfile

from pipec import Pipeline, context, step

ctx = context(rows=3, note="hello", broken=False)


@step(outputs=["model", "report"], files={"model": "Model", "report": "Artifact"})
def train(rows: int, note: str):
    folder = tempfile.mkdtemp()
    model = os.path.join(folder, "model_out")
    os.makedirs(os.path.join(model, "weights"))
    for i in range(rows):
        with open(os.path.join(model, "weights", f"w{i}.txt"), "w") as f:
            f.write(str(i * i))
    with open(os.path.join(model, "config.json"), "w") as f:
        json.dump({"rows": rows}, f)
    report = os.path.join(folder, "report.txt")
    with open(report, "w") as f:
        f.write(note)
    return model, report


@step(outputs=["dataset"], files=["dataset"])
def export(rows: int, broken: bool):
    path = pathlib.Path(tempfile.mkdtemp()) / "data.csv"
    path.write_text("".join(f"{i},{i * i}\n" for i in range(rows)))
    return path.with_suffix(".missing") if broken else path


def listing(folder):
    out = {}
    for base, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(base, name)
            with open(path) as f:
                out[os.path.relpath(path, folder).replace(os.sep, "/")] = f.read()
    return dict(sorted(out.items()))


@step(outputs=["contents"])
def read(model: str, report: str, dataset: str) -> dict:
    with open(report) as f:
        text = f.read()
    with open(dataset) as f:
        rows = f.read().splitlines()
    return {
        "model": [os.path.basename(model), os.path.isdir(model), listing(model)],
        "report": [os.path.basename(report), os.path.isfile(report), text],
        "dataset": [os.path.basename(dataset), rows],
    }


@step(outputs=["scores"], metrics=["scores"])
def evaluate(model: str, rows: int) -> dict:
    count = len(os.listdir(os.path.join(model, "weights")))
    return {"accuracy": count / rows, "loss": 0.25, "weights": count}


@step(outputs=["summary"])
def summarize(scores: dict) -> str:
    return f"accuracy {scores['accuracy']:.2f} from {scores['weights']} weights"


pipeline = Pipeline("files", context=ctx)
pipeline.add_step(train).add_step(export).add_step(read).add_step(evaluate).add_step(summarize)
