"""Airflow DAGs as dropped into a deployment: per-step packages in a virtual
environment, images and resources as KubernetesExecutor pod overrides
(checked with the provider's own PodGenerator), helper modules carried in
the DAG file (or imported and checked at parse), artifacts on a store that
more than one host shares, run conf keys that are no context keys, and
the limits an Airflow DAG file must respect to load.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import matrix
from symbols import undefined_globals
from pipec.backends.airflow import AirflowBackend
from pipec.backends.base import CompileOptions
from pipec.diagnostics import Diagnostics
from pipec.frontend import load
from targets_airflow import AirflowSession, compile_to

DEEP = 198
PACKAGE = "inflection==0.5.1"  # small, pure Python, not installed here

HELPER = """
def shout(text: str) -> str:
    return text.upper() + "!"
"""

DEPLOY = f"""
from pipec import Pipeline, context, step

from deploy_helpers import shout

ctx = context(word="hello", nested={"[" * DEEP + "]" * DEEP})


@step(outputs=["title"], packages=["{PACKAGE}"])
def titled(word: str) -> str:
    import inflection

    return inflection.titleize(word + "_there")


@step(inputs=["title"], outputs=["pair"])
def loud(title: str):
    return (shout(title), 1)


@step(inputs=["pair"], outputs=["depth"])
def measure(pair, nested) -> list:
    depth = 0
    while nested:
        depth, nested = depth + 1, nested[0]
    return [pair[0], depth + 1]


pipeline = Pipeline("deploy_case", context=ctx)
pipeline.add_step(titled).add_step(loud).add_step(measure)
"""

PODS = """
from pipec import Pipeline, step


@step(outputs=["x"], cpu="2", memory="4Gi", gpu=1, image="registry.example/ml:1")
def heavy() -> int:
    return 1


@step(inputs=["x"], outputs=["y"], image="registry.example/other:2")
def light(x: int) -> int:
    return x


@step(inputs=["y"], outputs=["z"])
def plain(y: int) -> int:
    return y


pipeline = Pipeline("pods_case").add_step(heavy).add_step(light).add_step(plain)
"""


def write_tree(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "deploy_helpers.py").write_text(HELPER, encoding="utf-8")
    (root / "deploy_case.py").write_text(DEPLOY, encoding="utf-8")
    (root / "pods_case.py").write_text(PODS, encoding="utf-8")
    return root


def compile_source(path: Path, **options):
    (pipeline,) = load(path).module.pipelines
    diagnostics = Diagnostics()
    emit = AirflowBackend(CompileOptions(**options), diagnostics).compile(pipeline)
    # PC603 (the step cache kept in the header) is not what these tests check.
    return emit.text, [d for d in diagnostics if d.code != "PC603"]


# -- what each setting selects ------------------------------------------------


def test_packages_and_pods_are_errors_where_no_mechanism_is_selected(tmp_path):
    root = write_tree(tmp_path / "src")
    settings = (("packages", "none"), ("pods", "none"))
    _, diagnostics = compile_source(root / "pods_case.py", settings=settings)
    codes = [d.code for d in diagnostics]
    assert (
        codes.count("PC601") == 3
    ), diagnostics  # heavy: resources, image; light: image
    _, diagnostics = compile_source(root / "deploy_case.py", settings=settings)
    assert [d.code for d in diagnostics] == ["PC601"]
    assert "packages" in diagnostics[0].message and "titled" in diagnostics[0].message
    text, warned = compile_source(
        root / "deploy_case.py", settings=settings, unsupported="warn"
    )
    assert [d.code for d in warned] == ["PC602"]
    assert PACKAGE in text.split("\n\nimport")[0]
    # By default both have a mechanism: no diagnostic at all.
    for name in ("pods_case.py", "deploy_case.py"):
        assert compile_source(root / name)[1] == []


def test_the_virtual_environment_script_defines_what_it_uses(tmp_path):
    """The script a step's virtual environment runs is assembled from the
    DAG file's own runtime definitions: every global it reads is among them
    (the store root is set by its main function)."""
    import importlib.util

    root = write_tree(tmp_path / "src")
    text, _ = compile_source(root / "deploy_case.py")
    dag_file = tmp_path / "dag_file.py"
    dag_file.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("pipec_dag_file", dag_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        script = module._pipec_child_code()
    finally:
        del sys.modules[spec.name]
    assert "_pipec_child_main(" in script
    assert undefined_globals(script, "child") == {"_PIPEC_STORE"}


def test_an_unknown_mechanism_is_a_settings_error(tmp_path):
    root = write_tree(tmp_path / "src")
    _, diagnostics = compile_source(
        root / "deploy_case.py", settings=(("pods", "k8s"),)
    )
    assert [d.code for d in diagnostics] == ["PC614"]
    assert "'executor_config' or 'none'" in diagnostics[0].message


POD_DRIVER = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from kubernetes.client import ApiClient, models as k8s

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.dags["pods_case"]
base = k8s.V1Pod(
    metadata=k8s.V1ObjectMeta(name="worker"),
    spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="base", image="apache/airflow:3")]),
)
out = {}
for task_id in ("heavy", "light", "plain"):
    override = dag.get_task(task_id).executor_config.get("pod_override")
    pod = PodGenerator.construct_pod(
        dag_id=dag.dag_id, task_id=task_id, pod_id="p", try_number=1,
        kube_image="apache/airflow:3", date=None, args=["airflow", "tasks", "run"],
        pod_override_object=override, base_worker_pod=base, namespace="default",
        scheduler_job_id="1", run_id="r",
    )
    out[task_id] = ApiClient().sanitize_for_serialization(pod)["spec"]["containers"]
print(json.dumps(out))
"""


