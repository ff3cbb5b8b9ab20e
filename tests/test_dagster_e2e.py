"""End to end: every scenario's compiled Dagster job runs for real (one
driver process, a real instance in a temporary DAGSTER_HOME, pipec
unimportable) and must give the same statuses, outputs (values and types)
and success as the local run.  In the same process, `dagster job execute -f
FILE` runs a definitions module (with a run config file overriding the
context), `dagster definitions validate -f FILE` loads one with a schedule,
and a run config key that is no context key is rejected."""

from __future__ import annotations

import pytest

import matrix
import targets_dagster

pytest.importorskip("dagster")


@pytest.fixture(scope="session")
def dagster_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("dagster_e2e")
    defs = base / "defs"
    config = base / "closed.yaml"
    config.write_text("resources:\n  context:\n    config:\n      threshold: 0.99\n", encoding="utf-8")
    commands = [
        {"argv": ["PYTHON", "-m", "dagster", "job", "execute", "-f", str(defs / "etl" / "etl.py")], "cwd": str(base)},
        {"argv": ["PYTHON", "-m", "dagster", "job", "execute", "-f", str(defs / "failure" / "failing.py")],
         "cwd": str(base)},
        {"argv": ["PYTHON", "-m", "dagster", "job", "execute", "-f", str(defs / "gate_open" / "ml_training.py"),
                  "-c", str(config)], "cwd": str(base)},
        {"argv": ["PYTHON", "-m", "dagster", "definitions", "validate", "-f",
                  str(defs / "gate_open" / "ml_training.py")], "cwd": str(base)},
    ]
    return targets_dagster.run_scenarios(matrix.SCENARIOS, base, commands)


def test_pipec_is_blocked_in_the_driver(dagster_runs):
    matrix.assert_pipec_blocked()
    assert dagster_runs["blocked"] is True


@pytest.mark.parametrize("scenario", matrix.SCENARIOS, ids=matrix.SCENARIO_IDS)
def test_same_outcome_as_local_run(scenario, dagster_runs, tmp_path):
    run = dagster_runs["runs"][scenario.id]
    assert "error" not in run, run.get("error")
    actual = targets_dagster.outcome(scenario, run)
    expected = matrix.local_outcome(scenario, tmp_path)
    matrix.assert_same(expected, actual, "dagster")


def test_scenarios_cover_every_status(dagster_runs):
    """Skips, failures, upstream failures, retries and the fallback all
    happen on Dagster (so the comparisons above cannot pass vacuously)."""
    seen = set()
    for scenario in matrix.SCENARIOS:
        seen |= set(targets_dagster.outcome(scenario, dagster_runs["runs"][scenario.id]).statuses.values())
    assert {"succeeded", "skipped", "failed", "upstream_failed"} <= seen
    resilient = dagster_runs["runs"]["retries_fallback"]
    # flaky_fetch failed twice, retried after exactly 0.2 s then 0.4 s.
    retries = [message for _, kind, message in resilient["ops"]["flaky_fetch"] if kind == "retry"]
    assert len(retries) == 2 and "in 0.2 seconds" in retries[0] and "in 0.4 seconds" in retries[1], retries
    # fetch_prices failed on both attempts; its fallback gave the outputs.
    assert [kind for _, kind, _ in resilient["ops"]["fetch_prices"]].count("retry") == 1
    assert any("using fallback 'default_prices'" in line for line in resilient["logs"]["fetch_prices"])


def test_unknown_run_config_key_is_rejected(dagster_runs):
    message = dagster_runs["rejected"]
    assert message is not None and "no_such_key" in message, message


def test_dagster_cli_runs_and_loads_the_files(dagster_runs):
    by_name = {(argv[3], argv[-1] if argv[-2] == "-f" else argv[-3]): (code, out)
               for argv, code, out in dagster_runs["commands"]}
    outputs = {key[1].rsplit("/", 1)[-1] + ":" + key[0]: value for key, value in by_name.items()}
    code, out = outputs["etl.py:job"]
    assert code == 0 and "RUN_SUCCESS" in out, out
    code, out = outputs["failing.py:job"]
    assert code != 0 and "ZeroDivisionError" in out, out
    code, out = outputs["ml_training.py:job"]
    assert code == 0 and "pipec: skipped" in out, out
    code, out = outputs["ml_training.py:definitions"]
    assert code == 0 and "Validation successful" in out, out
