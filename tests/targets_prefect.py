"""Compile pipelines for Prefect and run the flows for real.

`run_scenarios()` compiles every scenario's pipeline into a folder, then runs
all the flows in ONE subprocess (one Prefect test harness, i.e. one temporary
server, for the whole session): pipec is unimportable there (the
`tests/no_pipec` blocker comes first on its path, and the driver checks it),
PREFECT_HOME, result storage, the memo store and TMPDIR point into the
session's temporary folder, and each flow runs with the working directory of
its scenario.  The driver imports each flow file by path, calls the flow with
the scenario's overrides and `return_state=True`, and records:

- the flow's own result (the generated flow returns `{"success", "statuses",
  "outputs"}`; a Failed flow state carries the same data),
- the final state type of the flow run,
- the states of every task run of that flow run, read back from Prefect's API,
  so that the tests check what Prefect recorded, not only what the flow says.

Results come back pickled, so output types survive exactly.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

from pipec.backends.base import CompileOptions, Emit
from pipec.backends.prefect import PrefectBackend
from pipec.diagnostics import Diagnostics
from pipec.frontend import load

import matrix

DRIVER = r'''
import asyncio
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

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness


def load_flow(path, pipeline, index):
    spec = importlib.util.spec_from_file_location(f"pipec_prefect_flow_{index}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    flows = [v for v in vars(module).values() if isinstance(v, Flow) and v.name == pipeline]
    assert len(flows) == 1, (path, pipeline, flows)
    return flows[0]


FINAL = {"Completed", "Cached", "Skipped", "NotNeeded", "Failed", "TimedOut", "Crashed", "NotReady"}


async def task_states(flow_run_id):
    """The task runs of a flow run as the API records them.  Prefect 3
    reports task states to the server through events, asynchronously: poll
    until every task run has reached its final state."""
    async with get_client() as client:
        for _ in range(120):
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            if all(run.state is not None and run.state.name in FINAL for run in runs):
                break
            await asyncio.sleep(0.25)
    return sorted(
        (run.name.rsplit("-", 1)[0], run.state.type.value, run.state.name) for run in runs
    )


async def deployments():
    async with get_client() as client:
        found = await client.read_deployments()
    return {
        d.name: {
            "entrypoint": d.entrypoint,
            "parameters": d.parameters,
            "crons": [(s.schedule.cron, s.schedule.timezone) for s in d.schedules],
            "tags": d.tags,
            "description": d.description,
            "work_pool": d.work_pool_name,
        }
        for d in found
    }


async def flow_runs():
    async with get_client() as client:
        names = {flow.id: flow.name for flow in await client.read_flows()}
        runs = await client.read_flow_runs()
    return sorted((names[run.flow_id], run.state.name) for run in runs)


async def table_artifacts():
    """(key, data) of every table artifact the flows created."""
    async with get_client() as client:
        found = await client.read_artifacts()
    out = []
    for artifact in found:
        if artifact.type == "table":
            data = artifact.data
            out.append((artifact.key, json.loads(data) if isinstance(data, str) else data))
    return sorted(out, key=repr)


async def create_pool(name):
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def run_flows(jobs, results):
    for index, job in enumerate(jobs):
        try:
            flow = load_flow(job["flow_file"], job["pipeline"], index)
            os.chdir(job["workdir"])
            state = flow(**job["overrides"], return_state=True)
            data = state.result(raise_on_failure=False)
            tasks = asyncio.run(task_states(state.state_details.flow_run_id))
            results["runs"][job["id"]] = {
                "flow_state": state.type.value,
                "data": comparable(data),
                "tasks": tasks,
            }
        except BaseException:
            results["runs"][job["id"]] = {"error": traceback.format_exc()}


def run_commands(commands, results):
    """`python FILE` and `prefect deploy`, against the harness's server."""
    env = dict(os.environ, PREFECT_API_URL=PREFECT_API_URL.value())
    asyncio.run(create_pool("pipec-e2e"))
    for command in commands:
        argv = [sys.executable if arg == "PYTHON" else arg for arg in command["argv"]]
        proc = subprocess.run(argv, cwd=command["cwd"], env=env, capture_output=True, text=True)
        output = proc.stdout[-3000:] + proc.stderr[-5000:]
        results["commands"].append((command["argv"], proc.returncode, output))
    results["deployments"] = asyncio.run(deployments())
    results["flow_runs"] = asyncio.run(flow_runs())
    results["artifacts"] = asyncio.run(table_artifacts())


def main(jobs_path, out_path):
    jobs = json.loads(open(jobs_path).read())
    results = {"blocked": blocked, "runs": {}, "commands": []}
    with prefect_test_harness(server_startup_timeout=600):
        run_flows(jobs["runs"], results)
        if jobs["commands"]:
            run_commands(jobs["commands"], results)
    with open(out_path, "wb") as f:
        pickle.dump(results, f)


