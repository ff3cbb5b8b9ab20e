"""Run a scenario's compiled KFP YAML for real with `kfp.local`
(`SubprocessRunner(use_venv=False)`), pipec made unimportable, and read back
what happened as a `matrix.Outcome`.

How outcomes are recovered (kfp.local returns nothing for a failed run):
every executed task leaves `<pipeline_root>/<run>/<task>/`; a task that
succeeded has `executor_output.json` there and its output artifacts as files
named after the outputs (written by the pipec runtime: JSON or pickle).  A
foreach step's element i runs in `<run>/<task>-iteration-<i>/<task>/`, and
its element count is the `Output` of its `<task>-items` task (`[-1]` for
an empty list: one iteration that runs nothing).  A step without
a folder did not run: `upstream_failed` when a step it consumes failed (or
did not run because of a failure), else `skipped`.  An output that travels
as a KFP parameter is read as its consumers read it: the raw artifact when
not empty, else the parameter (`executor_output.json`) with the declared
type restored.  A gated foreach step's tasks run inside its `<task>-if`
condition DAG; kfp.local still gives them folders at the run's top level.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from matrix import NO_PIPEC, Outcome, Scenario, file_value, no_pipec_env

from pipec.backends.base import CompileOptions
from pipec.backends.kubeflow import KubeflowBackend, _Names
from pipec.backends.kubeflow_program import context_type, parameter_kind
from pipec.diagnostics import Diagnostics
from pipec.frontend import load

RUNNER = textwrap.dedent("""
    import json, os, pickle, sys
    from kfp import local
    from kfp.components import load_component_from_file

    yaml_path, root, context_path, result_path = sys.argv[1:5]
    with open(context_path) as f:
        context = json.load(f)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root)
    pipeline = load_component_from_file(yaml_path)
    try:
        pipeline(**context)
        success = True
    except RuntimeError as exc:
        print("PIPELINE FAILED:", exc)
        success = str(exc)
    with open(result_path, "wb") as f:
        pickle.dump(success, f)
    """)


def compile_scenario(scenario: Scenario, settings: tuple = ()):
    """(pipeline IR, YAML text) of the scenario's pipeline."""
    result = load(scenario.file)
    pipeline = next(p for p in result.module.pipelines if p.name == scenario.pipeline)
    emit = KubeflowBackend(CompileOptions(settings=settings), Diagnostics()).compile(pipeline)
    return pipeline, emit.text


def _read(path: Path):
    from pipec.templates.task_runtime import _pipec_loads

    return _pipec_loads(path.read_bytes())


def _restore(value, kind: str):
    return {"int": int, "float": float, "bool": bool, "str": str}[kind](value)


def _task_result(folder: Path, outputs: tuple[str, ...], parameters: dict | None = None, files=()):
    """None (did not run), "failed", or the dict of outputs.  `parameters`:
    output name -> (declared type, raw artifact key) of parameter outputs."""
    if not folder.is_dir():
        return None
    if not (folder / "executor_output.json").exists():
        return "failed"
    result = {}
    for name in outputs:
        if parameters and name in parameters:
            kind, raw = parameters[name]
            if (folder / raw).stat().st_size:
                result[name] = _read(folder / raw)
            else:
                values = json.loads((folder / "executor_output.json").read_text())["parameterValues"]
                result[name] = _restore(values[name], kind)
        elif name in files:  # a typed artifact: the file or directory itself
            result[name] = ("<file>", _metadata(folder, name)["pipec_name"], file_value(folder / name)[2])
        else:
            result[name] = _read(folder / name)
    return result


def _metadata(folder: Path, name: str) -> dict:
    """The metadata the task wrote for its output artifact `name`."""
    artifacts = json.loads((folder / "executor_output.json").read_text())["artifacts"]
    return artifacts[name]["artifacts"][0]["metadata"]


def _parameters(spec: dict, task: str, step) -> dict:
    kind = parameter_kind(step)
    if kind is None:
        return {}
    definitions = spec["components"][f"comp-{task}"]["outputDefinitions"]
    (raw,) = definitions["artifacts"]
    (name,) = definitions["parameters"]
    assert definitions["parameters"][name]["parameterType"] == {
        "int": "NUMBER_INTEGER", "float": "NUMBER_DOUBLE", "str": "STRING", "bool": "BOOLEAN"
    }[kind]
    return {name: (kind, raw)}


