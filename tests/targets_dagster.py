"""Compile pipelines for Dagster and run the jobs for real.

`run_scenarios()` compiles every scenario's pipeline into a folder, then runs
all the jobs in ONE subprocess: pipec is unimportable there (the
`tests/no_pipec` blocker comes first on its path, and the driver checks it),
DAGSTER_HOME is a temporary folder (a real SQLite instance, telemetry off),
TMPDIR points into it, and each job runs with the working directory of its
scenario.  The driver imports each definitions module by path, resolves the
job from its `defs`, runs it with `execute_in_process` and the scenario's
overrides as run config, and records from the instance's event log:

- Dagster's verdict on the run (`success`),
- per op: the step events (start, success, failure, skipped, up for retry
  with its message) and the `pipec:` log lines,
- every output an op yielded, read back through the job's IO manager.

It also runs commands (`dagster job execute -f FILE`, `dagster definitions
validate -f FILE`) and a run with a run config key that is no context key.
Results come back pickled, so output types survive exactly.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

from pipec.backends.base import CompileOptions, Emit
from pipec.backends.dagster import DagsterBackend, DefinitionsFile
from pipec.diagnostics import Diagnostics
from pipec.frontend import load

import matrix

DRIVER = r'''
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import traceback

try:
    import pipec  # noqa: F401
except ImportError:
    blocked = True
else:
    blocked = False

from dagster import DagsterEventType, DagsterInstance
from dagster._core.errors import DagsterInvalidConfigError

STEP_EVENTS = {
    DagsterEventType.STEP_START: "start",
    DagsterEventType.STEP_SUCCESS: "success",
    DagsterEventType.STEP_FAILURE: "failure",
    DagsterEventType.STEP_SKIPPED: "skipped",
    DagsterEventType.STEP_UP_FOR_RETRY: "retry",
}


def load_defs(path, index):
    spec = importlib.util.spec_from_file_location(f"pipec_dagster_defs_{index}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.defs


def record(instance, result):
    """Events per op, `pipec:` log lines per op, and every yielded output."""
    ops, logs, yielded = {}, {}, []
    for entry in instance.all_logs(result.run_id):
        node = (entry.step_key or "").split("[", 1)[0]
        event = entry.dagster_event
        if event is None:
            if entry.user_message.startswith("pipec:") and node:
                logs.setdefault(node, []).append(entry.user_message)
            continue
        kind = STEP_EVENTS.get(event.event_type)
        if kind is not None:
            message = event.message or ""
            if event.event_type == DagsterEventType.STEP_FAILURE:
                error = event.step_failure_data.error
                while error is not None:
                    message += " | " + error.message.strip()
                    error = error.cause
            ops.setdefault(node, []).append((entry.step_key, kind, message))
        if event.event_type == DagsterEventType.STEP_OUTPUT:
            yielded.append((node, event.step_output_data.output_name))
    outputs = {}
    for node, name in dict.fromkeys(yielded):
        outputs[(node, name)] = comparable(result.output_for_node(node, name))
    return {"success": result.success, "ops": ops, "logs": logs, "outputs": outputs}


def run_jobs(jobs, instance, results):
    for index, job in enumerate(jobs):
        try:
            defs = load_defs(job["file"], index)
            definition = defs.resolve_job_def(job["job"])
            os.chdir(job["workdir"])
            result = definition.execute_in_process(
                run_config=job["run_config"], instance=instance, raise_on_error=False
            )
            results["runs"][job["id"]] = record(instance, result)
        except BaseException:
            results["runs"][job["id"]] = {"error": traceback.format_exc()}


def rejected(job, instance):
    """The error Dagster gives for a run config key that is no context key."""
    defs = load_defs(job["file"], "rejected")
    try:
        defs.resolve_job_def(job["job"]).execute_in_process(
            run_config={"resources": {"context": {"config": {"no_such_key": 1}}}},
            instance=instance,
        )
    except DagsterInvalidConfigError as exc:
        return str(exc)
    return None


def main(jobs_path, out_path):
    jobs = json.loads(open(jobs_path).read())
    results = {"blocked": blocked, "runs": {}, "commands": []}
    instance = DagsterInstance.get()
    run_jobs(jobs["runs"], instance, results)
    results["rejected"] = rejected(jobs["runs"][0], instance) if jobs.get("rejected", True) else None
    for command in jobs["commands"]:
        argv = [sys.executable if arg == "PYTHON" else arg for arg in command["argv"]]
        proc = subprocess.run(argv, cwd=command["cwd"], capture_output=True, text=True)
        output = proc.stdout[-4000:] + proc.stderr[-6000:]
        results["commands"].append((command["argv"], proc.returncode, output))
    with open(out_path, "wb") as f:
        pickle.dump(results, f)


main(sys.argv[1], sys.argv[2])
'''


def compile_file(path: Path, options: CompileOptions | None = None) -> tuple[list[Emit], Diagnostics]:
    """Every pipeline of the module at `path`, compiled for Dagster."""
    result = load(path)
    diagnostics = Diagnostics()
    emits = [DagsterBackend(options or CompileOptions(), diagnostics).compile(p) for p in result.module.pipelines]
    return emits, diagnostics


def pipeline_of(scenario: matrix.Scenario):
    return next(p for p in load(scenario.file).module.pipelines if p.name == scenario.pipeline)


def write(emit: Emit, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / emit.filename).write_text(emit.text, encoding="utf-8")
    return folder / emit.filename


def dagster_env(base: Path, extra_paths: list[Path]) -> dict[str, str]:
    """No pipec; DAGSTER_HOME (telemetry off) and TMPDIR under `base`."""
    env = matrix.no_pipec_env(extra_paths)
    for name, sub in (("DAGSTER_HOME", "home"), ("TMPDIR", "tmp")):
        (base / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(base / sub)
    (base / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    env.pop("PIPEC_ARTIFACT_ROOT", None)
    return env


def run_config(overrides: dict) -> dict:
    return {"resources": {"context": {"config": overrides}}} if overrides else {}


def _driver() -> str:
    """The driver's code, with `matrix.comparable` (op outputs hold objects of
    classes of the carried code, which only the driver's process can load)."""
    import inspect

    head, call = DRIVER.rsplit("\n\nmain(", 1)
    return head + "\n\n" + inspect.getsource(matrix.comparable) + "\n\n" + inspect.getsource(matrix.file_value) + "\n\nmain(" + call


