"""Diagnostics where editors and CI expect them: paths relative to the
working directory, `--output-format text|json|github`, `--target ir` on
stdout as JSON Lines, and step libraries in `[tool.pipec]` globs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pipec.cli import main

BAD = """
from pipec import Pipeline, step


@step(outputs=["a"])
def first(x):
    return x


p = Pipeline("p")
p.add_step(first)
"""

LIBRARY = """
from pipec import step


@step(outputs=["n"])
def make() -> int:
    return 1
"""

USES_LIBRARY = """
from pipec import Pipeline

from .library import make

p = Pipeline("uses")
p.add_step(make)
"""

TWO = """
from pipec import Pipeline, step


@step(outputs=["a"])
def first():
    return 1


one = Pipeline("one").add_step(first)
two = Pipeline("two").add_step(first)
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """Two `steps.py`-like files in different packages; the cwd is tmp_path."""
    for package in ("alpha", "beta"):
        folder = tmp_path / "pipelines" / package
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
        (folder / "bad.py").write_text(BAD)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_paths_are_relative_to_the_working_directory(tree, monkeypatch):
    code, _, err = cli("check", "pipelines/alpha/bad.py", "pipelines/beta/bad.py")
    assert code == 2
    located = [line for line in err.splitlines() if ": error: " in line]
    assert [line.split(":")[0] for line in located] == [
        "pipelines/alpha/bad.py",
        "pipelines/beta/bad.py",
    ]
    assert located[0].startswith("pipelines/alpha/bad.py:6:11: error:")
    monkeypatch.chdir(tree / "pipelines" / "alpha")
    code, _, err = cli("check", "bad.py")
    assert err.startswith("bad.py:6:11: error:"), err


def test_outside_the_working_directory_paths_are_absolute(tree, monkeypatch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    target = tree / "pipelines" / "alpha" / "bad.py"
    code, _, err = cli("check", str(target))
    assert code == 2 and err.startswith(f"{target.as_posix()}:6:11: error:"), err


def test_generated_header_keeps_source_root_relative_path(tree):
    (tree / "pipelines" / "alpha" / "bad.py").write_text(TWO)
    code, out, err = cli("compile", "pipelines/alpha/bad.py", "--target", "ir")
    assert code == 0, err
    first = json.loads(out.splitlines()[0])
    assert first["source_path"] == "alpha/bad.py"


def test_json_output_format_is_one_document(tree):
    code, out, err = cli(
        "check", "pipelines/alpha/bad.py", "pipelines/beta/bad.py", "--output-format", "json"
    )
    assert code == 2 and err == ""
    entries = json.loads(out)
    assert [(e["path"], e["line"], e["column"], e["code"]) for e in entries] == [
        ("pipelines/alpha/bad.py", 6, 11, "PC203"),
        ("pipelines/beta/bad.py", 6, 11, "PC203"),
    ]
    assert all(e["severity"] == "error" and "bound to nothing" in e["message"] for e in entries)


def test_json_output_format_when_clean(tree):
    (tree / "pipelines" / "alpha" / "bad.py").write_text(TWO)
    code, out, _ = cli("check", "pipelines/alpha/bad.py", "--output-format", "json")
    assert code == 0 and json.loads(out) == []


def test_github_output_format_annotates_the_line(tree):
    code, out, _ = cli("compile", "pipelines/alpha/bad.py", "--target", "airflow",
                       "-o", "out", "--output-format", "github")
    assert code == 2
    assert out.splitlines() == [
        "::error file=pipelines/alpha/bad.py,line=6,col=11,title=pipec (PC203)::parameter 'x' "
        "of step 'first' is bound to nothing: it is no input, no context key and has no "
        "default  [PC203]"
    ]
    assert not (tree / "out").exists()


def test_github_output_escapes_workflow_command_syntax(tree):
    folder = tree / "odd,name:dir"
    folder.mkdir()
    (folder / "bad.py").write_text(BAD)
    _, out, _ = cli("check", "odd,name:dir/bad.py", "--output-format", "github")
    assert "file=odd%2Cname%3Adir/bad.py," in out


def test_ir_on_stdout_is_json_lines(tree):
    (tree / "pipelines" / "alpha" / "bad.py").write_text(TWO)
    code, out, err = cli("compile", "pipelines/alpha/bad.py", "--target", "ir")
    assert code == 0, err
    documents = [json.loads(line) for line in out.splitlines()]
    assert [d["pipelines"][0]["name"] for d in documents] == ["one", "two"]


def test_glob_over_a_package_skips_step_libraries(tmp_path, monkeypatch):
    package = tmp_path / "pipelines"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "library.py").write_text(LIBRARY)
    (package / "uses.py").write_text(USES_LIBRARY)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pipec]\nmodules = ["pipelines/*.py"]\ntargets = ["ir"]\noutput = { ir = "build" }\n'
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("compile")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "build").iterdir()) == ["uses.json"]
    assert cli("check")[0] == 0


