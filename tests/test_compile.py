"""The library entry `pipec.compile`."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipec import ir
from pipec.compile import Spec, compile_paths, load_specs, render_problems
from pipec.config import Override, parse_set
from pipec.diagnostics import Diagnostics

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def sets(*texts: str) -> list[Override]:
    return [parse_set(text, Diagnostics()) for text in texts]


def test_spec_parse(tmp_path):
    assert Spec.parse("a/b.py:name", tmp_path) == Spec(
        tmp_path / "a/b.py", "name", "a/b.py:name"
    )
    assert Spec.parse("a/b.py", tmp_path).pipeline is None
    odd = tmp_path / "odd:name.py"
    odd.write_text("")
    assert Spec.parse("odd:name.py", tmp_path) == Spec(odd, None, "odd:name.py")


def test_outputs_in_order():
    result = compile_paths(
        [str(EXAMPLES / "fanout.py"), str(EXAMPLES / "etl.py")], "ir"
    )
    assert not result.has_errors, render_problems(result.problems)
    assert list(result.outputs) == [
        "model_selection.json",
        "shard_processing.json",
        "etl.json",
    ]
    assert ir.from_json(result.outputs["etl.json"]).pipelines[0].name == "etl"


def test_selecting_a_pipeline():
    result = compile_paths(
        [Spec.parse(str(EXAMPLES / "shop" / "pipelines.py") + ":orders_quick")], "ir"
    )
    assert list(result.outputs) == ["orders_quick.json"]


def test_same_name_in_two_files_is_an_error(tmp_path):
    shutil.copy(EXAMPLES / "etl.py", tmp_path / "one.py")
    shutil.copy(EXAMPLES / "etl.py", tmp_path / "two.py")
    result = compile_paths([str(tmp_path / "one.py"), str(tmp_path / "two.py")], "ir")
    [error] = [d for d in result.diagnostics if d.code == "PC504"]
    assert (
        error.path == "two.py"
        and "'etl' and 'etl' both compile to 'etl.json'" in error.message
    )


def test_overrides_apply_where_the_key_exists():
    loaded = load_specs(
        [str(EXAMPLES / "etl.py"), str(EXAMPLES / "training.py")],
        sets("multiplier=4", "threshold=1"),
    )
    assert not loaded.has_errors
    etl, training = loaded.selected
    assert etl.context == {"multiplier": 4}
    assert training.context == {"threshold": 1.0}
    assert training.pipeline.context_param("threshold").default == 1.0
    notes = [p.diagnostic for p in loaded.problems]
    assert {d.code for d in notes} == {"PC507"} and all(
        d.severity == "note" for d in notes
    )


def test_later_override_wins():
    loaded = load_specs(
        [str(EXAMPLES / "etl.py")], sets("multiplier=4", "multiplier=5")
    )
    assert loaded.selected[0].context == {"multiplier": 5}


def test_type_mismatch():
    loaded = load_specs([str(EXAMPLES / "etl.py")], sets("multiplier=[1]"))
    [problem] = loaded.problems
    assert problem.diagnostic.code == "PC506"
    assert (
        "is an int (default 3); --set gives a list ([1])" in problem.diagnostic.message
    )


def test_unknown_target():
    result = compile_paths([str(EXAMPLES / "etl.py")], "nope")
    assert result.outputs == {} and [d.code for d in result.diagnostics] == ["PC501"]


def test_problems_from_several_files_keep_their_roots(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.py").write_text("def f(:\n")
    (tmp_path / "b" / "x.py").write_text("\n\ndef g(:\n")
    result = compile_paths(
        [str(tmp_path / "a" / "x.py"), str(tmp_path / "b" / "x.py")], "ir"
    )
    text = render_problems(result.problems)
    assert "x.py:1:" in text and "x.py:3:" in text
    assert "def f(:" in text and "def g(:" in text


def test_stable_across_cwd(tmp_path, monkeypatch):
    first = compile_paths([str(EXAMPLES / "training.py")], "ir").outputs
    monkeypatch.chdir(tmp_path)
    assert compile_paths([str(EXAMPLES / "training.py")], "ir").outputs == first
