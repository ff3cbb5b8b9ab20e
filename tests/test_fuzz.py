"""Differential fuzzing (tests/fuzz/): random valid pipelines must run the
same locally and on Airflow, Kubeflow, Prefect and Dagster.

- the generator's modules pass `pipec check`, and a seed always gives the
  same modules;
- the comparison is type-exact (and can fail);
- a small fixed-seed batch agrees on the four real targets; a larger one
  is `slow` (`python scripts/fuzz.py` runs any seed and count by hand);
- the reproducers in tests/fuzz/found/ are differences found by the fuzzer:
  each not fixed yet is an `xfail(strict=True)` on the targets where it
  differs, so it turns into a failure once fixed; it then moves from FOUND
  to FIXED and stays as a regression test.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import matrix
from fuzz import compare, harness, model, strategies

FOUND_DIR = Path(__file__).parent / "fuzz" / "found"

# Fast enough for every run of the suite: small pipelines, every target.
SMALL_SEED, SMALL_COUNT = 13, 4

# Reproducer module -> {target: why it differs}.  Move an entry to FIXED when
# its fix is merged (the strict xfail then fails until it is moved).
FOUND: dict[str, dict[str, str]] = {}

# Reproducers whose difference is fixed: they stay as regression tests on
# the targets where they differed.
FIXED: dict[str, tuple[str, ...]] = {
    "airflow_default_tuple": ("airflow",),
    # the local run now leaves defaults to the function, as every target does
    "dagster_empty_tuple_default": ("dagster",),
    # a foreach step's `when` runs once, on the whole list, in a task of its own
    "prefect_empty_foreach_when_false": ("prefect",),
    "prefect_foreach_when_whole_list": ("prefect",),
    # over an empty list, a foreach step still takes its status from its
    # other upstream steps (`_pipec_fanout`)
    "prefect_empty_foreach_failed_upstream": ("prefect",),
    "prefect_empty_foreach_skipped_upstream": ("prefect",),
    # a step with several upstream steps, one of which may be skipped, runs
    # by none_failed and skips itself (Airflow's all_success would skip it
    # before another upstream step fails)
    "airflow_skip_before_upstream_failed": ("airflow",),
}


def test_generated_modules_pass_check_and_a_seed_is_reproducible(tmp_path):
    first = strategies.batch(3, 25)
    assert [model.source(p) for p in first] == [model.source(p) for p in strategies.batch(3, 25)]
    assert len({model.source(p) for p in first}) == len(first) == 25
    cases = harness.write_cases(first, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "pipec.cli", "check", *(str(c.file) for c in cases)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_generator_covers_the_constructs():
    """Over a modest batch, every construct the fuzzer promises shows up."""
    pipelines = strategies.batch(5, 60)
    steps = [s for p in pipelines for s in p.steps]
    seen = {
        "foreach": any(s.foreach for s in steps),
        "empty foreach": any(s.foreach and dict(p.context).get(s.foreach) == [] for p in pipelines for s in p.steps),
        "when": any(s.when for s in steps),
        "retry succeeds late": any(s.retry and 1 < s.retry.succeed_on <= s.retry.attempts for s in steps),
        "retry exhausted": any(s.retry and s.retry.succeed_on > s.retry.attempts for s in steps),
        "fallback": any(s.fallback for s in steps),
        "failure": any(s.fail for s in steps),
        "override": any(p.overrides for p in pipelines),
        "diamond": any(len(s.inputs) >= 2 for s in steps),
        "default": any(p.source == "default" for s in steps for p in s.params),
    }
    assert all(seen.values()), [k for k, v in seen.items() if not v]
    text = "".join(model.source(p) for p in pipelines)
    for construct in ("frozenset(", "b'", "set()", "@retry(", "retries=", "@on_failure(", "@when(lambda", "def gate_"):
        assert construct in text, construct


def test_instances_feature_generates_instances_wiring_and_literals(tmp_path):
    """With "instances", steps are added as instances (options at add_step),
    wired by `inputs` dicts and given `params` literals; `pipec check`
    accepts every module.  (`scripts/fuzz.py --features instances` runs
    them on every target.)"""
    pipelines = strategies.batch(7, 20, frozenset({"instances"}))
    steps = [s for p in pipelines for s in p.steps]
    assert any(s.options_at == "add_step" for s in steps)
    assert any(s.wiring for s in steps)
    assert any(s.constants for s in steps)
    text = "".join(model.source(p) for p in pipelines)
    for construct in (", name='", "params={", "inputs={"):
        assert construct in text, construct
    cases = harness.write_cases(pipelines, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "pipec.cli", "check", *(str(c.file) for c in cases)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


LANGUAGE = strategies.expand(["language"])


def _constructs(pipelines) -> set[str]:
    """The language constructs the pipelines use."""
    seen = set()
    for p in pipelines:
        seen |= {"loop"} if p.loop else set()
        seen |= {"pipeline max_parallel"} if p.max_parallel else set()
        for s in p.steps:
            seen |= {f"trigger {s.trigger}"} if s.trigger else set()
            literal = any(q.source == "constant" and q.name == s.foreach for q in s.params)
            for name, used in (("after", s.after), ("final", s.final), ("foreach_key", s.foreach_key),
                               ("foreach literal", literal), ("wiring", s.wiring),
                               ("max_parallel", s.max_parallel), ("cache_ttl", s.cache_ttl)):
                seen |= {name} if used else set()
    return seen


ALL_CONSTRUCTS = {"after", "final", "foreach_key", "foreach literal", "wiring", "max_parallel", "cache_ttl", "loop",
                  "pipeline max_parallel", "trigger all_done", "trigger none_failed", "trigger one_succeeded"}


def test_language_features_generate_every_construct_and_pass_check(tmp_path):
    """With the language's flags ("language"), the generator writes every
    ordering, fan-out and limit form, only in deterministic places, and
    `pipec check` accepts every module."""
    pipelines = strategies.batch(7, 40, LANGUAGE)
    assert _constructs(pipelines) == ALL_CONSTRUCTS
    text = "".join(model.source(p) for p in pipelines)
    for construct in ("after=[", "trigger='all_done'", "final=True", "def s", "statuses", "foreach_key='id'",
                      "max_parallel=", "cache_ttl=", "for each in (", "for each in [", "inputs={"):
        assert construct in text, construct
    for p in pipelines:
        steps = {s.name: s for s in p.steps}
        for s in p.steps:
            if s.trigger == "one_succeeded":  # Airflow starts it when one upstream step succeeded
                assert not [q for q in s.params if q.source == "output"] and s.after, s
                assert s.when is None or s.when.source in dict(p.context), s
            if s.trigger or s.after:
                assert s.foreach is None, s  # PC601 on Airflow and Prefect
            assert all(not steps[a].final for a in s.after)
        assert sum(s.final for s in p.steps) <= 1
    cases = harness.write_cases(pipelines, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "pipec.cli", "check", *(str(c.file) for c in cases)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_target_that_refuses_a_construct_is_counted_not_a_difference(tmp_path):
    """KFP refuses a final step and trigger rules (PC601 only): the harness
    compiles the rest of the batch and counts the refused pipeline; an
    error other than PC601 stays a difference."""
    broken = tmp_path / "broken.py"
    broken.write_text("from pipec import Pipeline, step\n\n\n@step\ndef lonely(x):\n    return x\n\n\n"
                      'pipeline = Pipeline("broken")\npipeline.add_step(lonely)\n')  # PC203: x is bound to nothing
    cases = [harness.Case("anyway", matrix.SCENARIO_DIR / "anyway.py"), harness.Case("etl", matrix.EXAMPLES / "etl.py"),
             harness.Case("broken", broken)]
    batch = harness.Batch(cases, tmp_path / "work")
    _, compiled = batch.compile("kubeflow", ["anyway", "etl", "broken"])
    assert compiled == ["etl"]
    assert batch.report.refused == {"kubeflow": ["anyway"]}
    assert [(d.pipeline, d.target) for d in batch.report.differences] == [("broken", "kubeflow")]


# A few pipelines with the language's constructs, run locally and on
# Airflow (which expresses them all) and KFP (which refuses trigger rules
# and final steps: those pipelines are counted as refused there).
LANGUAGE_SEED, LANGUAGE_COUNT = 4, 4


@pytest.mark.slow
def test_language_batch_agrees_on_airflow_and_kubeflow(tmp_path):
    pipelines = strategies.batch(LANGUAGE_SEED, LANGUAGE_COUNT, LANGUAGE)
    assert _constructs(pipelines) >= {"after", "final", "foreach_key", "foreach literal", "wiring", "loop",
                                      "trigger all_done", "trigger one_succeeded", "max_parallel", "cache_ttl"}
    report = harness.run(pipelines, tmp_path, ["airflow", "kubeflow"], progress=lambda _: None)
    assert not report.differences, "\n".join(map(str, report.differences))
    refused = report.refused.get("kubeflow", [])
    assert refused == [p.name for p in pipelines if any(s.final or s.trigger for s in p.steps)]
    assert report.ran == {"local": LANGUAGE_COUNT, "airflow": LANGUAGE_COUNT, "kubeflow": LANGUAGE_COUNT - len(refused)}


@pytest.mark.parametrize(
    "a, b",
    [
        ((1, 2), [1, 2]),
        (1, 1.0),
        (1, True),
        ({1}, {1.0}),
        (frozenset({1}), {1}),
        ({1: "x"}, {"1": "x"}),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        (0.0, -0.0),
        ([{"k": (1,)}], [{"k": [1]}]),
        (b"x", "x"),
    ],
)
def test_comparison_is_type_exact(a, b):
    assert compare.exact(a, a) and compare.exact(b, b)
    assert not compare.exact(a, b)
    expected = matrix.Outcome(True, {"s": "succeeded"}, {"o": a})
    assert compare.differences(expected, matrix.Outcome(True, {"s": "succeeded"}, {"o": b}))
    assert compare.differences(expected, matrix.Outcome(False, {"s": "failed"}, {})) == [
        "run success: local True, target False",
        "step s: local succeeded, target failed",
        f"output o: missing on the target; local {compare.show(a)}",
    ]


def _assert_no_difference(report: harness.Report, count: int, targets=harness.TARGETS) -> None:
    assert not report.differences, "\n".join(map(str, report.differences))
    assert report.ran == {"local": count, **{t: count for t in targets}}


@pytest.fixture(scope="module")
def small_batch(tmp_path_factory):
    pipelines = strategies.batch(SMALL_SEED, SMALL_COUNT)
    return harness.run(pipelines, tmp_path_factory.mktemp("small"), progress=lambda _: None)


# Targets on which the fixed-seed batch differs today (a strict xfail each).
SMALL_XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("target", [
    pytest.param(t, marks=[pytest.mark.xfail(strict=True, reason=SMALL_XFAIL[t])] if t in SMALL_XFAIL else [])
    for t in harness.TARGETS
])
def test_fixed_seed_batch_agrees_on_every_target(small_batch, target):
    assert small_batch.ran["local"] == small_batch.ran[target] == SMALL_COUNT
    found = [d for d in small_batch.differences if d.target in (target, "check", "local")]
    assert not found, "\n".join(map(str, found))


@pytest.mark.slow
@pytest.mark.server
def test_larger_batch_agrees_on_every_target(tmp_path):
    pipelines = strategies.batch(101, 30)
    targets = list(harness.TARGETS)
    _assert_no_difference(harness.run(pipelines, tmp_path, targets, progress=lambda _: None), 30, targets)


@pytest.fixture(scope="module")
def found_runs(tmp_path_factory):
    cases = [harness.Case(path.stem, path, _overrides(path)) for path in sorted(FOUND_DIR.glob("*.py"))]
    targets = sorted({t for found in [*FOUND.values(), *FIXED.values()] for t in found})
    report = harness.run_cases(cases, tmp_path_factory.mktemp("found"), targets, progress=lambda _: None)
    return {(d.pipeline, d.target): d for d in report.differences}


def _overrides(path: Path) -> tuple:
    """The run's overrides: the module's `RUN_OVERRIDES = {...}` literal."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["RUN_OVERRIDES"]:
            return tuple(ast.literal_eval(node.value).items())
    return ()