def test_pod_overrides_are_what_the_kubernetes_executor_builds(tmp_path):
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    root = write_tree(tmp_path / "src")
    compile_to(tmp_path / "dags", [root / "pods_case.py"])
    session = AirflowSession(tmp_path, [])
    proc = subprocess.run(
        [sys.executable, "-c", POD_DRIVER, str(tmp_path / "dags")],
        env=session.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    containers = json.loads(proc.stdout.splitlines()[-1])
    (heavy,) = containers["heavy"]
    assert heavy["name"] == "base" and heavy["image"] == "registry.example/ml:1"
    assert heavy["resources"]["limits"] == {
        "cpu": "2",
        "memory": "4Gi",
        "nvidia.com/gpu": "1",
    }
    assert heavy["args"] == ["airflow", "tasks", "run"]
    (light,) = containers["light"]
    assert light["image"] == "registry.example/other:2" and "resources" not in light
    (plain,) = containers["plain"]
    assert plain["image"] == "apache/airflow:3"


# -- a deployment's run: packages, helpers, deep values, a shared store -------


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """deploy_case compiled with the defaults and run by dag.test on "host
    A" (its own AIRFLOW_HOME), with no source root on the path and the
    artifact store a file:// URL outside that home; a second run gives a
    conf key that is no context key."""
    root = tmp_path_factory.mktemp("deploy")
    source = write_tree(root / "src")
    shapes = compile_to(root / "dags", [source / "deploy_case.py"])
    shared = root / "shared-store"
    session = AirflowSession(root / "host_a", [])
    shutil.copytree(root / "dags", session.dags, dirs_exist_ok=True)
    session.extra_env = {
        "PIPEC_ARTIFACT_ROOT": shared.as_uri(),
        "PIPEC_VENV_ROOT": str(root / "venvs"),
    }
    work = root / "work"
    work.mkdir()
    runs = [
        {"id": "ok", "dag_id": "deploy_case", "conf": {"word": "big_data"}},
        {"id": "typo", "dag_id": "deploy_case", "conf": {"wrod": "x"}},
    ]
    for run in runs:
        run.update(cwd=str(work), steps=shapes["deploy_case"])
    result = session.run({"runs": runs, "watch_modules": ["inflection"]}, timeout=900)
    return {"result": result, "root": root, "source": source, "shared": shared}


def test_a_step_runs_with_its_packages_in_a_virtual_environment(deployed):
    result = deployed["result"]
    assert result["import_errors"] == {}
    run = result["runs"]["ok"]
    assert run["statuses"] == {
        "titled": "succeeded",
        "loud": "succeeded",
        "measure": "succeeded",
    }, run
    outputs = pickle.loads(bytes.fromhex(run["outputs_repr"]))
    assert outputs["title"] == "Big Data There"
    # The package is in the step's environment only, not in Airflow's.
    proc = subprocess.run(
        [sys.executable, "-c", "import inflection"], capture_output=True
    )
    assert proc.returncode != 0
    assert list((deployed["root"] / "venvs").glob("*/pipec-ready.json"))


def test_helpers_and_deep_values_travel_in_the_dag_file(deployed):
    run = deployed["result"]["runs"]["ok"]
    outputs = pickle.loads(bytes.fromhex(run["outputs_repr"]))
    # The helper module is carried in the file (no source root on the path);
    # a context list 198 deep loads and arrives whole.
    assert outputs["pair"] == ("BIG DATA THERE!", 1)
    assert outputs["depth"] == ["BIG DATA THERE!", DEEP]
    assert run["kinds"]["pair"] == ["pickle"]
    assert deployed["result"]["imported_by_parse"] == []


def test_a_conf_key_that_is_no_context_key_fails_the_run(deployed):
    run = deployed["result"]["runs"]["typo"]
    assert run["state"] == "failed"
    assert run["statuses"]["titled"] == "failed"
    assert run["statuses"]["loud"] == "upstream_failed"


def test_artifacts_on_a_shared_store_are_read_on_another_host(deployed, tmp_path):
    """Host A wrote its artifacts under the shared file:// root; with host
    A's AIRFLOW_HOME gone, host B (another AIRFLOW_HOME) reads them with the
    DAG file's own runtime."""
    envelopes = deployed["result"]["runs"]["ok"]["envelopes"]
    uri = envelopes["loud"]["pair"]["pickle"]
    assert uri.startswith(deployed["shared"].as_uri())
    shutil.rmtree(deployed["root"] / "host_a" / "airflow_home")
    host_b = AirflowSession(tmp_path / "host_b", [])
    dag_file = deployed["root"] / "dags" / "deploy_case.py"
    script = textwrap.dedent("""
        import json, pickle, runpy, sys
        ns = runpy.run_path(sys.argv[1])
        envelope = json.loads(sys.argv[2])
        sys.stdout.write(pickle.dumps(ns["_pipec_get"](envelope)).hex())
        """)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(dag_file), json.dumps({"pickle": uri})],
        env=host_b.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert pickle.loads(bytes.fromhex(proc.stdout)) == ("BIG DATA THERE!", 1)