main(sys.argv[1], sys.argv[2])
'''


def compile_file(path: Path, options: CompileOptions | None = None) -> tuple[list[Emit], Diagnostics]:
    """Every pipeline of the module at `path`, compiled for Prefect."""
    result = load(path)
    diagnostics = Diagnostics()
    emits = []
    for pipeline in result.module.pipelines:
        emits.append(PrefectBackend(options or CompileOptions(), diagnostics).compile(pipeline))
    return emits, diagnostics


def write(emit: Emit, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / emit.filename).write_text(emit.text, encoding="utf-8")
    for name, text in emit.extra_files:
        (folder / name).write_text(text, encoding="utf-8")
    return folder / emit.filename


def prefect_env(base: Path, extra_paths: list[Path]) -> dict[str, str]:
    """No pipec, and every Prefect home / storage / temp folder under `base`."""
    env = matrix.no_pipec_env(extra_paths)
    env.pop("PREFECT_API_URL", None)
    for name, sub in (("PREFECT_HOME", "home"), ("PREFECT_LOCAL_STORAGE_PATH", "storage"),
                      ("PREFECT_MEMO_STORE_PATH", "memo"), ("TMPDIR", "tmp")):
        (base / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(base / sub / ("memo.toml" if sub == "memo" else ""))
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    return env


def _driver() -> str:
    """The driver's code, with `matrix.comparable` (flow results hold objects
    of classes of the carried code, which only the flow's process can load)."""
    import inspect

    head, call = DRIVER.rsplit("\n\nmain(", 1)
    return head + "\n\n" + inspect.getsource(matrix.comparable) + "\n\n" + inspect.getsource(matrix.file_value) + "\n\nmain(" + call


def run_scenarios(scenarios, base: Path, commands: list[dict] = (), timeout: float = 900) -> dict:
    """Compile and run every scenario, then run `commands` (each `{"argv",
    "cwd"}`; "PYTHON" stands for the interpreter) against the same server;
    the driver's results: runs by scenario id, commands, deployments."""
    jobs = []
    roots: list[Path] = []
    for scenario in scenarios:
        emits, _ = compile_file(scenario.file)
        emit = next(e for e in emits if e.filename == f"{scenario.pipeline}.py")
        flow_file = write(emit, base / "flows" / scenario.id)
        workdir = base / "work" / scenario.id
        workdir.mkdir(parents=True, exist_ok=True)
        overrides = scenario.context(workdir)
        jobs.append({"id": scenario.id, "flow_file": str(flow_file), "pipeline": scenario.pipeline,
                     "overrides": overrides, "workdir": str(workdir)})
        if scenario.source_root not in roots:
            roots.append(scenario.source_root)
    request = {"runs": jobs, "commands": list(commands)}
    (base / "jobs.json").write_text(json.dumps(request), encoding="utf-8")
    (base / "driver.py").write_text(_driver(), encoding="utf-8")
    env = prefect_env(base / "prefect", roots)
    proc = subprocess.run(
        [sys.executable, str(base / "driver.py"), str(base / "jobs.json"), str(base / "results.pickle")],
        env=env, cwd=str(matrix.NO_PIPEC), capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0 or not (base / "results.pickle").exists():
        raise AssertionError(f"driver failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    with open(base / "results.pickle", "rb") as f:
        return pickle.load(f)


def outcome(run: dict) -> matrix.Outcome:
    data = run["data"]
    return matrix.Outcome(run["flow_state"] == "COMPLETED", dict(data["statuses"]), dict(data["outputs"]))


# What Prefect must have recorded for a step, by pipec status: the (state
# type, state name) pairs its task runs may end in.  A step with a fallback
# has two task runs: `<step>` and `<step>.on_failure`.
EXPECTED_STATES = {
    "succeeded": {("COMPLETED", "Completed"), ("COMPLETED", "Cached")},
    "skipped": {("COMPLETED", "Skipped")},
    "failed": {("FAILED", "Failed"), ("FAILED", "TimedOut")},
    "upstream_failed": {("PENDING", "NotReady")},
}


def check_task_states(pipeline, statuses: dict[str, str], tasks: list[tuple[str, str, str]]) -> None:
    """Every step's task runs ended in the Prefect state its status means."""
    for step in pipeline.steps:
        status = statuses[step.name]
        runs = {(kind, name) for task, kind, name in tasks if task == step.name}
        fallback_runs = {(kind, name) for task, kind, name in tasks if task == f"{step.name}.on_failure"}
        if step.fallback is not None and status == "succeeded" and ("FAILED", "Failed") in runs:
            # The step failed; its fallback supplied the outputs.
            assert fallback_runs and fallback_runs <= EXPECTED_STATES["succeeded"], (step.name, fallback_runs)
            continue
        if step.foreach is not None and not runs and status == "succeeded":
            continue  # an empty fan-out has no task runs
        assert runs, f"no task run recorded for step {step.name!r}"
        assert runs <= EXPECTED_STATES[status], f"step {step.name!r} is {status}, Prefect recorded {runs}"
