"""Binding, order, output shapes and definition errors of local runs: the
local run executes the IR the frontend builds, the same IR the targets get."""

import pytest

from pipec.runner import PipelineError, normalize_outputs
from runner_util import import_module, run_source, write_module


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPEC_HOME", raising=False)


def test_binding_precedence_input_then_context_then_default(tmp_path):
    result = run_source(tmp_path, """
        @step(outputs=["x"])
        def make():
            return "from upstream"

        @step(inputs=["x"], outputs=["out"])
        def use(x, y, z="default z", w="default w"):
            return {"x": x, "y": y, "z": z, "w": w}

        # `x` is also a context key: the declared input wins.
        p = Pipeline("p", context=context(x="ctx x", y="ctx y", z="ctx z")).add_step(make).add_step(use)
    """, context={"z": "override z"})
    assert result.success
    assert result["out"] == {"x": "from upstream", "y": "ctx y", "z": "override z", "w": "default w"}
    assert result.context == {"x": "ctx x", "y": "ctx y", "z": "override z"}


def test_inputs_inferred_from_other_steps_outputs(tmp_path):
    result = run_source(tmp_path, """
        @step(outputs=["n"])
        def source():
            return 4

        @step(outputs=["m"])
        def square(n, power=2):
            return n ** power

        p = Pipeline("p").add_step(square).add_step(source)
    """)
    assert result["m"] == 16
    assert list(result.step_results) == ["source", "square"]


def test_declared_inputs_exclude_other_outputs(tmp_path):
    result = run_source(tmp_path, """
        @step(outputs=["n"])
        def source():
            return 4

        @step(inputs=[], outputs=["m"])
        def uses_context(n):
            return n

        p = Pipeline("p", context=context(n=10)).add_step(source).add_step(uses_context)
    """)
    assert result["m"] == 10


def test_unknown_override_key_lists_known_keys(tmp_path):
    with pytest.raises(ValueError, match=r"'nope'.*the context has: a, b"):
        run_source(tmp_path, """
            @step
            def s(a):
                return None

            p = Pipeline("p", context=context(a=1, b=2)).add_step(s)
        """, context={"nope": 3})


def test_definition_errors_are_the_frontend_diagnostics(tmp_path):
    path = write_module(tmp_path, """
        @step(inputs=["raww"], outputs=["a"])
        def one(raww, unbound):
            return 1

        @step(outputs=["a"])
        def two():
            return 2

        p = Pipeline("p").add_step(one).add_step(two)
    """)
    module = import_module(path)
    with pytest.raises(PipelineError) as info:
        module.p.run()
    problems = info.value.problems
    assert len(problems) >= 2 and all(p.startswith(path.name + ":") for p in problems)
    assert all("error:" in p and "[PC" in p for p in problems)


def test_pipeline_run_compiles_the_defining_module(tmp_path):
    """`pipeline.run()` runs the IR of the module file that created the
    pipeline: the steps run their carried code, not the imported module's
    functions (a change made to the imported module at run time is not
    seen, as on every target)."""
    path = write_module(tmp_path, """
        FACTOR = 2

        @step(outputs=["y"])
        def double(x):
            return x * FACTOR

        p = Pipeline("p", context=context(x=21)).add_step(double)
    """)
    module = import_module(path)
    module.FACTOR = 100
    assert module.p.run()["y"] == 42


def test_pipeline_defined_in_a_function_is_a_clear_error(tmp_path):
    path = write_module(tmp_path, """
        def make():
            @step(outputs=["y"])
            def s():
                return 1
            return Pipeline("inner").add_step(s)
    """)
    with pytest.raises(PipelineError, match=r"flow_\d+.py:8:12: error: .*\[PC401\]"):
        import_module(path).make().run()


def test_order_is_dependency_order_with_ties_in_add_order(tmp_path):
    result = run_source(tmp_path, """
        @step(outputs=["d"])
        def d(b, c):
            return 0

        @step(outputs=["b"])
        def b(a):
            return 0

        @step(outputs=["x"])
        def x():
            return 0

        @step(outputs=["a"])
        def a():
            return 0

        @step(outputs=["c"])
        def c(a):
            return 0

        p = Pipeline("p").add_step(d).add_step(b).add_step(x).add_step(a).add_step(c)
    """)
    assert result.success
    # x and a are ready first (x added earlier); then b (added before c), c, d.
    assert list(result.step_results) == ["x", "a", "b", "c", "d"]


@pytest.mark.parametrize("value", ["(1, 2)", "[1, 2]", "{'b': 2, 'a': 1}"])
def test_multi_outputs_tuple_list_or_dict(tmp_path, value):
    result = run_source(tmp_path, f"""
        @step(outputs=["a", "b"])
        def pair():
            return {value}

        p = Pipeline("p").add_step(pair)
    """)
    assert result.success and (result["a"], result["b"]) == (1, 2)
    assert list(result.outputs) == ["a", "b"]


def test_single_output_is_the_value_itself_and_no_output_ignores_it(tmp_path):
    result = run_source(tmp_path, """
        @step(outputs=["t"])
        def one():
            return (1, 2)

        @step
        def none():
            return "ignored"

        p = Pipeline("p").add_step(one).add_step(none)
    """)
    assert result["t"] == (1, 2) and type(result["t"]) is tuple and list(result.outputs) == ["t"]


@pytest.mark.parametrize("value, fragment", [
    ("(1, 2, 3)", "declares 2 outputs"),
    ("{'a': 1}", "returned a dict with keys"),
    ("5", "declares 2 outputs"),
])
def test_wrong_output_shape_fails_the_step(tmp_path, value, fragment):
    result = run_source(tmp_path, f"""
        @step(outputs=["a", "b"])
        def bad():
            value = {value}  # through a name: a literal `return` of the wrong length is PC215
            return value

        p = Pipeline("p").add_step(bad)
    """)
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


def test_positional_only_parameters(tmp_path):
    result = run_source(tmp_path, """
        @step(outputs=["y"])
        def f(x, /, k=1):
            return x + k

        p = Pipeline("p", context=context(x=1)).add_step(f)
    """)
    assert result["y"] == 2
