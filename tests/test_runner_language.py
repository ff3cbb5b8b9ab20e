"""The runtime library: decorators keep functions callable, options land on
the Step, misuse is reported at decoration time."""

import inspect

import pytest

import pipec
from pipec import Pipeline, context, on_failure, retry, step, when
from pipec.language import Step


def test_bare_step_keeps_the_function_callable_and_named():
    @step
    def add(a, b=2):
        """Adds."""
        return a + b

    assert isinstance(add, Step)
    assert add(1) == 3 and add(1, b=5) == 6
    assert add.name == "add" and add.__name__ == "add" and add.__doc__ == "Adds."
    assert add.outputs == () and add.inputs is None
    assert str(inspect.signature(add)) == "(a, b=2)"


def test_step_options_are_recorded():
    @step(name="fit", inputs=["X"], outputs=["model", "score"], retries=2, retry_delay=5,
          retry_backoff=2.0, timeout=60, cache=False, image="python:3.11-slim",
          packages=["scikit-learn>=1.3"], cpu="2", memory="4Gi", gpu=1)
    def train(X, n: int = 3):
        return X, n

    assert train.name == "fit" and train.inputs == ("X",) and train.outputs == ("model", "score")
    assert (train.max_attempts, train.retry_delay, train.retry_backoff) == (3, 5.0, 2.0)
    assert train.timeout == 60 and train.cache is False
    assert train.packages == ("scikit-learn>=1.3",) and train.image == "python:3.11-slim"
    assert (train.cpu, train.memory, train.gpu) == ("2", "4Gi", 1)
    assert train([1], 2) == ([1], 2)


def test_decorators_below_step_in_any_order():
    def fallback(x):
        return -1

    @step(outputs=["y"])
    @retry(max_attempts=4, delay=0.5, backoff=3.0)
    @on_failure(fallback)
    @when(lambda flag: flag)
    def a(x):
        return x

    @step(outputs=["y"])
    @when(lambda flag: flag)
    @on_failure(fallback)
    @retry(max_attempts=4, delay=0.5, backoff=3.0)
    def b(x):
        return x

    for s in (a, b):
        assert (s.max_attempts, s.retry_delay, s.retry_backoff) == (4, 0.5, 3.0)
        assert s.fallback is fallback and s.when(True) is True
        assert s(7) == 7


def test_decorator_above_step_is_an_error():
    with pytest.raises(TypeError, match="above @step"):
        @retry(max_attempts=2)
        @step
        def f():
            return 1


@pytest.mark.parametrize("options", [
    {"outputs": "model"}, {"retries": -1}, {"retry_backoff": 0.5}, {"timeout": 0}, {"bogus": 1},
])
def test_invalid_step_options(options):
    with pytest.raises(TypeError):
        step(**options)


def test_invalid_retry_options():
    with pytest.raises(TypeError, match="max_attempts"):
        retry(max_attempts=0)


def test_pipeline_add_step_checks():
    @step
    def s():
        return None

    p = Pipeline("p", context=context(a=1))
    assert p.add_step(s) is p
    with pytest.raises(ValueError, match="already has a step"):
        p.add_step(s)
    with pytest.raises(TypeError, match="not decorated"):
        p.add_step(lambda: None)
    assert p.name == "p" and p.context == {"a": 1} and p.enable_cache is True


def test_pipeline_run_calls_the_runner(tmp_path, monkeypatch):
    from runner_util import import_module, write_module

    monkeypatch.chdir(tmp_path)
    path = write_module(tmp_path, """
        @step(outputs=["y"])
        def double(x):
            return 2 * x

        p = Pipeline("p", context=context(x=2)).add_step(double)
    """)
    module = import_module(path)
    assert module.p.defined_in == str(path.resolve())
    result = module.p.run({"x": 5})
    assert result.success and result["y"] == 10


# The trigger rules, decided once (`_pipec_blocked` of the task runtime: the
# local run and the Prefect flows apply it; Airflow's trigger rules agree).
@pytest.mark.parametrize(
    "trigger, statuses, expected",
    [
        ("all_succeeded", ["succeeded", "skipped"], "skipped"),
        ("all_succeeded", ["skipped", "failed"], "upstream_failed"),
        ("all_succeeded", ["succeeded", "cached"], None),
        ("all_done", ["failed", "upstream_failed", "skipped"], None),
        ("none_failed", ["succeeded", "skipped"], None),
        ("none_failed", ["skipped", "skipped"], "skipped"),
        ("none_failed", ["succeeded", "upstream_failed"], "upstream_failed"),
        ("one_succeeded", ["failed", "cached"], None),
        ("one_succeeded", ["skipped", "skipped"], "skipped"),
        ("one_succeeded", ["skipped", "failed"], "upstream_failed"),
        ("one_succeeded", [], None),
    ],
)
def test_trigger_rules(trigger, statuses, expected):
    from pipec.runner.plan import blocked

    assert blocked(statuses, trigger) == expected
