"""Running compiled Airflow DAGs for real, for the Airflow tests.

Importing this module gives the test side: `compile_to(folder, files)` and
`AirflowSession` (one Airflow process per test session: a fresh SQLite
metadata database in a temporary AIRFLOW_HOME, pipec made unimportable).

Run as a script, it is the driver that runs inside that process: it
compiles nothing and imports only Airflow and the standard library.  It
reads a JSON request on stdin, loads the DAG folder with `DagBag` (import
errors and warnings reported), runs `dag.test(run_conf=...)` for each
requested run and prints one JSON result line: per step its status and its
outputs read back from XCom and the artifact store.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULT_MARK = "PIPEC-AIRFLOW-RESULT "
STATUS = {
    "success": "succeeded",
    "skipped": "skipped",
    "failed": "failed",
    "upstream_failed": "upstream_failed",
}


# -- test side (runs with pipec) ---------------------------------------------


def compile_to(
    folder: Path, files: list[Path], settings: tuple = ()
) -> dict[str, dict]:
    """Compile every pipeline of `files` into `folder`; return, by pipeline
    name, what the driver needs to read a run back (outputs, foreach)."""
    from pipec.backends.airflow import AirflowBackend
    from pipec.backends.base import CompileOptions
    from pipec.diagnostics import Diagnostics
    from pipec.frontend import load

    folder.mkdir(parents=True, exist_ok=True)
    shapes: dict[str, dict] = {}
    for file in files:
        result = load(file)
        assert result.module is not None, f"{file}: {result.diagnostics}"
        for pipeline in result.module.pipelines:
            emit = AirflowBackend(
                CompileOptions(settings=settings), Diagnostics()
            ).compile(pipeline)
            (folder / emit.filename).write_text(emit.text, encoding="utf-8")
            shapes[pipeline.name] = {
                step.name: {
                    "outputs": list(step.outputs),
                    "foreach": step.foreach is not None,
                }
                for step in pipeline.steps
            }
    return shapes


class AirflowSession:
    """One Airflow home for a test session; `run()` starts one driver
    process for a batch of runs (the metadata DB is created once)."""

    def __init__(self, root: Path, source_roots: list[Path]):
        self.root = root
        self.dags = root / "dags"
        self.home = root / "airflow_home"
        self.tmp = root / "tmp"
        for folder in (self.dags, self.home, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self.source_roots = source_roots
        self.initialised = False
        # Extra environment of the Airflow process (PIPEC_ARTIFACT_ROOT, ...).
        self.extra_env: dict[str, str] = {}

    def env(self) -> dict[str, str]:
        from matrix import no_pipec_env

        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "PIPEC_"))
        }
        base.pop("PYTHONPATH", None)
        base.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.home / 'airflow.db'}",
            AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
            TMPDIR=str(self.tmp),
            PYTHONDONTWRITEBYTECODE="1",
        )
        base.update(self.extra_env)
        return no_pipec_env(self.source_roots, base=base)

    def run(self, request: dict, timeout: float = 600) -> dict:
        request = dict(
            request, resetdb=not self.initialised, dags_folder=str(self.dags)
        )
        proc = subprocess.run(
            [sys.executable, __file__],
            input=json.dumps(request),
            env=self.env(),
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        for line in proc.stdout.splitlines():
            if line.startswith(RESULT_MARK):
                self.initialised = True
                return json.loads(line[len(RESULT_MARK) :])
        raise AssertionError(
            f"driver failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )


# -- driver side (runs inside Airflow, without pipec) -----------------------


def _driver(request: dict) -> dict:
    import warnings

    if request.get("resetdb"):
        from airflow.utils import db

        db.resetdb()
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=request["dags_folder"])
    watched = request.get("watch_modules", [])
    result = {
        "imported_by_parse": [m for m in watched if m in sys.modules],
        "pipec_importable": _pipec_importable(),
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "warnings": [
            f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
            for w in caught
        ],
        "dag_ids": sorted(bag.dag_ids),
        "params": {},
        "runs": {},
    }
    for dag_id in sorted(bag.dag_ids):
        dag = bag.get_dag(dag_id)
        dag.params.validate()
        result["params"][dag_id] = {k: dag.params[k] for k in dag.params}
        result.setdefault("tasks", {})[dag_id] = sorted(dag.task_dict)
    for run in request.get("runs", []):
        os.chdir(run["cwd"])
        if "dags_folder" in run:  # the DAG's own folder: dag.test() re-parses only it
            import airflow.settings

            airflow.settings.DAGS_FOLDER = run["dags_folder"]
        started = time.perf_counter()
        try:
            dag = bag.get_dag(run["dag_id"])
            # dag.test() runs every task in this process and leaves the
            # run's conf in the DAG's params; a scheduler parses the DAG
            # afresh, so each run here starts from the file's params.
            params = copy.deepcopy(dag.params)
            tasks = {t.task_id: copy.deepcopy(t.params) for t in dag.tasks}
            try:
                dagrun = dag.test(run_conf=run["conf"])
            finally:
                dag.params = params
                for task in dag.tasks:
                    task.params = tasks[task.task_id]
            result["runs"][run["id"]] = _read_back(dagrun, run["steps"])
            result["runs"][run["id"]]["envelopes"] = _envelopes(dagrun)
            result["runs"][run["id"]]["seconds"] = time.perf_counter() - started
        except Exception:
            if not request.get("keep_going"):
                raise
            import traceback

            result.setdefault("errors", {})[run["id"]] = traceback.format_exc()
    return result


def _pipec_importable() -> bool:
    try:
        import pipec  # noqa: F401
    except ImportError:
        return False
    return True


def _read_back(dagrun, steps: dict) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.settings import Session

    session = Session()
    tis = {}
    for ti in dagrun.get_task_instances(session=session):
        tis.setdefault(ti.task_id, []).append(ti)
    statuses, outputs, kinds = {}, {}, {}
    for step, shape in steps.items():
        mine = sorted(tis.get(step, []), key=lambda ti: ti.map_index)
        status = _aggregate([STATUS.get(str(ti.state), str(ti.state)) for ti in mine])
        helper = tis.get(step + "-items", [])
        if helper and str(helper[0].state) == "failed":
            status = "failed"
        statuses[step] = status
        if status != "succeeded":
            continue
        values = []
        for ti in mine:
            query = XComModel.get_many(
                run_id=dagrun.run_id,
                key="return_value",
                dag_ids=dagrun.dag_id,
                task_ids=step,
                map_indexes=ti.map_index,
            )
            row = session.scalars(query).first()
            values.append(XComModel.deserialize_value(row) if row is not None else None)
        for name in shape["outputs"]:
            kinds[name] = sorted({next(iter(v[name])) for v in values if v is not None})
            decoded = [_decode(v[name]) for v in values if v is not None]
            outputs[name] = decoded if shape["foreach"] else decoded[0]
    return {
        "state": str(dagrun.state),
        "statuses": statuses,
        "outputs_repr": _encode(outputs),
        "kinds": kinds,
    }


def _envelopes(dagrun) -> dict:
    """Every task's XCom as stored (the envelopes), by task id."""
    from airflow.models.xcom import XComModel
    from airflow.settings import Session

    session = Session()
    query = XComModel.get_many(
        run_id=dagrun.run_id, key="return_value", dag_ids=dagrun.dag_id
    )
    return {
        row.task_id: XComModel.deserialize_value(row) for row in session.scalars(query)
    }