def _found_params():
    for name, targets in sorted(FOUND.items()):
        for target, reason in sorted(targets.items()):
            yield pytest.param(name, target, id=f"{name}-{target}",
                               marks=[pytest.mark.slow, pytest.mark.xfail(strict=True, reason=reason)])
    for name, targets in sorted(FIXED.items()):
        for target in targets:
            yield pytest.param(name, target, id=f"{name}-{target}", marks=[pytest.mark.slow])


def test_every_reproducer_is_listed():
    assert sorted(p.stem for p in FOUND_DIR.glob("*.py")) == sorted([*FOUND, *FIXED])
    assert not set(FOUND) & set(FIXED)


@pytest.mark.parametrize("name, target", list(_found_params()))
def test_found_difference_is_fixed(found_runs, name, target):
    # a reproducer pipec rejects, or the local run cannot run, proves nothing
    for where in ("check", "local", target):
        difference = found_runs.get((name, where))
        assert difference is None, str(difference)


def test_objects_of_carried_classes_compare_by_class_name_and_fields():
    """The local run returns live objects; the drivers hand them back as
    `matrix.comparable` makes them (or as objects of another copy of the
    class): the same value either way, a different field is a difference."""
    import dataclasses

    from matrix import Outcome, comparable

    R0 = dataclasses.make_dataclass("R0", [("f0", list)])
    Copy = dataclasses.make_dataclass("R0", [("f0", list)])
    local = Outcome(True, {"s": "succeeded"}, {"x": R0([1, (2,)])})
    for value in (comparable(R0([1, (2,)])), Copy([1, (2,)])):
        assert compare.differences(local, Outcome(True, {"s": "succeeded"}, {"x": value})) == []
    assert compare.differences(local, Outcome(True, {"s": "succeeded"}, {"x": R0([1, [2]])}))


def test_steps_the_runner_never_started_are_not_compared():
    """kfp.local stops at its first failed task; the steps it never started
    (and their outputs) are unknown there, not skipped."""
    from matrix import Outcome

    local = Outcome(False, {"a": "failed", "b": "failed", "c": "succeeded"}, {"c_out": 1})
    stopped = Outcome(False, {"a": "failed", "b": "not_run", "c": "succeeded"}, {"c_out": 1}, {"b": ()})
    assert compare.differences(local, stopped) == []
    skipped = Outcome(False, {"a": "failed", "b": "skipped", "c": "succeeded"}, {"c_out": 1})
    assert compare.differences(local, skipped) == ["step b: local failed, target skipped"]
