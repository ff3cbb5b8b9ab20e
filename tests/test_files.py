"""File outputs (`files=`) and metrics (`metrics=`): what the IR holds, the
local run's semantics (a relative path, a stored copy that a later edit does
not change, `--resume`, clear failures), and what KFP declares and writes.
The differential comparison on every target is the matrix's `files`
scenarios."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

import matrix
from pipec.frontend import load
from runner_util import run_source

SCENARIO = next(s for s in matrix.SCENARIOS if s.id == "files")

WRITER = """
import os

ctx = context(text="one", state=".")


@step(outputs=["out", "stats"], files=["out"], metrics=["stats"])
def write(text: str):
    os.makedirs("work", exist_ok=True)
    with open(os.path.join("work", "a.txt"), "w") as f:
        f.write(text)
    return "work", {"chars": len(text)}


@step(outputs=["seen"])
def read(out: str) -> list:
    with open(os.path.join(out, "a.txt")) as f:
        return [os.path.basename(out), os.path.isdir(out), f.read()]


p = Pipeline("p", context=ctx)
p.add_step(write).add_step(read)
"""


def test_the_ir_holds_file_types_and_metrics_in_output_order():
    pipeline = next(p for p in load(SCENARIO.file).module.pipelines if p.name == "files")
    assert pipeline.step("train").files == (("model", "Model"), ("report", "Artifact"))
    assert pipeline.step("export").files == (("dataset", "Artifact"),)
    assert pipeline.step("evaluate").metrics == ("scores",)
    assert pipeline.step("read").files == () and pipeline.step("read").metrics == ()


def test_add_step_overrides_files_and_metrics(tmp_path):
    result = run_source(tmp_path, WRITER.replace(
        "p.add_step(write).add_step(read)",
        'p.add_step(write, files={"out": "Dataset"}, metrics=[]).add_step(read)'), store=tmp_path / "s")
    assert result.success
    from pipec.runner.plan import compile_pipeline

    pipeline, _ = compile_pipeline("p", next(tmp_path.glob("flow_*.py")))
    assert pipeline.step("write").files == (("out", "Dataset"),) and pipeline.step("write").metrics == ()


def test_local_run_stores_a_copy_that_later_edits_do_not_change(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = run_source(tmp_path, WRITER, store=tmp_path / "s")
    assert first.success and first["seen"] == ["work", True, "one"]
    stored = Path(first["out"])
    assert stored.is_dir() and stored.name == "work" and Path(first.run_dir) in stored.parents
    (tmp_path / "work" / "a.txt").write_text("edited")  # the working copy, not the stored one
    assert (stored / "a.txt").read_text() == "one"
    assert first["stats"] == {"chars": 3}


def test_resume_reuses_the_stored_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = WRITER.replace("with open(os.path.join(out", "assert state != 'fail'\n    with open(os.path.join(out")
    source = source.replace("def read(out: str)", "def read(out: str, state: str)")
    failed = run_source(tmp_path, source, store=tmp_path / "s", context={"state": "fail"})
    assert not failed.success and failed.step_results["read"].status == "failed"
    (tmp_path / "work").rename(tmp_path / "gone")  # the producer's working files are gone
    resumed = run_source(tmp_path, source, store=tmp_path / "s", resume=failed.run_id, context={"state": "ok"})
    assert resumed.success and resumed.step_results["write"].reused
    assert resumed["seen"] == ["work", True, "one"]


@pytest.mark.parametrize("returned, message", [
    ('"nowhere.txt"', "names no file or directory"),
    ("42", "must return the path of a file or directory (a str or os.PathLike), not a int"),
])
def test_a_bad_file_output_fails_the_step_with_a_clear_message(tmp_path, monkeypatch, returned, message):
    monkeypatch.chdir(tmp_path)
    source = WRITER.replace('return "work", {"chars": len(text)}', f'return {returned}, {{"chars": 1}}')
    result = run_source(tmp_path, source, store=tmp_path / "s")
    assert result.step_results["write"].status == "failed"
    assert message in result.step_results["write"].error and "'out' of step 'write'" in result.step_results["write"].error


def test_metrics_that_are_no_dict_of_numbers_fail_the_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = WRITER.replace('{"chars": len(text)}', '{"chars": "three"}')
    result = run_source(tmp_path, source, store=tmp_path / "s")
    error = result.step_results["write"].error
    assert "output 'stats' of step 'write' holds metrics: it must be a dict of str -> int or float" in error


def test_kfp_declares_typed_artifacts():
    import targets_kubeflow

    _, text = targets_kubeflow.compile_scenario(SCENARIO)
    spec = yaml.safe_load(text)
    comps = spec["components"]
    train = comps["comp-train"]["outputDefinitions"]["artifacts"]
    assert train["model"]["artifactType"]["schemaTitle"] == "system.Model"
    assert train["report"]["artifactType"]["schemaTitle"] == "system.Artifact"
    evaluate = comps["comp-evaluate"]
    assert evaluate["outputDefinitions"]["artifacts"]["scores_metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert evaluate["inputDefinitions"]["artifacts"]["model"]["artifactType"]["schemaTitle"] == "system.Model"
    # `-> str` of a step whose output is a file stays an artifact, not a STRING parameter
    assert "parameters" not in comps["comp-export"].get("outputDefinitions", {})


@pytest.mark.slow
def test_kfp_local_writes_metrics_metadata_and_the_files(tmp_path):
    import targets_kubeflow

    outcome = targets_kubeflow.run(SCENARIO, tmp_path)
    assert outcome.success
    (run,) = [p for p in (tmp_path / "pipeline_root").iterdir() if p.is_dir()]
    output = json.loads((run / "evaluate" / "executor_output.json").read_text())
    metadata = output["artifacts"]["scores_metrics"]["artifacts"][0]["metadata"]
    assert metadata == {"accuracy": 1.0, "loss": 0.25, "weights": 3.0}
    model = run / "train" / "model"  # the directory itself is the Model artifact
    assert sorted(os.listdir(model)) == ["config.json", "weights"]
    assert (model / "weights" / "w2.txt").read_text() == "4"
