"""Binding, order, output shapes and definition errors of local runs."""

import pytest

from pipec import Pipeline, context, step, when
from pipec.runner import PipelineError, normalize_outputs, run_pipeline


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPEC_HOME", raising=False)


def test_binding_precedence_input_then_context_then_default():
    seen = {}

    @step(outputs=["x"])
    def make():
        return "from upstream"

    @step(inputs=["x"], outputs=["out"])
    def use(x, y, z="default z", w="default w"):
        seen.update(x=x, y=y, z=z, w=w)
        return 1

    # `x` is also a context key: the declared input wins.
    p = Pipeline("p", context=context(x="ctx x", y="ctx y", z="ctx z")).add_step(make).add_step(use)
    result = run_pipeline(p, context={"z": "override z"})
    assert result.success
    assert seen == {"x": "from upstream", "y": "ctx y", "z": "override z", "w": "default w"}
    assert result.context == {"x": "ctx x", "y": "ctx y", "z": "override z"}


def test_inputs_inferred_from_other_steps_outputs():
    @step(outputs=["n"])
    def source():
        return 4

    @step(outputs=["m"])
    def square(n, power=2):
        return n ** power

    result = run_pipeline(Pipeline("p").add_step(square).add_step(source))
    assert result["m"] == 16
    assert list(result.step_results) == ["source", "square"]


def test_declared_inputs_exclude_other_outputs():
    @step(outputs=["n"])
    def source():
        return 4

    @step(inputs=[], outputs=["m"])
    def uses_context(n):
        return n

    p = Pipeline("p", context=context(n=10)).add_step(source).add_step(uses_context)
    assert run_pipeline(p)["m"] == 10


def test_unknown_override_key_lists_known_keys():
    @step
    def s(a):
        return None

    p = Pipeline("p", context=context(a=1, b=2)).add_step(s)
    with pytest.raises(ValueError, match=r"'nope'.*the context has: a, b"):
        run_pipeline(p, context={"nope": 3})


def test_definition_errors_are_reported_together():
    @step(inputs=["raww"], outputs=["a"])
    def one(raww, unbound):
        return 1

    @step(outputs=["a"])
    def two():
        return 2

    with pytest.raises(PipelineError) as info:
        run_pipeline(Pipeline("p").add_step(one).add_step(two))
    text = str(info.value)
    assert "takes input 'raww', which no step" in text
    assert "parameter 'unbound' of step 'one' is bound to nothing" in text
    assert "output 'a' is produced by both step 'one' and step 'two'" in text
    assert len(info.value.problems) == 3


def test_when_predicate_must_name_outputs_or_context():
    @step
    @when(lambda missing: True)
    def s():
        return None

    with pytest.raises(PipelineError, match="predicate of step 's' names 'missing'"):
        run_pipeline(Pipeline("p").add_step(s))


def test_cycle_is_a_clear_error():
    @step(outputs=["a"])
    def first(b):
        return b

    @step(outputs=["b"])
    def second(a):
        return a

    with pytest.raises(PipelineError, match=r"steps form a cycle: first -> second -> first"):
        run_pipeline(Pipeline("p").add_step(first).add_step(second))


def test_order_is_dependency_order_with_ties_in_add_order():
    calls = []

    def make(name, inputs, outputs):
        def fn(**kwargs):
            calls.append(name)
            return tuple(range(len(outputs))) if len(outputs) > 1 else 0
        fn.__name__ = name
        import inspect
        fn.__signature__ = inspect.Signature(
            [inspect.Parameter(i, inspect.Parameter.KEYWORD_ONLY) for i in inputs])
        return step(outputs=list(outputs))(fn)

    p = Pipeline("p")
    p.add_step(make("d", ["b", "c"], ["d"]))
    p.add_step(make("b", ["a"], ["b"]))
    p.add_step(make("x", [], ["x"]))
    p.add_step(make("a", [], ["a"]))
    p.add_step(make("c", ["a"], ["c"]))
    result = run_pipeline(p)
    assert result.success
    # x and a are ready first (x added earlier); then b (added before c), c, d.
    assert calls == ["x", "a", "b", "c", "d"]
    assert list(result.step_results) == calls


@pytest.mark.parametrize("value", [(1, 2), [1, 2], {"b": 2, "a": 1}])
def test_multi_outputs_tuple_list_or_dict(value):
    @step(outputs=["a", "b"])
    def pair():
        return value

    result = run_pipeline(Pipeline("p").add_step(pair))
    assert result.success and (result["a"], result["b"]) == (1, 2)
    assert list(result.outputs) == ["a", "b"]


def test_single_output_is_the_value_itself_and_no_output_ignores_it():
    @step(outputs=["t"])
    def one():
        return (1, 2)

    @step
    def none():
        return "ignored"

    result = run_pipeline(Pipeline("p").add_step(one).add_step(none))
    assert result["t"] == (1, 2) and list(result.outputs) == ["t"]


@pytest.mark.parametrize("value, fragment", [
    ((1, 2, 3), "declares 2 outputs"),
    ({"a": 1}, "returned a dict with keys"),
    (5, "declares 2 outputs"),
])
def test_wrong_output_shape_fails_the_step(value, fragment):
    @step(outputs=["a", "b"])
    def bad():
        return value

    result = run_pipeline(Pipeline("p").add_step(bad))
    assert not result.success
    r = result.step_results["bad"]
    assert r.status == "failed" and r.error.startswith("ValueError: step 'bad'") and fragment in r.error


def test_normalize_outputs_function():
    assert normalize_outputs("s", [], 3) == {}
    assert normalize_outputs("s", ["a"], {"x": 1}) == {"a": {"x": 1}}
    assert normalize_outputs("s", ["a", "b"], [1, 2]) == {"a": 1, "b": 2}
    assert list(normalize_outputs("s", ["a", "b"], {"b": 2, "a": 1})) == ["a", "b"]
    with pytest.raises(ValueError, match="step 's'"):
        normalize_outputs("s", ["a", "b"], {"a": 1, "c": 2})


def test_positional_only_parameters():
    @step(outputs=["y"])
    def f(x, /, k=1):
        return x + k

    p = Pipeline("p", context=context(x=1)).add_step(f)
    assert run_pipeline(p)["y"] == 2
