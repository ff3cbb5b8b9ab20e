"""The language's static forms: what compiles to which IR, and the located
diagnostic for each misuse. Their run-time semantics on every target are
proven by the differential scenario tests/scenarios/language.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pipec import ir
from pipec.frontend import load

HEADER = """\
from pipec import Pipeline, step

@step(outputs=["a"])
def first():
    return 1

@step(outputs=["b"])
def second(a):
    return a + 1

@step(outputs=["c"])
def third(b):
    return b + 1

"""


def compile_text(tmp_path: Path, body: str):
    path = tmp_path / "flow.py"
    path.write_text(HEADER + textwrap.dedent(body), encoding="utf-8")
    return load(path)


def codes(result) -> list[tuple[str, int, int]]:
    return [(d.code, d.line, d.col) for d in result.diagnostics]


def step_names(result) -> list[str]:
    (pipeline,) = result.module.pipelines
    return [s.name for s in pipeline.steps]


def test_a_loop_over_a_literal_tuple_or_list_is_unrolled(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        """
        p = Pipeline("looped")
        for s in (first, second):
            p.add_step(s)
        for s in [third]:
            p.add_step(s)
        """,
    )
    assert codes(result) == []
    assert step_names(result) == ["first", "second", "third"]


def test_a_loop_over_anything_else_stays_pc401(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        """
        steps = (first, second, third)
        p = Pipeline("looped")
        for s in steps:
            p.add_step(s)
        """,
    )
    assert codes(result) == [("PC401", 19, 5)]
    assert "literal tuple or list" in result.diagnostics[0].message


def test_a_loop_element_that_is_no_step_is_located_at_the_element(
    tmp_path: Path,
) -> None:
    result = compile_text(
        tmp_path,
        """
        def plain():
            return 0

        p = Pipeline("looped")
        for s in (first, plain):
            p.add_step(s)
        """,
    )
    assert codes(result) == [("PC211", 20, 18)]


WIRED = """\
from pipec import Pipeline, step

@step(outputs=["raw_data"])
def load():
    return [3, 1, 2]

@step(inputs={"df": "raw_data"}, outputs=["clean"])
def clean(df, raw_data=None):
    return sorted(df)

"""


def test_inputs_as_a_dict_bind_a_parameter_to_an_output_of_another_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flow.py"
    path.write_text(WIRED + 'p = Pipeline("wired").add_step(load).add_step(clean)\n')
    result = load(path)
    assert codes(result) == []
    (pipeline,) = result.module.pipelines
    step = pipeline.steps[1]
    refs = {b.param: b.ref for b in step.params}
    assert refs["df"] == ir.OutputRef("load", "raw_data")
    # Only the declared inputs are wired: `raw_data` keeps its default.
    assert refs["raw_data"] == ir.DefaultValue(None)
    assert step.upstream == ("load",)


def test_inputs_dict_misuse_is_located(tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    text = WIRED.replace('{"df": "raw_data"}', '{"frame": "raw_dta", "df": 3}')
    path.write_text(text + 'p = Pipeline("wired").add_step(load).add_step(clean)\n')
    result = load(path)
    assert [(d.code, d.line, d.col) for d in result.diagnostics] == [
        ("PC202", 7, 14),
        ("PC203", 8, 11),
    ]
    assert "dict {parameter: output name}" in result.diagnostics[0].message
    text = WIRED.replace('{"df": "raw_data"}', '{"frame": "raw_dta"}')
    path.write_text(text + 'p = Pipeline("wired").add_step(load).add_step(clean)\n')
    result = load(path)
    assert [(d.code, d.line) for d in result.diagnostics] == [
        ("PC103", 7),
        ("PC207", 7),
        ("PC203", 8),
    ]
    assert "did you mean 'raw_data'" in str(result.diagnostics)
