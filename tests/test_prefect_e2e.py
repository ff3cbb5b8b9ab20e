"""End to end: every scenario's compiled Prefect flow runs for real (one
Prefect test harness for the session, pipec unimportable) and must give the
same statuses, outputs (values and types) and success as the local run; the
task run states Prefect recorded must say the same."""

from __future__ import annotations

import pytest

import matrix
import targets_prefect
from pipec.frontend import load

pytest.importorskip("prefect")


@pytest.fixture(scope="session")
def prefect_runs(tmp_path_factory):
    return targets_prefect.run_scenarios(matrix.SCENARIOS, tmp_path_factory.mktemp("prefect_e2e"))


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
