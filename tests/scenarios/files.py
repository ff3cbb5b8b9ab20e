"""Files, directories and metrics on every target: `train` writes a
directory of several files (a Model) and a single file, `export` returns a
path as a `pathlib.Path`, `read` gets local copies and returns their names
and contents (so the comparison checks contents, not paths), `evaluate`
reports metrics that stay an ordinary output for `summarize`.  With
`broken`, `export` returns a path that names nothing and fails.  With
`backup_broken`, so does `backup`, whose fallback's file is then its output
(a bad file output is a failed attempt, as an exception is)."""

import json
import os
import pathlib
import tempfile

from pipec import Pipeline, context, on_failure, step

ctx = context(rows=3, note="hello", broken=False, backup_broken=False)


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


def write_backup(backup_broken: bool):
    path = pathlib.Path(tempfile.mkdtemp()) / "backup.txt"
    path.write_text("from the fallback")
    return path


@step(outputs=["backup"], files=["backup"])
@on_failure(write_backup)
def backup(backup_broken: bool):
    path = pathlib.Path(tempfile.mkdtemp()) / "backup.txt"
    path.write_text("from the step")
    return path.with_suffix(".missing") if backup_broken else path


@step(outputs=["backup_text"])
def read_backup(backup: str) -> str:
    with open(backup) as f:
        return f.read()


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
pipeline.add_step(backup).add_step(read_backup)