def _step_result(run: Path, task: str, step, spec: dict):
    if step.foreach is None:
        return _task_result(run / task, step.outputs, _parameters(spec, task, step), dict(step.files))
    items = _task_result(run / f"{task}-items", ())
    if not isinstance(items, dict):
        return items
    indices = json.loads((run / f"{task}-items" / "executor_output.json").read_text())["parameterValues"]["Output"]
    count = 0 if indices == [-1] else len(indices)  # [-1]: an empty list (one iteration that runs nothing)
    results = [_task_result(run / f"{task}-iteration-{i}" / task, step.outputs) for i in range(count)]
    if any(not isinstance(r, dict) for r in results):
        return "failed"
    return {name: [r[name] for r in results] for name in step.outputs}


def failed_tasks(message: str) -> set[str]:
    """The tasks kfp.local names as failed in its error message (a failed
    task without outputs leaves no folder to tell)."""
    return set(re.findall(r"Inner task failed: (?:\x1b\[[0-9;]*m)?'([^']+)'", message))


def read_outcome(pipeline, root: Path, success: bool | str, spec: dict) -> Outcome:
    """`success`: True, or kfp.local's error message for a failed run."""
    failed = failed_tasks(success) if isinstance(success, str) else set()
    success = success is True
    runs = [p for p in root.iterdir() if p.is_dir()]
    assert len(runs) == 1, f"expected one run folder under {root}, got {runs}"
    run = runs[0]
    names = _Names(pipeline)
    statuses: dict[str, str] = {}
    outputs: dict = {}
    not_run: dict[str, tuple] = {}
    for step in pipeline.steps:  # execution order: upstream first
        task = names.task[step.name]
        result = _step_result(run, task, step, spec)
        gate = _task_result(run / f"{task}-when", ()) if step.when else None
        if isinstance(result, dict):
            statuses[step.name] = "succeeded"
            outputs.update(result)
        elif result == "failed" or gate == "failed" or failed & {task, f"{task}-when", f"{task}-items"}:
            statuses[step.name] = "failed"
        elif any(statuses[u] in ("failed", "upstream_failed") for u in step.upstream):
            statuses[step.name] = "upstream_failed"
        elif not success and gate is None and not any(statuses[u] == "skipped" for u in step.upstream):
            # Nothing skipped it: kfp.local stops at its first failed task
            # (a KFP backend would run it), so what it would do is unknown.
            statuses[step.name] = "not_run"
            not_run[step.name] = tuple(step.outputs)
        else:
            statuses[step.name] = "skipped"
    return Outcome(success, statuses, outputs, not_run)


def run(scenario: Scenario, workdir: Path, settings: tuple = ()) -> Outcome:
    """Compile, run on kfp.local without pipec (with it, for components
    that import their runtime from the image: `runtime = "image"`), read
    the outcome."""
    pipeline, text = compile_scenario(scenario, settings)
    image = dict(settings).get("runtime") == "image"
    workdir.mkdir(parents=True, exist_ok=True)
    yaml_path = workdir / f"{pipeline.name}.yaml"
    yaml_path.write_text(text, encoding="utf-8")
    root, tmp, cwd = workdir / "pipeline_root", workdir / "tmp", workdir / "cwd"
    for folder in (root, tmp, cwd):
        folder.mkdir(exist_ok=True)
    context_path = workdir / "context.json"
    context = scenario.context(workdir)
    for param in pipeline.context:  # values kfp cannot carry travel as JSON text
        if param.name in context and context_type(param) == "json":
            context[param.name] = json.dumps(context[param.name])
    context_path.write_text(json.dumps(context), encoding="utf-8")
    runner = workdir / "run_kfp.py"
    runner.write_text(RUNNER, encoding="utf-8")
    result_path = workdir / "result.pickle"
    # pipec blocked, unless the image provides it; no source root either
    # way: helper modules are embedded.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} if image else no_pipec_env()
    env.update(TMPDIR=str(tmp), HOME=str(tmp), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, str(runner), str(yaml_path), str(root), str(context_path), str(result_path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (workdir / "kfp.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    assert proc.returncode == 0 and result_path.exists(), proc.stdout[-4000:] + proc.stderr[-4000:]
    success = pickle.loads(result_path.read_bytes())
    return read_outcome(pipeline, root, success, yaml.safe_load(text))


__all__ = ["compile_scenario", "read_outcome", "run", "NO_PIPEC"]
