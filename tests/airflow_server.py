"""A real Airflow 3 deployment on 127.0.0.1 for the server tests.

`AirflowServer(root, dags, env)` starts the api-server, the scheduler (with
LocalExecutor, its log server off) and the dag-processor as separate
processes sharing one AIRFLOW_HOME under `root` and a SQLite metadata
database, which Airflow 3 accepts with LocalExecutor and which needs nothing
beyond pip.  The REST API (v2) triggers runs with conf and reads task states
and XComs; the simple auth manager hands every caller an admin token.
`stop()` ends the processes it started (and their children).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

AIRFLOW = [sys.executable, "-m", "airflow"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowServer:
    def __init__(self, root: Path, dags: Path, env: dict[str, str]):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home = root / "airflow_home"
        home.mkdir(parents=True, exist_ok=True)
        self.env = dict(
            env,
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM="2",
            # A busy machine answers slowly: wait for the execution API
            # rather than fail the task.
            AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="120",
            AIRFLOW__WORKERS__EXECUTION_API_RETRIES="10",
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.url}/execution/",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__BASE_URL=self.url,
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="2",
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
            # Only the runs a test triggers: no scheduled runs.
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
            AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        )
        self.processes: list[subprocess.Popen] = []
        self.token = ""

    def start(self, timeout: float = 180) -> None:
        subprocess.run(
            AIRFLOW + ["db", "migrate"],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        # The api-server first: the scheduler's tasks report to its execution
        # API, and a task started before it answers fails.
        self._spawn("api-server", "--host", "127.0.0.1", "--port", str(self.port))
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.token = self._call("GET", "/auth/token", auth=False)[
                    "access_token"
                ]
                break
            except (OSError, urllib.error.URLError, KeyError, ValueError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        "the api-server did not start:\n" + self.logs()
                    )
                time.sleep(1)
        self._spawn("scheduler", "--skip-serve-logs")
        self._spawn("dag-processor")

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.root / f"{name}.log", "wb") as log:
            self.processes.append(
                subprocess.Popen(
                    AIRFLOW + [name, *args],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.root,
                    start_new_session=True,
                )
            )

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def logs(self) -> str:
        return "\n".join(
            f"== {p.name}\n" + p.read_text(errors="replace")[-3000:]
            for p in sorted(self.root.glob("*.log"))
        )

    # -- REST API ----------------------------------------------------------

    def _call(self, method: str, path: str, body=None, auth: bool = True):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read() or b"null")

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            known = {
                d["dag_id"] for d in self._call("GET", "/api/v2/dags?limit=100")["dags"]
            }
            if set(dag_ids) <= known:
                return
            if time.monotonic() > deadline:
                errors = self._call("GET", "/api/v2/importErrors")
                raise AssertionError(f"DAGs not parsed: {errors}\n{self.logs()}")
            time.sleep(1)

    def trigger(self, dag_id: str, run_id: str, conf: dict) -> None:
        self._call(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            {"dag_run_id": run_id, "logical_date": None, "conf": conf},
        )

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")[
                "state"
            ]
            if state in ("success", "failed"):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"run {dag_id}/{run_id} still {state}\n{self.logs()}"
                )
            time.sleep(1)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, list]:
        """task id -> [(map index, state)] sorted by map index."""
        out: dict[str, list] = {}
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000"
        for ti in self._call("GET", path)["task_instances"]:
            out.setdefault(ti["task_id"], []).append((ti["map_index"], ti["state"]))
        return {k: sorted(v) for k, v in out.items()}

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1):
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
            f"/xcomEntries/return_value?map_index={map_index}&deserialize=true"
        )
        return self._call("GET", path)["value"]