# -- messages that point at the cause ------------------------------------------


def _write(tmp_path: Path, text: str) -> None:
    (tmp_path / "m.py").write_text(text)


def test_non_literal_context_value_is_one_error_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, """
import os
from pipec import Pipeline, context, step

ctx = context(a=os.environ.get("A", "x"))


@step(outputs=["r"])
def s(a):
    return a


p = Pipeline("p", context=ctx).add_step(s)
""")
    code, _, err = cli("check", "m.py")
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert code == 2 and len(errors) == 1, err
    assert "[PC301]" in errors[0] and "--set" in errors[0] and "inside the step" in errors[0]


def test_step_from_a_missing_module_says_where_pipec_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "from pipec import Pipeline\nfrom mysteps import load\n\np = Pipeline('p').add_step(load)\n")
    code, _, err = cli("check", "m.py")
    assert code == 2
    assert err.startswith("m.py:4:28: error: step 'load' is imported from module 'mysteps', which was "
                          "not found: pipec looked for 'mysteps.py' and 'mysteps/__init__.py'"), err


def test_wrong_tuple_length_names_the_length():
    from pipec.templates import task_runtime

    with pytest.raises(ValueError, match=r"not a tuple of length 3"):
        task_runtime._pipec_outputs("s", ["a", "b"], (1, 2, 3))


def test_notes_only_for_what_the_user_set_and_in_grammar(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, """
from pipec import Pipeline, step


@step(outputs=["r"])
def s():
    return 1


p = Pipeline("p", tags=["a", "b"]).add_step(s)
""")
    code, _, err = cli("compile", "m.py", "--target", "airflow", "-o", "out")
    assert code == 0 and "cache" not in err, err
    code, _, err = cli("compile", "m.py", "--target", "kubeflow", "-o", "out")
    assert code == 0
    assert "the kubeflow output has no place for the pipeline's tags ([\"a\", \"b\"])" in err
    (tmp_path / "m.py").write_text((tmp_path / "m.py").read_text().replace('@step(outputs=["r"])', '@step(outputs=["r"], cache=True)'))
    code, _, err = cli("compile", "m.py", "--target", "airflow", "-o", "out")
    assert code == 0 and "no place for the step cache of step 's'" in err, err


LONG_NAME = """
from pipec import Pipeline, step


@step(outputs=["a"])
def s():
    return 1


p = Pipeline("{name}").add_step(s)
"""


def test_long_pipeline_names_write_or_are_located_errors(tmp_path, monkeypatch):
    """Temporary names stay within the file system's 255 bytes, and an
    output file name that cannot fit is a located error, not an OSError."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(LONG_NAME.replace("{name}", "p" * 240))
    code, _, err = cli("compile", "m.py", "--target", "prefect", "-o", "out")
    assert code == 0, err
    assert (tmp_path / "out" / ("p" * 240 + ".prefect.yaml")).is_file()
    assert cli("compile", "m.py", "--target", "prefect", "-o", "out")[0] == 0  # replaces them
    (tmp_path / "m.py").write_text(LONG_NAME.replace("{name}", "p" * 252))
    code, _, err = cli("compile", "m.py", "--target", "ir", "-o", "out2")
    assert code == 2 and err.startswith("m.py:10:5: error: pipeline name") and "257 bytes long" in err, err
    assert not (tmp_path / "out2").exists()
