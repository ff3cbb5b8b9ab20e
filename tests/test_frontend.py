"""Frontend behaviour that golden files do not show: nothing runs, output
does not depend on where the tree lives, multi-module diagnostics."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from pipec import ir
from pipec.frontend import load, select, source_root

CASES = Path(__file__).parent / "cases"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_compiling_never_runs_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = tmp_path / "case"
    shutil.copytree(CASES / "no_side_effects", case)
    monkeypatch.chdir(case)
    result = load(case / "pipeline.py")  # would raise SystemExit if it ran
    assert result.ok
    assert [p.name for p in result.module.pipelines] == ["harmless"]
    assert not any(case.rglob("written_by_import.txt"))


def test_output_does_not_depend_on_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a" / "deep", tmp_path / "other"
    shutil.copytree(CASES / "pkg_imports", first / "pkg_imports")
    shutil.copytree(CASES / "pkg_imports", second / "pkg_imports")
    monkeypatch.chdir(tmp_path)
    one = ir.to_json(load(Path("a/deep/pkg_imports/pipeline.py")).module)
    monkeypatch.chdir(second / "pkg_imports")
    two = ir.to_json(load("pipeline.py").module)
    assert (
        one
        == two
        == (CASES / "pkg_imports" / "expected.ir.json").read_text(encoding="utf-8")
    )
    assert str(tmp_path) not in one


def test_source_root_walks_up_packages(tmp_path: Path) -> None:
    write(tmp_path, {"a/__init__.py": "", "a/b/__init__.py": "", "a/b/m.py": ""})
    assert source_root(tmp_path / "a" / "b" / "m.py") == tmp_path.resolve()


def test_spans_are_relative_posix(tmp_path: Path) -> None:
    result = load(CASES / "pkg_imports" / "pipeline.py")
    pipeline = result.module.pipelines[0]
    assert pipeline.source_path == "pkg_imports/pipeline.py"
    assert pipeline.module == "pkg_imports.pipeline"
    assert pipeline.step("grow").span.path == "pkg_imports/steps.py"


def test_name_clash_between_modules_is_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/other.py": """
            import pipec

            def helper():
                return 1

            def util():
                return helper()
        """,
            "pkg/pipeline.py": """
            from pipec import Pipeline, step
            from .other import util

            def helper():
                return 2

            @step(outputs=["a"])
            def make():
                return util() + helper()

            p = Pipeline("clash")
            p.add_step(make)
        """,
        },
    )
    result = load(tmp_path / "pkg" / "pipeline.py")
    assert [(d.code, d.path, d.line) for d in result.diagnostics] == [
        ("PC404", "pkg/pipeline.py", 5)
    ]


def test_whole_pipeline_module_import_is_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/other.py": "import pipec\n\ndef util():\n    return 1\n",
            "pkg/pipeline.py": """
            from pipec import Pipeline, step
            from . import other

            @step
            def make():
                return other.util()

            Pipeline("whole").add_step(make)
        """,
        },
    )
    result = load(tmp_path / "pkg" / "pipeline.py")
    assert [(d.code, d.line) for d in result.diagnostics] == [("PC404", 3)]


def test_select() -> None:
    result = load(CASES / "import_alias" / "pipeline.py")
    chosen, problems = select(result, None, "pipeline.py")
    assert [p.name for p in chosen] == ["aliased", "anonymous"] and problems == []
    chosen, problems = select(result, "aliasd", "pipeline.py")
    assert chosen == [] and [d.code for d in problems] == ["PC402"]
    assert "did you mean 'aliased'" in problems[0].message


def test_unreadable_file(tmp_path: Path) -> None:
    result = load(tmp_path / "missing.py")
    assert [d.code for d in result.diagnostics] == ["PC002"]
    assert str(tmp_path) not in result.diagnostics[0].message


def test_predicate_and_fallback_code_runs() -> None:
    pipeline = load(CASES / "predicates" / "pipeline.py").module.pipelines[0]
    namespace: dict = {}
    exec(compile(pipeline.step("gate").code.source, "gate", "exec"), namespace)
    assert namespace["_when_gate"](0.7, 0.5) is True
    namespace = {}
    exec(compile(pipeline.step("fetch").code.source, "fetch", "exec"), namespace)
    assert namespace["empty_rows"]("eu") == []


def test_unvalidated_parse_gives_libcst_s_tree_and_restores_validation():
    import libcst as cst

    from pipec.frontend.scan import normalise_names
    from pipec.frontend.sources import parse_module

    here = Path(__file__).parent
    files = sorted({*here.parent.joinpath("examples").rglob("*.py"), *here.rglob("*.py")})
    assert len(files) > 50
    for file in files:
        text = file.read_text(encoding="utf-8")
        try:
            expected = cst.parse_module(text)
        except cst.ParserSyntaxError:
            with pytest.raises(cst.ParserSyntaxError):
                parse_module(text)
            continue
        expected = normalise_names(expected, text)  # identifiers as Python reads them
        assert parse_module(text).deep_equals(expected), file
    # Nodes built after a parse are validated again, also after a failed parse.
    with pytest.raises(cst.ParserSyntaxError):
        parse_module("def (:\n")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not a name")