# -- without a shared store, on an executor of several hosts -----------------


def test_a_local_artifact_root_fails_loudly_on_a_remote_executor(tmp_path):
    from pipec.backends.airflow import _runtime_code, _runtime_imports

    namespace: dict = {}
    exec(_runtime_imports() + "\n" + _runtime_code(), namespace)
    namespace["_PIPEC_STORE"] = {"root": None, "conn_id": None, "xcom_max_bytes": 64}
    facts = {"ti": ["d", "r", "t", "-1"], "executors": ["CeleryExecutor"]}
    assert namespace["_pipec_put"](facts, "small", 1) == {"json": "1"}
    with pytest.raises(Exception) as raised:
        namespace["_pipec_put"](facts, "pair", (1, 2))
    assert type(raised.value).__name__ == "AirflowFailException"
    assert "PIPEC_ARTIFACT_ROOT" in str(raised.value)
    assert "CeleryExecutor" in str(raised.value)
    facts["executors"] = ["LocalExecutor"]
    namespace["_PIPEC_STORE"]["root"] = str(tmp_path)
    assert "pickle" in namespace["_pipec_put"](facts, "pair", (1, 2))


EXECUTORS = r"""
import sys
from pipec_runtime_probe import namespace
print(namespace["_pipec_executors"]())
"""