def run_scenarios(scenarios, base: Path, commands: list[dict] = (), variants: dict[str, tuple] = None,
                  rejected: bool = True, timeout: float = 1200) -> dict:
    """Compile and run every scenario, then run `commands` (each `{"argv",
    "cwd"}`; "PYTHON" stands for the interpreter) with the same instance.
    `variants` maps a run id to (scenario, extra run config): the scenario
    runs once more with that run config added.  `rejected=False` skips the
    run with an unknown run config key."""
    jobs = []
    roots: list[Path] = []
    runs = [(s.id, s, {}) for s in scenarios] + [(key, s, extra) for key, (s, extra) in (variants or {}).items()]
    for run_id, scenario, extra in runs:
        emits, _ = compile_file(scenario.file)
        emit = next(e for e in emits if e.filename == f"{scenario.pipeline}.py")
        file = write(emit, base / "defs" / run_id)
        workdir = base / "work" / run_id
        workdir.mkdir(parents=True, exist_ok=True)
        jobs.append({"id": run_id, "file": str(file), "job": DefinitionsFile(pipeline_of(scenario)).job_name,
                     "run_config": {**run_config(scenario.context(workdir)), **extra}, "workdir": str(workdir)})
        if scenario.source_root not in roots:
            roots.append(scenario.source_root)
    request = {"runs": jobs, "commands": list(commands), "rejected": rejected}
    (base / "jobs.json").write_text(json.dumps(request), encoding="utf-8")
    (base / "driver.py").write_text(_driver(), encoding="utf-8")
    env = dagster_env(base / "dagster", roots)
    proc = subprocess.run(
        [sys.executable, str(base / "driver.py"), str(base / "jobs.json"), str(base / "results.pickle")],
        env=env, cwd=str(matrix.NO_PIPEC), capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0 or not (base / "results.pickle").exists():
        raise AssertionError(f"driver failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    with open(base / "results.pickle", "rb") as f:
        results = pickle.load(f)
    results["storage"] = base / "dagster" / "home" / "storage" / "pipec"
    return results


def step_status(file: DefinitionsFile, step, run: dict) -> str:
    """pipec's status of `step` from what Dagster recorded for its ops."""
    names = file.by_name[step.name]
    ops = [op for op in (names.items, names.op, names.collect) if op]
    kinds = [kind for op in ops for _, kind, _ in run["ops"].get(op, [])]
    if "failure" in kinds:
        return "failed"
    skips = [line for op in ops for line in run["logs"].get(op, []) if line.startswith("pipec: skipped")]
    if "skipped" in kinds or skips:
        return "skipped"
    if not kinds:
        return "upstream_failed"
    return "succeeded"


def outcome(scenario: matrix.Scenario, run: dict) -> matrix.Outcome:
    """The run as pipec sees it: statuses from the op events, outputs from
    the ops that produce the step outputs (a foreach step's `__collect`)."""
    pipeline = pipeline_of(scenario)
    file = DefinitionsFile(pipeline)
    statuses = {step.name: step_status(file, step, run) for step in pipeline.steps}
    outputs = {}
    for step in pipeline.steps:
        names = file.by_name[step.name]
        producer = names.collect or names.op
        for output, out in zip(step.outputs, names.outs):
            if (producer, out) in run["outputs"]:
                outputs[output] = run["outputs"][(producer, out)]
    return matrix.Outcome(run["success"], statuses, outputs)
