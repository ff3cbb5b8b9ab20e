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


ORDERED = """\
from pipec import Pipeline, step

@step(outputs=["model"])
def train():
    return 1

@step(outputs=["notice"])
def notify():
    return "done"

"""


def test_after_orders_without_data_and_is_in_upstream(tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    text = ORDERED.replace("@step(outputs=[\"notice\"])", "@step(after=[\"train\"], outputs=[\"notice\"])")
    path.write_text(text + 'p = Pipeline("ordered").add_step(notify).add_step(train)\n')
    result = load(path)
    assert codes(result) == []
    (pipeline,) = result.module.pipelines
    assert [s.name for s in pipeline.steps] == ["train", "notify"]
    notify = pipeline.step("notify")
    assert notify.after == ("train",) and notify.upstream == ("train",)
    assert notify.params == ()
    # Unused, the new fields leave the IR's JSON as it was.
    text = ir.to_json(result.module)
    assert '"trigger"' not in text and '"final"' not in text


def test_after_naming_no_step_is_located_with_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    text = ORDERED.replace("@step(outputs=[\"notice\"])", "@step(after=[\"trian\"], outputs=[\"notice\"])")
    path.write_text(text + 'p = Pipeline("ordered").add_step(train).add_step(notify)\n')
    result = load(path)
    assert codes(result) == [("PC230", 7, 7)]
    assert "did you mean 'train'?" in result.diagnostics[0].message


def test_a_declared_input_that_is_no_parameter_points_to_after(tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    text = ORDERED.replace("@step(outputs=[\"notice\"])", "@step(inputs=[\"model\"], outputs=[\"notice\"])")
    path.write_text(text + 'p = Pipeline("ordered").add_step(train).add_step(notify)\n')
    result = load(path)
    assert codes(result) == [("PC207", 7, 7)]
    assert "after=[...]" in result.diagnostics[0].message


def test_trigger_and_final_compile_to_the_ir(tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    text = ORDERED.replace("@step(outputs=[\"notice\"])", "@step(trigger=\"all_done\", outputs=[\"notice\"])")
    text += "@step(final=True)\ndef report(statuses, model):\n    return None\n\n"
    path.write_text(text + 'p = Pipeline("ordered").add_step(report).add_step(train).add_step(notify)\n')
    result = load(path)
    assert codes(result) == []
    (pipeline,) = result.module.pipelines
    assert [s.name for s in pipeline.steps] == ["train", "notify", "report"]
    assert pipeline.step("notify").trigger == "all_done"
    report = pipeline.step("report")
    assert report.final and report.trigger == "all_done"
    assert report.upstream == ("train", "notify")
    assert report.param("statuses").ref == ir.StatusesRef()
    assert report.param("model").ref == ir.OutputRef("train", "model")
    assert ir.from_json(ir.to_json(result.module)) == result.module


def test_trigger_and_final_misuse_is_located(tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    text = ORDERED.replace("@step(outputs=[\"notice\"])", "@step(trigger=\"sometimes\", after=[\"report\"])")
    text += "@step(final=True, after=[\"train\"])\ndef report():\n    return None\n\n"
    text += "@step(final=True)\ndef again():\n    return None\n\n"
    path.write_text(
        text + 'p = Pipeline("ordered").add_step(train).add_step(notify).add_step(report).add_step(again)\n'
    )
    result = load(path)
    assert codes(result) == [
        ("PC202", 7, 15),
        ("PC233", 7, 28),
        ("PC232", 11, 19),
        ("PC231", 15, 7),
    ]