@pytest.mark.parametrize(
    "configured, names",
    [
        ("CeleryExecutor", ["CeleryExecutor"]),
        (
            "LocalExecutor,airflow.providers.cncf.kubernetes.executors."
            "kubernetes_executor.KubernetesExecutor",
            ["LocalExecutor", "KubernetesExecutor"],
        ),
        ("LocalExecutor", ["LocalExecutor"]),
    ],
)
def test_the_executors_are_read_from_airflows_configuration(
    tmp_path, configured, names
):
    from pipec.backends.airflow import _runtime_code, _runtime_imports

    (tmp_path / "pipec_runtime_probe.py").write_text(
        "namespace = {}\n"
        f"exec({_runtime_imports() + chr(10) + _runtime_code()!r}, namespace)\n",
        encoding="utf-8",
    )
    session = AirflowSession(tmp_path / "probe", [tmp_path])
    session.extra_env = {"AIRFLOW__CORE__EXECUTOR": configured}
    proc = subprocess.run(
        [sys.executable, "-c", EXECUTORS],
        env=session.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip().splitlines()[-1] == repr(names)


def test_a_missing_artifact_names_the_setting(tmp_path):
    from pipec.backends.airflow import _runtime_code, _runtime_imports

    namespace: dict = {}
    exec(_runtime_imports() + "\n" + _runtime_code(), namespace)
    with pytest.raises(FileNotFoundError, match="PIPEC_ARTIFACT_ROOT"):
        namespace["_pipec_get"]({"pickle": str(tmp_path / "elsewhere.pickle")})


# -- helper modules imported instead: a missing one fails the parse ----------


def test_imported_helpers_missing_from_the_path_fail_the_parse(tmp_path):
    root = write_tree(tmp_path / "src")
    compile_to(
        tmp_path / "dags", [root / "deploy_case.py"], settings=(("helpers", "import"),)
    )
    text = (tmp_path / "dags" / "deploy_case.py").read_text(encoding="utf-8")
    assert "def shout" not in text
    missing = AirflowSession(tmp_path / "missing", [])
    shutil.copytree(tmp_path / "dags", missing.dags, dirs_exist_ok=True)
    found = AirflowSession(tmp_path / "found", [root])
    shutil.copytree(tmp_path / "dags", found.dags, dirs_exist_ok=True)
    script = textwrap.dedent("""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder=sys.argv[1])
        print(json.dumps([sorted(bag.dag_ids), list(bag.import_errors.values())]))
        """)
    outcomes = []
    for session in (missing, found):
        proc = subprocess.run(
            [sys.executable, "-c", script, str(session.dags)],
            env=session.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        outcomes.append(json.loads(proc.stdout.splitlines()[-1]))
    dag_ids, errors = outcomes[0]
    assert dag_ids == [] and len(errors) == 1
    assert "deploy_helpers" in errors[0] and "PYTHONPATH" in errors[0]
    assert outcomes[1] == [["deploy_case"], []]


# -- what an Airflow DAG file must respect, checked at compile time ----------


def _compile_text(tmp_path: Path, source: str):
    path = tmp_path / "limits_src" / "case.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    result = load(path)
    assert result.module is not None, list(result.diagnostics)
    out = []
    for pipeline in result.module.pipelines:
        diagnostics = Diagnostics()
        emit = AirflowBackend(CompileOptions(), diagnostics).compile(pipeline)
        out.append((emit.text, [d for d in diagnostics if d.code != "PC603"]))
    return out


@pytest.mark.parametrize(
    "pipeline_name, detail",
    [
        ("a" * 251, "251 characters"),
        ("json", "shadow the module 'json'"),
        ("airflow", "shadow the module 'airflow'"),
        ("pickle", "shadow the module 'pickle'"),
    ],
)
def test_dag_ids_and_file_names_airflow_refuses_are_located_errors(
    tmp_path, pipeline_name, detail
):
    ((_, diagnostics),) = _compile_text(
        tmp_path,
        f"""
        from pipec import Pipeline, step

        @step(outputs=["x"])
        def one() -> int:
            return 1

        pipeline = Pipeline({pipeline_name!r}).add_step(one)
        """,
    )
    assert [d.code for d in diagnostics] == ["PC604"], diagnostics
    assert detail in diagnostics[0].message
    assert diagnostics[0].line == 8


def test_task_ids_over_airflows_limit_are_located_errors(tmp_path):
    long = "s" * 246  # its fan-out task "<name>-items" has 252 characters
    ((_, diagnostics),) = _compile_text(
        tmp_path,
        f"""
        from pipec import Pipeline, context, step

        ctx = context(xs=[1, 2])

        @step(outputs=["x"], foreach="xs")
        def {long}(xs: int) -> int:
            return xs

        pipeline = Pipeline("long_task", context=ctx).add_step({long})
        """,
    )
    assert [d.code for d in diagnostics] == ["PC604"], diagnostics
    assert "252 characters" in diagnostics[0].message


def test_durations_timedelta_cannot_hold_are_located_errors(tmp_path):
    ((_, diagnostics),) = _compile_text(
        tmp_path,
        """
        from pipec import Pipeline, step

        @step(outputs=["x"], timeout=1e15, retries=3, retry_delay=1e9, retry_backoff=1)
        def slow() -> int:
            return 1

        pipeline = Pipeline("slow").add_step(slow)
        """,
    )
    # (retry delays past 1e9 seconds are the frontend's PC202, which
    # timedelta always holds)
    assert sorted(d.code for d in diagnostics) == ["PC613"], diagnostics
    assert any("timeout of step 'slow' is 1e+15" in d.message for d in diagnostics)


def test_steps_named_like_builtins_and_runtime_names_load_and_run(tmp_path):
    ((text, diagnostics),) = _compile_text(
        tmp_path,
        """
        from pipec import Pipeline, step

        @step(outputs=["x"])
        def len() -> int:
            return 1

        @step(inputs=["x"], outputs=["y"])
        def task(x: int) -> int:
            return x + 1

        @step(inputs=["y"], outputs=["z"])
        def _pipec_run(y: int) -> int:
            return y + 1

        pipeline = Pipeline("named_like").add_step(len).add_step(task).add_step(_pipec_run)
        """,
    )
    assert diagnostics == []
    namespace: dict = {}
    exec(compile(text, "named_like.py", "exec"), namespace)
    assert sorted(namespace["dag"].task_dict) == ["_pipec_run", "len", "task"]


def test_a_tag_airflow_cannot_store_is_a_located_error(tmp_path):
    ((_, diagnostics),) = _compile_text(
        tmp_path,
        f"""
        from pipec import Pipeline, step

        @step(outputs=["x"])
        def one() -> int:
            return 1

        pipeline = Pipeline("tagged", tags=["ok", "{'t' * 101}"]).add_step(one)
        """,
    )
    assert [(d.code, d.line) for d in diagnostics] == [("PC604", 8)], diagnostics
    assert "101 characters; Airflow allows 100" in diagnostics[0].message
