"""A real Prefect deployment, as the README describes it: `prefect server
start`, a process work pool, `prefect worker start`, the generated
deployment file deployed with `prefect --no-prompt deploy` from the project
root, runs with parameters, and a `* * * * *` schedule whose
scheduler-created run must complete.  Results are read back from the
server's REST API (the run's artifact and task runs) and compared with the
local run.  Everything runs on 127.0.0.1 in temporary folders and is stopped
afterwards.

The pipeline uses what a drop-in deployment needs beyond plain steps: a
helper module of the source tree (removed from the project before the
worker runs: the flow file carries it), a step with `packages` (installed
from the registry at task start), and a positional-only step parameter.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import matrix

pytest.importorskip("prefect")
httpx = pytest.importorskip("httpx")

pytestmark = [pytest.mark.slow, pytest.mark.server]

PIPELINE = '''
from pipec import Pipeline, context, step

from helpers import scale

ctx = context(n=3, label="x")


@step(outputs=["numbers"])
def make(n: int, /) -> list:
    return [scale(i) for i in range(n)]


@step(outputs=["title"], packages=["inflection==0.5.1"])
def title(label: str) -> str:
    import inflection

    return inflection.titleize(label + "_run")


@step(outputs=["total"])
def total(numbers, title) -> dict:
    return {"sum": sum(numbers), "title": title}


served = Pipeline("served", context=ctx, schedule="* * * * *", timezone="Europe/Paris")
served.add_step(make).add_step(title).add_step(total)
'''

HELPERS = '''
FACTOR = 10


def scale(value: int) -> int:
    return value * FACTOR
'''

PYPROJECT = """
[tool.pipec]
modules = ["pipelines/served.py"]
targets = ["prefect"]
output = { prefect = "flows" }
"""

POOL = "pipec-test-pool"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prefect:
    """A Prefect server and worker on 127.0.0.1, with every home, storage
    and cache folder under `base`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.processes: list[subprocess.Popen] = []
        env = dict(os.environ)
        for key in [k for k in env if k.startswith("PREFECT_")]:
            del env[key]
        for name, sub in (("PREFECT_HOME", "home"), ("PREFECT_LOCAL_STORAGE_PATH", "storage"),
                          ("PIPEC_PACKAGES_DIR", "packages"), ("TMPDIR", "tmp")):
            (base / sub).mkdir(parents=True, exist_ok=True)
            env[name] = str(base / sub)
        env.update(
            PREFECT_API_URL=self.api,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
            PREFECT_WORKER_QUERY_SECONDS="3",
            PREFECT_WORKER_PREFETCH_SECONDS="5",
            PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{base / 'home' / 'prefect.db'}",
        )
        self.env = env

    def start(self, *args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
        log = open(self.base / f"{args[0]}-{len(self.processes)}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "prefect", *args], cwd=cwd, env=env or self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(proc)
        return proc

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "prefect", *args], cwd=cwd, env=self.env,
                              capture_output=True, text=True, timeout=240)

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert all(p.poll() is None for p in self.processes), self.logs()
            time.sleep(0.5)
        raise AssertionError(f"the Prefect server did not start:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.base.glob("*.log")))

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    # -- the REST API, as a user reads it -----------------------------------
    def request(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        """One API call; a busy server answers 503, and is asked again (as
        Prefect's own client does)."""
        for _ in range(30):
            response = httpx.request(method, f"{self.api}{path}", json=body, timeout=30)
            if response.status_code not in (502, 503):
                return response
            time.sleep(2)
        return response

    def post(self, path: str, body: dict) -> httpx.Response:
        return self.request("POST", path, body)

    def get(self, path: str) -> dict:
        response = self.request("GET", path)
        response.raise_for_status()
        return response.json()

    def wait_final(self, flow_run_id: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"/flow_runs/{flow_run_id}")
            if run["state"] and run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return run
            time.sleep(1)
        raise AssertionError(f"flow run {flow_run_id} did not finish:\n{self.logs()}")

    def result(self, flow_run_id: str) -> dict:
        """The run's step statuses and outputs: its pipec artifact."""
        artifacts = self.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).json()
        (artifact,) = [a for a in artifacts if a["key"] == "pipec-served"]
        text = artifact["data"]
        return json.loads(text[text.index("\n") + 1 : text.rindex("```")])

    def task_states(self, flow_run_id: str) -> dict[str, str]:
        runs = self.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}}).json()
        return {run["name"].rsplit("-", 1)[0]: run["state"]["type"] for run in runs}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    base = tmp_path_factory.mktemp("prefect_server")
    project = base / "project"
    (project / "pipelines").mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (project / "pipelines" / "served.py").write_text(PIPELINE, encoding="utf-8")
    (project / "pipelines" / "helpers.py").write_text(HELPERS, encoding="utf-8")
    # The README's compile command, from the project root ([tool.pipec]).
    compiled = subprocess.run([str(Path(sys.executable).parent / "pipec"), "compile"], cwd=project,
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    local = local_run(project, base)
    # The workers get the flow files only: no pipeline module, no helper module.
    shutil.rmtree(project / "pipelines")

    prefect = Prefect(base)
    try:
        prefect.start("server", "start", "--host", "127.0.0.1", "--port", str(prefect.port), cwd=base)
        prefect.wait_healthy()
        created = prefect.run("work-pool", "create", POOL, "--type", "process", cwd=base)
        assert created.returncode == 0, created.stdout + created.stderr
        # The README's commands, from the project root.
        deploy = prefect.run("--no-prompt", "deploy", "--prefect-file", "flows/served.prefect.yaml", "--all",
                             "--pool", POOL, cwd=project)
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        # A worker on "another host": its own folder, pipec unimportable,
        # the project root named by PIPEC_PROJECT_ROOT.
        worker_dir = base / "worker"
        worker_dir.mkdir()
        worker_env = matrix.no_pipec_env([], base=dict(prefect.env, PIPEC_PROJECT_ROOT=str(project)))
        prefect.start("worker", "start", "--pool", POOL, "--type", "process", cwd=worker_dir, env=worker_env)
        yield {"prefect": prefect, "local": local, "project": project, "deploy": deploy}
    finally:
        prefect.stop()


def local_run(project: Path, base: Path) -> dict:
    """The reference: pipec's local run of the same pipeline, n=5."""
    script = (
        "import json, sys;"
        "from pipec.runner import run_pipeline; from pipec.runner.plan import compile_pipeline;"
        "p, root = compile_pipeline('served', sys.argv[1] + '/pipelines/served.py');"
        "r = run_pipeline(p, context={'n': 5}, store=sys.argv[2], root=root);"
        "print(json.dumps({'statuses': {k: v.status for k, v in r.step_results.items()}, 'outputs': r.outputs}))"
    )
    # The local runner does not install packages: give it the declared one.
    packages = base / "local-packages"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(packages), "inflection==0.5.1"]
    subprocess.run(pip, check=True, capture_output=True)
    env = matrix.no_pipec_env([], base=dict(os.environ))
    env["PYTHONPATH"] = os.pathsep.join([str(packages), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", script, str(project), str(base / "local-store")],
                          cwd=base, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_deployment_carries_no_absolute_path(deployed):
    prefect = deployed["prefect"]
    deployment = prefect.get("/deployments/name/served/served")
    assert deployment["entrypoint"] == "flows/served.py:served"
    assert deployment["work_pool_name"] == POOL
    text = json.dumps(deployment)
    assert str(deployed["project"]) not in text and str(prefect.base) not in text
    assert deployment["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $PIPEC_PROJECT_ROOT }}"}}
    ]
    assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["* * * * *"]
    assert [s["schedule"]["timezone"] for s in deployment["schedules"]] == ["Europe/Paris"]


