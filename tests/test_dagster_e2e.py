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

pytestmark = pytest.mark.slow  # a few minutes: every scenario plus the dagster CLI


# Cases the shared scenarios do not reach, run on Dagster and locally alike:
# a timeout (with a retry), fan-out over an empty list and a skipped fan-out,
# a skipped step without outputs, None / list / dict context values, a
# positional-only parameter, and values that JSON cannot carry exactly.
EDGES = """\
import time

from pipec import Pipeline, context, step, when

ctx = context(empty=[], nothing=None, mixed=[1, "a", None, 2.5], table={"k": [True, None]}, n=3)


@step(outputs=["slow_result"], timeout=0.5, retries=1, retry_delay=0.1)
def slow(n: int) -> int:
    time.sleep(3)
    return n


@step(outputs=["after_slow"])
def after(slow_result: int) -> int:
    return slow_result


@step(outputs=["squares"], foreach="empty")
def square(empty: int) -> int:
    return empty * empty


@step(outputs=["square_count"])
def count_squares(squares: list) -> int:
    return len(squares)


@step(outputs=["gated"], foreach="mixed")
@when(lambda n: n > 5)
def gated(mixed) -> str:
    return repr(mixed)


@step(outputs=["values"])
def values(nothing, mixed: list, table: dict, n: int, /) -> tuple:
    return (nothing, mixed, table, n, type(n).__name__, frozenset({1}))


@step()
@when(lambda n: n > 5)
def never(values: tuple) -> None:
    raise AssertionError("never runs")


pipeline = Pipeline("edges", context=ctx)
pipeline.add_step(slow).add_step(after).add_step(square).add_step(count_squares)
pipeline.add_step(gated).add_step(values).add_step(never)
"""


@pytest.fixture(scope="session")
def edges(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dagster_edges")
    (folder / "edges.py").write_text(EDGES, encoding="utf-8")
    return matrix.Scenario("edges", folder / "edges.py", "edges")


@pytest.fixture(scope="session")
def dagster_runs(tmp_path_factory, edges):
    base = tmp_path_factory.mktemp("dagster_e2e")
    defs = base / "defs"
    config = base / "closed.yaml"
    config.write_text("resources:\n  context:\n    config:\n      threshold: 0.99\n", encoding="utf-8")
    # The CLI runs etl with Dagster's default executor (a process per op, so
    # values cross processes through the IO manager); the others in process.
    in_process = base / "in_process.yaml"
    in_process.write_text("execution:\n  config:\n    in_process: {}\n", encoding="utf-8")
    commands = [
        {"argv": ["PYTHON", "-m", "dagster", "job", "execute", "-f", str(defs / "etl" / "etl.py")], "cwd": str(base)},
        {"argv": ["PYTHON", "-m", "dagster", "job", "execute", "-c", str(in_process),
                  "-f", str(defs / "failure" / "failing.py")], "cwd": str(base)},
        {"argv": ["PYTHON", "-m", "dagster", "job", "execute", "-c", str(config), "-c", str(in_process),
                  "-f", str(defs / "gate_open" / "ml_training.py")], "cwd": str(base)},
        {"argv": ["PYTHON", "-m", "dagster", "definitions", "validate", "-f",
                  str(defs / "gate_open" / "ml_training.py")], "cwd": str(base)},
    ]
    # The same edge cases with the IO manager on object storage (fsspec's
    # in-memory filesystem), chosen in the run config.
    memory = {"resources": {"io_manager": {"config": {"base_path": "memory://pipec-artifacts"}}}}
    variants = {"edges_memory": (edges, memory)}
    return targets_dagster.run_scenarios(matrix.scenarios_for("dagster") + (edges,), base, commands, variants)


def test_pipec_is_blocked_in_the_driver(dagster_runs):
    matrix.assert_pipec_blocked()
    assert dagster_runs["blocked"] is True


@pytest.mark.parametrize("scenario", matrix.scenarios_for("dagster"), ids=lambda s: s.id)
def test_same_outcome_as_local_run(scenario, dagster_runs, tmp_path):
    run = dagster_runs["runs"][scenario.id]
    assert "error" not in run, run.get("error")
    actual = targets_dagster.outcome(scenario, run)
    expected = matrix.local_outcome(scenario, tmp_path)
    matrix.assert_same(expected, actual, "dagster")


def test_edge_cases_same_as_local_run(edges, dagster_runs, tmp_path):
    run = dagster_runs["runs"]["edges"]
    assert "error" not in run, run.get("error")
    actual = targets_dagster.outcome(edges, run)
    expected = matrix.local_outcome(edges, tmp_path)
    assert expected.statuses == {"slow": "failed", "after": "upstream_failed", "square": "succeeded",
                                 "count_squares": "succeeded", "gated": "skipped", "values": "succeeded",
                                 "never": "skipped"}
    matrix.assert_same(expected, actual, "dagster")
    # The timeout stopped each attempt, and the one retry happened.
    slow = run["ops"]["slow"]
    assert [kind for _, kind, _ in slow].count("retry") == 1
    assert "timed out after 0.5s" in [m for _, kind, m in slow if kind == "failure"][0]


def test_outputs_are_json_when_exact_else_pickles(dagster_runs, edges):
    """The IO manager's files under $DAGSTER_HOME/storage/pipec: JSON for a
    value JSON carries exactly, a pickle for a tuple holding a frozenset; and
    the same run on object storage (a URL base path) gives the same outcome."""
    storage = dagster_runs["storage"]
    assert list(storage.glob("*/count_squares/square_count.json"))
    assert list(storage.glob("*/values/values.pickle")) and not list(storage.glob("*/values/values.json"))
    on_object_storage = targets_dagster.outcome(edges, dagster_runs["runs"]["edges_memory"])
    matrix.assert_same(targets_dagster.outcome(edges, dagster_runs["runs"]["edges"]), on_object_storage, "dagster")
    assert "values" in on_object_storage.outputs


def test_scenarios_cover_every_status(dagster_runs):
    """Skips, failures, upstream failures, retries and the fallback all
    happen on Dagster (so the comparisons above cannot pass vacuously)."""
    seen = set()
    for scenario in matrix.scenarios_for("dagster"):
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
    outputs = {argv[-1].rsplit("/", 1)[-1] + ":" + argv[3]: (code, out) for argv, code, out in dagster_runs["commands"]}
    code, out = outputs["etl.py:job"]
    assert code == 0 and "RUN_SUCCESS" in out, out
    code, out = outputs["failing.py:job"]
    assert code != 0 and "ZeroDivisionError" in out, out
    code, out = outputs["ml_training.py:job"]
    assert code == 0 and "pipec: skipped" in out, out
    code, out = outputs["ml_training.py:definitions"]
    assert code == 0 and "Validation successful" in out, out
