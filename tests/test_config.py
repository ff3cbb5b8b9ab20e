"""--set parsing, --config files and [tool.pipec]."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipec import config
from pipec.diagnostics import Diagnostics


@pytest.mark.parametrize(
    "text, value",
    [
        ("threshold=0.9", 0.9),
        ("n=3", 3),
        ("flag=true", True),
        ("flag=False", False),
        ("name=abc", "abc"),
        ("name=", ""),
        ("day=2024-01-01", "2024-01-01"),
        ("tags=[a, b]", ["a", "b"]),
        ("opts={a: 1, b: [x]}", {"a": 1, "b": ["x"]}),
        ("v=null", None),
        ("expr=a=b", "a=b"),
        ("quoted='0.9'", "0.9"),
    ],
)
def test_set_values(text, value):
    diagnostics = Diagnostics()
    override = config.parse_set(text, diagnostics)
    assert not list(diagnostics)
    assert override.value == value and type(override.value) is type(value)
    assert override.raw == text.partition("=")[2]


@pytest.mark.parametrize(
    "text",
    ["novalue", "=1", "1x=2", "bad key=1", "tags=[a,", "b=!!binary aGk=", "k={1: 2}", "t=.nan", "t=-.inf", "t=[1, .inf]", "t={a: .NaN}"],
)
def test_bad_set(text):
    diagnostics = Diagnostics()
    assert config.parse_set(text, diagnostics) is None
    [d] = list(diagnostics)
    assert d.code == "PC502" and d.path == config.COMMAND_LINE


def test_config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\nb: [x]\npipec:\n  unsupported: warn\n  ir: {k: v}\n")
    diagnostics = Diagnostics()
    overrides, settings = config.load_config_file(path, "c.yaml", diagnostics)
    assert not list(diagnostics)
    assert [(o.key, o.value, o.where, o.raw) for o in overrides] == [
        ("a", 1, "c.yaml", None),
        ("b", ["x"], "c.yaml", None),
    ]
    assert settings.unsupported == "warn" and settings.targets == {"ir": {"k": "v"}}


@pytest.mark.parametrize(
    "text, detail",
    [
        ("a: [1,\n", "c.yaml:2"),
        ("[1, 2]\n", "mapping"),
        ("1bad: 2\n", "not a context key name"),
        ("d: 2024-01-01\nx: !!binary aGk=\n", "not a literal"),
        ("pipec: 3\n", "must be a table"),
        ("pipec:\n  targets: [ir]\n", "unknown key 'targets'"),
        ("pipec:\n  ir: 3\n", "must be a table"),
    ],
)
def test_bad_config_file(tmp_path, text, detail):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    diagnostics = Diagnostics()
    config.load_config_file(path, "c.yaml", diagnostics)
    rendered = "\n".join(f"{d.path}:{d.line} {d.message}" for d in diagnostics)
    assert all(d.code == "PC503" for d in diagnostics) and list(diagnostics)
    assert detail in rendered


def test_missing_config_file(tmp_path):
    diagnostics = Diagnostics()
    config.load_config_file(tmp_path / "nope.yaml", "nope.yaml", diagnostics)
    assert "cannot read 'nope.yaml'" in list(diagnostics)[0].message


def test_empty_config_file(tmp_path):
    (tmp_path / "c.yaml").write_text("")
    diagnostics = Diagnostics()
    assert config.load_config_file(tmp_path / "c.yaml", "c.yaml", diagnostics) == (
        [],
        config.Settings(),
    )
    assert not list(diagnostics)


def test_tool_pipec_found_walking_up(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pipec]\nmodules = ["p/*.py"]\ntargets = ["ir"]\nout_dir = "build"\nunsupported = "warn"\n'
        "[tool.pipec.ir]\nindent = 2\n"
    )
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    diagnostics = Diagnostics()
    project = config.load_project(deep, diagnostics)
    assert not list(diagnostics)
    assert project.folder == tmp_path.resolve()
    assert project.modules == ["p/*.py"] and project.targets == ["ir"]
    assert project.output_dir("ir") == tmp_path.resolve() / "build"
    assert project.settings.unsupported == "warn" and project.settings.targets == {
        "ir": {"indent": 2}
    }


def test_output_folders():
    project = config.ProjectConfig(
        Path("/p/pyproject.toml"),
        targets=["ir", "airflow"],
        out_dir="build",
        output={"airflow": "dags"},
    )
    assert project.output_dir("airflow") == Path("/p/dags")
    assert project.output_dir("ir") == Path("/p/build/ir")
    assert config.ProjectConfig(Path("/p/pyproject.toml")).output_dir("ir") is None


def test_nearest_pyproject_without_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.pipec]\ntargets = ["ir"]\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert config.load_project(tmp_path / "sub", Diagnostics()) is None


@pytest.mark.parametrize(
    "body, detail",
    [
        ("modules = 3", "modules"),
        ("targets = [1]", "targets"),
        ("out_dir = 1", "out_dir"),
        ('output = { nope = "x" }', "unknown target 'nope'"),
        ('unsupported = "never"', "'error' or 'warn'"),
        ('modulez = ["a.py"]', "did you mean 'modules'"),
    ],
)
def test_bad_tool_pipec(tmp_path, body, detail):
    (tmp_path / "pyproject.toml").write_text(f"[tool.pipec]\n{body}\n")
    diagnostics = Diagnostics()
    config.load_project(tmp_path, diagnostics)
    [d] = list(diagnostics)
    assert d.code == "PC503" and detail in d.message and d.path == "pyproject.toml"


def test_broken_toml(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.pipec\n")
    diagnostics = Diagnostics()
    assert config.load_project(tmp_path, diagnostics) is None
    assert list(diagnostics)[0].code == "PC503"