def _aggregate(states: list[str]) -> str:
    for state in ("failed", "upstream_failed"):
        if state in states:
            return state
    if states and all(s == "skipped" for s in states):
        return "skipped"
    if states and all(s == "succeeded" for s in states):
        return "succeeded"
    return "|".join(states) or "missing"


def _decode(envelope: dict):
    if "json" in envelope:
        return json.loads(envelope["json"])
    path = envelope["pickle"]
    with open(path[len("file://") :] if path.startswith("file://") else path, "rb") as f:
        return _runtime()["_pipec_unpickle"](f.read())


@functools.lru_cache(maxsize=None)
def _runtime() -> dict:
    """pipec's task runtime (standard library only), read from its file as
    a DAG file embeds it: its envelope functions read the artifacts."""
    path = Path(__file__).resolve().parent.parent / "templates" / "task_runtime.py"
    namespace: dict = {"__name__": "pipec_task_runtime"}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    return namespace


def _encode(value) -> str:
    """Outputs travel back to the test pickled (types intact), as hex;
    dataclass objects as `matrix.comparable` makes them."""
    import pickle

    from matrix import comparable

    return pickle.dumps(comparable(value)).hex()


if __name__ == "__main__":
    _request = json.loads(sys.stdin.read())
    _result = _driver(_request)
    print(RESULT_MARK + json.dumps(_result, default=repr), flush=True)
