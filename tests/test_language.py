"""The language's static forms: what compiles to which IR, and the located
diagnostic for each misuse. Their run-time semantics on every target are
proven by the differential scenario tests/scenarios/language.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

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