def test_a_run_with_parameters_matches_the_local_run(deployed):
    prefect = deployed["prefect"]
    deployment = prefect.get("/deployments/name/served/served")
    created = prefect.post(f"/deployments/{deployment['id']}/create_flow_run", {"parameters": {"n": 5}})
    assert created.status_code == 201, created.text
    run = prefect.wait_final(created.json()["id"])
    assert run["state"]["type"] == "COMPLETED", prefect.logs()
    result = prefect.result(run["id"])
    local = deployed["local"]
    assert result["statuses"] == local["statuses"] == {"make": "succeeded", "title": "succeeded", "total": "succeeded"}
    assert matrix.strict_equal(result["outputs"], local["outputs"])
    assert result["outputs"]["total"] == {"sum": 100, "title": "X Run"}
    assert prefect.task_states(run["id"]) == {"make": "COMPLETED", "title": "COMPLETED", "total": "COMPLETED"}


def test_an_unknown_parameter_is_rejected(deployed):
    prefect = deployed["prefect"]
    deployment = prefect.get("/deployments/name/served/served")
    created = prefect.post(f"/deployments/{deployment['id']}/create_flow_run", {"parameters": {"bogus": 1}})
    # The API takes it (the parameter schema allows extra keys); the flow
    # run fails before any step runs.
    assert created.status_code == 201, created.text
    run = prefect.wait_final(created.json()["id"])
    assert run["state"]["type"] in ("FAILED", "CRASHED"), run["state"]
    assert prefect.task_states(run["id"]) == {}, run["state"]
    print("unknown parameter:", run["state"]["type"], run["state"]["message"])


def test_the_schedule_starts_runs_that_complete(deployed):
    prefect = deployed["prefect"]
    deployment = prefect.get("/deployments/name/served/served")
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline:
        runs = prefect.post("/flow_runs/filter", {"deployments": {"id": {"any_": [deployment["id"]]}}}).json()
        done = [r for r in runs if r["auto_scheduled"] and r["state"]["type"] == "COMPLETED"]
        if done:
            break
        time.sleep(3)
    else:
        raise AssertionError(f"no scheduled run completed: {[(r['auto_scheduled'], r['state']['type']) for r in runs]}\n"
                             f"{prefect.logs()}")
    result = prefect.result(done[0]["id"])
    assert result["success"] is True
    assert result["outputs"]["numbers"] == [0, 10, 20]  # the default n=3
