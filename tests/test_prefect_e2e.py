"""End to end: every scenario's compiled Prefect flow runs for real (one
Prefect test harness for the session, pipec unimportable) and must give the
same statuses, outputs (values and types) and success as the local run; the
task run states Prefect recorded must say the same.  In the same session,
`python FILE` runs a flow file, and `prefect deploy` (Prefect's own loader
and server) accepts the generated deployment files."""

from __future__ import annotations

import pytest

import matrix
import targets_prefect
from pipec.backends.prefect import templated
from pipec.frontend import load

pytest.importorskip("prefect")


DEPLOYED = {  # pipeline -> module: a schedule, an @alias schedule, hostile values
    "ml_training": matrix.EXAMPLES / "training.py",
    "orders": matrix.EXAMPLES / "shop" / "pipelines.py",
    "orders_quick": matrix.EXAMPLES / "shop" / "pipelines.py",
    "hostile": matrix.SCENARIO_DIR / "hostile.py",
}
# Prefect-only cases: step names that are builtins the runtime calls,
# positional-only parameters.
PREFECT_SCENARIOS = (
    matrix.Scenario("shadowing", matrix.REPO / "tests" / "prefect_scenarios" / "shadowing.py", "shadowing"),
    matrix.Scenario("shadowing_n", matrix.REPO / "tests" / "prefect_scenarios" / "shadowing.py", "shadowing",
                    (("n", 2),)),
)


@pytest.fixture(scope="session")
def prefect_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("prefect_e2e")
    deploy_dir = base / "deploy"
    for path in sorted(set(DEPLOYED.values())):
        for emit in targets_prefect.compile_file(path)[0]:
            targets_prefect.write(emit, deploy_dir)
    commands = [
        {"argv": ["PYTHON", "-m", "prefect", "--no-prompt", "deploy", "--prefect-file", f"{name}.prefect.yaml", "--all",
                  "--pool", "pipec-e2e"],
         "cwd": str(deploy_dir)}
        for name in DEPLOYED
    ]
    scripts = base / "scripts"
    scripts.mkdir()
    for scenario in ("etl", "failure"):
        flow_file = base / "flows" / scenario / f"{next(s.pipeline for s in matrix.SCENARIOS if s.id == scenario)}.py"
        commands.append({"argv": ["PYTHON", str(flow_file)], "cwd": str(scripts)})
    return targets_prefect.run_scenarios(matrix.SCENARIOS + PREFECT_SCENARIOS, base, commands)


def test_pipec_is_blocked_in_the_driver(prefect_runs):
    matrix.assert_pipec_blocked()
    assert prefect_runs["blocked"] is True


@pytest.mark.parametrize("scenario", matrix.SCENARIOS, ids=matrix.SCENARIO_IDS)
def test_same_outcome_as_local_run(scenario, prefect_runs, tmp_path):
    run = prefect_runs["runs"][scenario.id]
    assert "error" not in run, run.get("error")
    actual = targets_prefect.outcome(run)
    # The flow's own verdict agrees with the flow run's final state.
    assert run["data"]["success"] == actual.success
    expected = matrix.local_outcome(scenario, tmp_path)
    matrix.assert_same(expected, actual, "prefect")
    pipeline = next(p for p in load(scenario.file).module.pipelines if p.name == scenario.pipeline)
    targets_prefect.check_task_states(pipeline, actual.statuses, run["tasks"])


@pytest.mark.parametrize("scenario", PREFECT_SCENARIOS, ids=[s.id for s in PREFECT_SCENARIOS])
def test_prefect_only_cases_match_the_local_run(scenario, prefect_runs, tmp_path):
    run = prefect_runs["runs"][scenario.id]
    assert "error" not in run, run.get("error")
    expected = matrix.local_outcome(scenario, tmp_path)
    assert expected.success and set(expected.statuses.values()) == {"succeeded"}
    matrix.assert_same(expected, targets_prefect.outcome(run), "prefect")


def test_scenarios_cover_every_status(prefect_runs):
    """The matrix exercises skips, failures, upstream failures and the
    fallback on Prefect (so the comparisons above cannot pass vacuously)."""
    seen = {s for run in prefect_runs["runs"].values() if "data" in run for s in run["data"]["statuses"].values()}
    assert {"succeeded", "skipped", "failed", "upstream_failed"} <= seen
    resilient = prefect_runs["runs"]["retries_fallback"]["tasks"]
    assert ("fetch_prices", "FAILED", "Failed") in resilient
    assert ("fetch_prices.on_failure", "COMPLETED", "Completed") in resilient
    # flaky_fetch failed twice and succeeded on its third attempt.
    flaky = [t for t in resilient if t[0] == "flaky_fetch"]
    assert flaky == [("flaky_fetch", "COMPLETED", "Completed")]


def test_metrics_are_a_table_artifact_keyed_by_the_step(prefect_runs):
    tables = [data for key, data in prefect_runs["artifacts"] if key == "evaluate"]
    expected = [{"output": "scores", "metric": "accuracy", "value": 1.0},
                {"output": "scores", "metric": "loss", "value": 0.25},
                {"output": "scores", "metric": "weights", "value": 3}]
    assert tables and all(table == expected for table in tables), prefect_runs["artifacts"]


def test_python_file_runs_the_flow_with_its_defaults(prefect_runs):
    commands = prefect_runs["commands"]
    by_file = {argv[-1].rsplit("/", 1)[-1]: (code, out) for argv, code, out in commands if argv[1] != "-m"}
    code, out = by_file["etl.py"]
    assert code == 0, out
    code, out = by_file["failing.py"]
    assert code != 0 and "divide" in out, out
    # Each ran once more than the scenario runs: `python FILE` ran the flow.
    runs = prefect_runs["flow_runs"]
    assert runs.count(("etl", "Completed")) == 2, runs
    assert runs.count(("failing", "Failed")) == 2, runs


def test_prefect_deploy_accepts_the_deployment_files(prefect_runs):
    for argv, code, out in prefect_runs["commands"]:
        if argv[1] == "-m":
            assert code == 0, out
    deployments = prefect_runs["deployments"]
    assert sorted(deployments) == sorted(DEPLOYED)
    for name, path in DEPLOYED.items():
        pipeline = next(p for p in load(path).module.pipelines if p.name == name)
        deployment = deployments[name]
        assert deployment["entrypoint"] == f"{name}.py:{name}"
        assert deployment["work_pool"] == "pipec-e2e"
        # Parameters that prefect deploy would template ("{{ ds }}") are left
        # to the flow's defaults; every other one arrives exactly.
        defaults = {c.name: c.default for c in pipeline.context if not templated(c.default)}
        assert matrix.strict_equal(deployment["parameters"], defaults)
        assert deployment["tags"] == [tag for tag in pipeline.tags if not templated(tag)]
        # Prefect stores "None" when there is no description, and templates
        # the one it takes from the flow (the flow file keeps it exactly).
        if pipeline.description and not templated(pipeline.description):
            assert deployment["description"] == pipeline.description
    assert deployments["ml_training"]["crons"] == [("0 3 * * *", "UTC")]
    assert deployments["orders"]["crons"] == [("0 * * * *", "UTC")]  # @hourly
    assert deployments["hostile"]["crons"] == []
    assert sorted(deployments["hostile"]["parameters"]) == ["count", "quotes", "shell", "text"]
