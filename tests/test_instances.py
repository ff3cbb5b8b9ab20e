"""Step instances (`add_step(fn, name=..., inputs=..., params=..., ...)`),
explicit wiring at add_step and the fan-out forms, as IR: the binding order
of each parameter and the options each instance gets.  Their run-time
semantics on every target are proven by the differential scenarios of
tests/scenarios/instances.py; their misuses by
tests/diagnostics/instance_errors.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipec import ir
from pipec.frontend import load

HEADER = """\
from pipec import Pipeline, context, retry, step

@step(outputs=["x"])
def make():
    return 1

@step(inputs=["x"], outputs=["y"])
def use(x, c, d=4):
    return x + c + d

@step(outputs=["sum"], retries=1, timeout=5)
def add(a: int, b: int = 0) -> int:
    return a + b

@step(outputs=["r"])
@retry(max_attempts=4)
def retried(a):
    return a

"""


def compile_text(tmp_path: Path, body: str):
    path = tmp_path / "flow.py"
    path.write_text(HEADER + textwrap.dedent(body), encoding="utf-8")
    result = load(path)
    assert [d.format() for d in result.diagnostics if d.severity == "error"] == []
    (pipeline,) = result.module.pipelines
    return result.module, pipeline


def refs(step: ir.Step) -> dict:
    return {b.param: b.ref for b in step.params}


def test_one_function_is_several_steps_with_their_own_bindings(tmp_path: Path) -> None:
    _, pipeline = compile_text(
        tmp_path,
        """
        p = Pipeline("inst", context=context(b=100))
        p.add_step(add, name="first", params={"a": 1, "b": 2}, outputs=["s1"])
        p.add_step(add, name="second", inputs={"a": "s1"}, outputs=["s2"], retries=3)
        """,
    )
    first, second = pipeline.steps
    assert (first.name, first.function, first.outputs) == ("first", "add", ("s1",))
    assert (second.name, second.function, second.outputs) == ("second", "add", ("s2",))
    assert first.code is second.code or first.code == second.code
    # A literal beats the context key of the same name; without one, the key.
    assert refs(first) == {"a": ir.ConstantValue(1), "b": ir.ConstantValue(2)}
    assert refs(second) == {"a": ir.OutputRef("first", "s1"), "b": ir.ContextRef("b")}
    assert second.upstream == ("first",)
    # Options override the decorator's per instance; the others stay.
    assert (first.retry.max_attempts, second.retry.max_attempts) == (2, 4)
    assert first.timeout == second.timeout == 5.0


def test_binding_order_inputs_dict_then_params_then_list_input_then_context(
    tmp_path: Path,
) -> None:
    _, pipeline = compile_text(
        tmp_path,
        """
        p = Pipeline("order", context=context(c=7, x=0))
        p.add_step(make)
        # list-form input `x` given a literal instead; `c` the context key.
        p.add_step(use, params={"x": 5})
        p.add_step(use, name="wired", inputs={"c": "x", "x": "x"}, params={"d": 9},
                   outputs=["z"])
        """,
    )
    _, literal, wired = pipeline.steps
    assert refs(literal) == {
        "x": ir.ConstantValue(5), "c": ir.ContextRef("c"), "d": ir.DefaultValue(4)
    }
    assert literal.upstream == ()
    assert refs(wired) == {
        "x": ir.OutputRef("make", "x"),
        "c": ir.OutputRef("make", "x"),
        "d": ir.ConstantValue(9),
    }


def test_an_instance_setting_retries_replaces_the_functions_retry(tmp_path: Path) -> None:
    _, pipeline = compile_text(
        tmp_path,
        """
        p = Pipeline("retries")
        p.add_step(retried, params={"a": 1})
        p.add_step(retried, name="once", params={"a": 2}, retries=0, outputs=["r2"])
        """,
    )
    kept, once = pipeline.steps
    assert kept.retry.max_attempts == 4
    assert once.retry.max_attempts == 1


def test_decorator_params_merge_with_the_instances(tmp_path: Path) -> None:
    module, pipeline = compile_text(
        tmp_path,
        """
        @step(outputs=["sq"], foreach="v", params={"v": [1, 2], "k": 3})
        def power(v, k):
            return v ** k

        p = Pipeline("merged", context=context(v=[0]))
        p.add_step(make)
        p.add_step(power)
        p.add_step(power, name="squares", params={"k": 2}, outputs=["sq2"])
        p.add_step(power, name="wired", inputs={"v": "x"}, foreach=None, outputs=["sq3"])
        """,
    )
    _, base, squares, wired = pipeline.steps
    assert refs(base) == {"v": ir.ConstantValue([1, 2]), "k": ir.ConstantValue(3)}
    assert base.foreach == "v"
    assert refs(squares) == {"v": ir.ConstantValue([1, 2]), "k": ir.ConstantValue(2)}
    # The instance's wiring drops the decorator's literal for that parameter.
    assert refs(wired) == {"v": ir.OutputRef("make", "x"), "k": ir.ConstantValue(3)}
    assert wired.foreach is None


def test_foreach_key_and_the_ir_json_round_trip(tmp_path: Path) -> None:
    module, pipeline = compile_text(
        tmp_path,
        """
        @step(outputs=["rows"])
        def rows():
            return [{"a": 1}]

        p = Pipeline("keyed")
        p.add_step(rows)
        p.add_step(make, name="plain")
        p.add_step(add, foreach="a", inputs={"a": "rows"}, foreach_key="a")
        """,
    )
    keyed = pipeline.step("add")
    assert (keyed.foreach, keyed.foreach_key) == ("a", "a")
    assert ir.from_json(ir.to_json(module)) == module
    # Unused, the new field leaves the IR's JSON as it was.
    plain = ir.to_data(module)["pipelines"][0]["steps"][1]
    assert plain["name"] == "plain" and "foreach_key" not in plain
    assert ir.to_data(module)["pipelines"][0]["steps"][2]["foreach_key"] == "a"


def test_options_in_an_unrolled_loop(tmp_path: Path) -> None:
    _, pipeline = compile_text(
        tmp_path,
        """
        p = Pipeline("looped", context=context(c=1))
        for s in (make, use):
            p.add_step(s, retries=2)
        """,
    )
    assert [s.retry.max_attempts for s in pipeline.steps] == [3, 3]


def test_add_step_options_at_import_time() -> None:
    from pipec import Pipeline, step

    @step(outputs=["sum"])
    def add(a, b):
        return a + b

    p = Pipeline("imported")
    p.add_step(add, name="first", params={"a": 1, "b": 2}, outputs=["s1"])
    p.add_step(add, name="second", inputs={"a": "s1"}, params={"b": 3}, outputs=["s2"])
    assert [s.name for s in p.steps] == ["first", "second"]
    assert [s.outputs for s in p.steps] == [("s1",), ("s2",)]
    with pytest.raises(TypeError, match="unknown add_step option"):
        p.add_step(add, name="third", retires=1)
    with pytest.raises(ValueError, match="already has a step named"):
        p.add_step(add, name="first")
