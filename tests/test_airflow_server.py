"""Compiled DAGs dropped into a real Airflow 3 deployment: api-server,
scheduler (LocalExecutor) and dag-processor on 127.0.0.1, started in a
temporary folder with nothing but what the README says (the DAG files in
the DAGs folder; no pipec and no source tree on the path).  Each scenario
is triggered with its conf through the REST API, and its task states and
XCom results, read back through the REST API, must equal the local run's.
"""

from __future__ import annotations

import os
import pickle

import pytest

import matrix
from airflow_server import AirflowServer
from targets_airflow import STATUS, _aggregate, compile_to

pytestmark = [pytest.mark.slow, pytest.mark.server]

SCENARIOS = [
    s
    for s in matrix.SCENARIOS
    if s.id in ("etl", "gate_open", "fanout_upstream", "failure", "multi_module")
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("airflow_server")
    shapes = compile_to(root / "dags", sorted({s.file for s in SCENARIOS}))
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "PIPEC_")) and k != "PYTHONPATH"
    }
    base.update(TMPDIR=str(root), PYTHONDONTWRITEBYTECODE="1")
    server = AirflowServer(root, root / "dags", matrix.no_pipec_env(base=base))
    try:
        server.start()
        server.wait_for_dags(sorted({s.pipeline for s in SCENARIOS}))
        for scenario in SCENARIOS:
            workdir = root / "work" / scenario.id
            server.trigger(scenario.pipeline, scenario.id, scenario.context(workdir))
        server.trigger("etl", "typo", {"no_such_key": 1})
        states = {s.id: server.wait_for_run(s.pipeline, s.id) for s in SCENARIOS}
        states["typo"] = server.wait_for_run("etl", "typo")
        yield {"server": server, "shapes": shapes, "states": states}
    finally:
        server.stop()


def read_outcome(server: AirflowServer, scenario, shape: dict, state: str):
    tis = server.task_states(scenario.pipeline, scenario.id)
    statuses, outputs = {}, {}
    for step, info in shape.items():
        states = [STATUS.get(str(s), str(s)) for _, s in tis.get(step, [])]
        status = _aggregate(states)
        items = tis.get(step + "-items", [])
        if items and items[0][1] == "failed":
            status = "failed"
        statuses[step] = status
        if status != "succeeded":
            continue
        values = [
            server.xcom(scenario.pipeline, scenario.id, step, index)
            for index, _ in tis[step]
        ]
        for name in info["outputs"]:
            decoded = [_decode(v[name]) for v in values if v is not None]
            outputs[name] = decoded if info["foreach"] else decoded[0]
    return matrix.Outcome(state == "success", statuses, outputs)


def _decode(envelope: dict):
    import json

    if "json" in envelope:
        return json.loads(envelope["json"])
    with open(envelope["pickle"], "rb") as f:
        return pickle.load(f)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_a_real_deployment_runs_like_the_local_run(server, scenario, tmp_path):
    shape = server["shapes"][scenario.pipeline]
    actual = read_outcome(
        server["server"], scenario, shape, server["states"][scenario.id]
    )
    expected = matrix.local_outcome(scenario, tmp_path)
    matrix.assert_same(expected, actual, "airflow (real deployment)")


def test_a_conf_key_that_is_no_context_key_fails_the_run(server):
    assert server["states"]["typo"] == "failed"
    tis = server["server"].task_states("etl", "typo")
    first = next(iter(server["shapes"]["etl"]))
    assert tis[first] == [(-1, "failed")]
