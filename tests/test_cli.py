"""`pipec compile` / `check` / `--version` / `--help`, in-process via
`main([...])`, and a few through the console script."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipec.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
PIPEC = Path(sys.executable).parent / "pipec"

TWO_PIPELINES_ONE_BAD = """
from pipec import Pipeline, context, step

ctx = context(n=3)


@step(outputs=["numbers"])
def numbers(n: int) -> list:
    return list(range(n))


@step(inputs=["numbrs"], outputs=["total"])
def total(numbrs: list) -> int:
    return sum(numbrs)


good = Pipeline("good", context=ctx)
good.add_step(numbers)

bad = Pipeline("bad", context=ctx)
bad.add_step(numbers).add_step(total)
"""

TYPED = """
from pipec import Pipeline, context, step

ctx = context(threshold=0.5, count=1, flag=False, name="x", tags=["a"], maybe=None)


@step(outputs=["out"])
def only(threshold: float, count: int, flag: bool, name: str, tags: list, maybe) -> dict:
    return {"threshold": threshold}


typed = Pipeline("typed", context=ctx)
typed.add_step(only)
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def src(tmp_path, monkeypatch):
    """A source tree with copies of the examples; the cwd is `tmp_path`."""
    folder = tmp_path / "src"
    folder.mkdir()
    for name in ("etl.py", "training.py", "fanout.py"):
        shutil.copy(EXAMPLES / name, folder / name)
    (folder / "broken.py").write_text(TWO_PIPELINES_ONE_BAD)
    (folder / "typed.py").write_text(TYPED)
    monkeypatch.chdir(tmp_path)
    return folder


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `folder` (hidden ones too) with mtime and content."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def context_of(path: Path) -> dict:
    from pipec import ir

    module = ir.from_json(path.read_text())
    return {c.name: c.default for c in module.pipelines[0].context}


# -- compile --------------------------------------------------------------


def test_compile_writes_one_file_per_pipeline(src, tmp_path):
    code, out, err = cli("compile", "src/fanout.py", "--target", "ir", "-o", "out")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "model_selection.json",
        "shard_processing.json",
    ]
    assert "created out/model_selection.json" in err
    data = json.loads((tmp_path / "out" / "model_selection.json").read_text())
    assert data["pipelines"][0]["name"] == "model_selection"


def test_compile_selects_one_pipeline(src, tmp_path):
    code, _, err = cli(
        "compile", "src/fanout.py:shard_processing", "--target", "ir", "-o", "out"
    )
    assert code == 0, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["shard_processing.json"]


def test_ir_without_output_dir_prints_json(src, tmp_path):
    code, out, err = cli("compile", "src/etl.py", "--target", "ir")
    assert code == 0, err
    assert json.loads(out)["pipelines"][0]["name"] == "etl"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_output_is_byte_identical_across_runs_and_locations(src, tmp_path):
    assert cli("compile", "src/training.py", "--target", "ir", "-o", "one")[0] == 0
    moved = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(src, moved)
    assert (
        cli("compile", str(moved / "training.py"), "--target", "ir", "-o", "two")[0]
        == 0
    )
    assert (tmp_path / "one" / "ml_training.json").read_bytes() == (
        tmp_path / "two" / "ml_training.json"
    ).read_bytes()


def test_check_current_stale_missing(src, tmp_path):
    args = ("compile", "src/etl.py", "src/training.py", "--target", "ir", "-o", "out")
    assert cli(*args)[0] == 0
    before = snapshot(tmp_path / "out")
    code, out, err = cli(*args, "--check")
    assert (code, out) == (0, "")
    stale = tmp_path / "out" / "etl.json"
    stale.write_text(stale.read_text().replace('"inventory"', '"old"'))
    before = snapshot(tmp_path / "out")
    code, _, err = cli(*args, "--check")
    assert code == 1 and "would rewrite out/etl.json" in err
    (tmp_path / "out" / "ml_training.json").unlink()
    code, _, err = cli(*args, "--check")
    assert code == 1 and "would create out/ml_training.json" in err
    del before["ml_training.json"]
    assert snapshot(tmp_path / "out") == before


def test_check_into_missing_folder_creates_nothing(src, tmp_path):
    code, _, err = cli(
        "compile", "src/etl.py", "--target", "ir", "-o", "out", "--check"
    )
    assert code == 1 and "would create out/etl.json" in err
    assert not (tmp_path / "out").exists()


def test_diff_prints_unified_diff_and_writes_nothing(src, tmp_path):
    args = ("compile", "src/etl.py", "--target", "ir", "-o", "out")
    assert cli(*args)[0] == 0
    before = snapshot(tmp_path)
    code, out, _ = cli(*args, "--set", "multiplier=5", "--diff")
    assert code == 0
    assert out.startswith("--- a/out/etl.json\n+++ b/out/etl.json\n")
    assert '-          "default": 3,' in out and '+          "default": 5,' in out
    assert snapshot(tmp_path) == before
    code, out, _ = cli(*args, "--set", "multiplier=5", "--diff", "--check")
    assert code == 1 and out.startswith("--- a/out/etl.json")
    assert snapshot(tmp_path) == before


def test_diff_of_missing_file_is_against_dev_null(src, tmp_path):
    code, out, _ = cli("compile", "src/etl.py", "--target", "ir", "-o", "out", "--diff")
    assert code == 0 and out.startswith("--- /dev/null\n+++ b/out/etl.json\n")
    assert not (tmp_path / "out").exists()


def test_unchanged_files_are_not_rewritten(src, tmp_path):
    args = ("compile", "src/etl.py", "--target", "ir", "-o", "out")
    assert cli(*args)[0] == 0
    before = snapshot(tmp_path / "out")
    code, _, err = cli(*args)
    assert code == 0 and "1 file left unchanged" in err
    assert snapshot(tmp_path / "out") == before


def test_all_or_nothing_one_bad_pipeline_in_module(src, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "good.json").write_text("old\n")
    before = snapshot(tmp_path / "out")
    code, out, err = cli("compile", "src/broken.py", "--target", "ir", "-o", "out")
    assert code == 2 and out == ""
    assert "broken.py:" in err and "error:" in err
    assert snapshot(tmp_path / "out") == before


def test_all_or_nothing_two_files_one_bad(src, tmp_path):
    code, _, err = cli(
        "compile", "src/etl.py", "src/broken.py", "--target", "ir", "-o", "out"
    )
    assert code == 2
    assert not (tmp_path / "out").exists()
    assert "Traceback" not in err


def test_atomic_write_leaves_no_temp_files(src, tmp_path):
    for value in ("4", "5"):
        assert (
            cli(
                "compile",
                "src/etl.py",
                "src/fanout.py",
                "--target",
                "ir",
                "-o",
                "out",
                "--set",
                f"multiplier={value}",
            )[0]
            == 0
        )
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == ["etl.json", "model_selection.json", "shard_processing.json"]


def test_set_values_are_typed(src, tmp_path):
    code, _, err = cli(
        "compile",
        "src/typed.py",
        "--target",
        "ir",
        "-o",
        "out",
        "--set",
        "threshold=0.9",
        "--set",
        "count=7",
        "--set",
        "flag=true",
        "--set",
        "name=2024-01-01",
        "--set",
        "tags=[a, b]",
        "--set",
        "maybe=12",
    )
    assert code == 0, err
    values = context_of(tmp_path / "out" / "typed.json")
    assert values == {
        "threshold": 0.9,
        "count": 7,
        "flag": True,
        "name": "2024-01-01",
        "tags": ["a", "b"],
        "maybe": 12,
    }
    assert type(values["count"]) is int and type(values["flag"]) is bool


def test_set_int_for_float_and_number_for_str(src, tmp_path):
    code, _, err = cli(
        "compile",
        "src/typed.py",
        "--target",
        "ir",
        "-o",
        "out",
        "--set",
        "threshold=1",
        "--set",
        "name=123",
    )
    assert code == 0, err
    values = context_of(tmp_path / "out" / "typed.json")
    assert values["threshold"] == 1.0 and type(values["threshold"]) is float
    assert values["name"] == "123"


def test_set_errors_are_all_reported(src, tmp_path):
    code, out, err = cli(
        "compile",
        "src/typed.py",
        "--target",
        "ir",
        "-o",
        "out",
        "--set",
        "count=abc",
        "--set",
        "nope=1",
        "--set",
        "oops",
        "--set",
        "tags=[a,",
    )
    assert code == 2 and out == ""
    for code_ in ("PC306", "PC502", "PC506"):
        assert f"[{code_}]" in err
    assert err.count("[PC502]") == 2
    assert "unknown context key 'nope'" in err
    assert not (tmp_path / "out").exists()


def test_config_file(src, tmp_path):
    (tmp_path / "ctx.yaml").write_text("threshold: 0.75\ntags: [x, y]\ncount: 2\n")
    code, _, err = cli(
        "compile",
        "src/typed.py",
        "--target",
        "ir",
        "-o",
        "out",
        "--config",
        "ctx.yaml",
        "--set",
        "count=9",
    )
    assert code == 0, err
    values = context_of(tmp_path / "out" / "typed.json")
    assert (values["threshold"], values["tags"], values["count"]) == (
        0.75,
        ["x", "y"],
        9,
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: [1,\n", "PC503"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("pipec:\n  unsupported: maybe\n", "'error' or 'warn'"),
        ("nope: 1\n", "PC306"),
    ],
)
def test_bad_config_file(src, tmp_path, text, message):
    (tmp_path / "ctx.yaml").write_text(text)
    code, _, err = cli(
        "compile", "src/typed.py", "--target", "ir", "-o", "out", "--config", "ctx.yaml"
    )
    assert code == 2 and message in err
    assert "ctx.yaml" in err or "--set" not in err


def test_unknown_target_lists_targets(src):
    code, out, err = cli("compile", "src/etl.py", "--target", "airflw")
    assert code == 2 and out == ""
    assert (
        "unknown target 'airflw'; choose one of:" in err
        and "ir" in err
        and "[PC501]" in err
    )


def test_missing_target(src, tmp_path):
    code, _, err = cli("compile", "src/etl.py")
    assert code == 2 and "no target" in err and "[PC505]" in err


def test_unknown_pipeline_did_you_mean(src):
    code, _, err = cli("compile", "src/fanout.py:shard_processin", "--target", "ir")
    assert code == 2
    assert "fanout.py:" in err
    assert (
        "pipeline 'shard_processin' is not defined in 'fanout.py'; did you mean 'shard_processing'?"
        in err
    )
    assert "[PC402]" in err


def test_unknown_pipeline_lists_names(src):
    code, _, err = cli("compile", "src/fanout.py:zzz", "--target", "ir")
    assert code == 2 and "it defines: model_selection, shard_processing" in err


def test_syntax_error_is_located_without_traceback(src, tmp_path):
    (src / "syntax.py").write_text("from pipec import step\n\n\ndef f(:\n    pass\n")
    code, _, err = cli("compile", "src/syntax.py", "--target", "ir", "-o", "out")
    assert code == 2
    assert err.startswith("src/syntax.py:4:")
    assert "[PC001]" in err and "def f(:" in err and "^" in err
    assert "Traceback" not in err


def test_module_without_pipeline(src):
    (src / "empty.py").write_text("X = 1\n")
    code, _, err = cli("compile", "src/empty.py", "--target", "ir", "-o", "out")
    assert code == 2 and err.startswith(
        "src/empty.py: error: 'empty.py' defines no pipeline  [PC403]"
    )


STEP_LIBRARY = """
from pipec import step


@step(outputs=["x"])
def make() -> int:
    return 1
"""


def test_step_library_is_accepted_by_check(src):
    (src / "library.py").write_text(STEP_LIBRARY)
    code, _, err = cli("check", "src/library.py")
    assert code == 0, err
    assert "error" not in err


def test_output_dir_is_a_file(src, tmp_path):
    (tmp_path / "out").write_text("")
    code, _, err = cli("compile", "src/etl.py", "--target", "ir", "-o", "out")
    assert (
        code == 2
        and "cannot write" in err
        and "[PC505]" in err
        and "Traceback" not in err
    )
    assert (tmp_path / "out").read_text() == ""


def test_missing_file(src):
    code, _, err = cli("compile", "src/nothere.py", "--target", "ir")
    assert code == 2 and "src/nothere.py: error: cannot read" in err


def test_every_problem_of_every_file_sorted(src):
    (src / "syntax.py").write_text("def f(:\n")
    code, _, err = cli("compile", "src/syntax.py", "src/broken.py", "--target", "nope")
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert code == 2
    assert lines[0].startswith("pipec: error: unknown target")
    assert any(line.startswith("src/broken.py:") for line in lines)
    assert any(line.startswith("src/syntax.py:") for line in lines)
    located = [line for line in lines if not line.startswith("pipec:")]
    assert located == sorted(located)


@pytest.fixture
def fake_target(monkeypatch):
    from pipec.backends import base

    class Fake(base.Backend):
        name = "fake"
        extension = ".txt"
        SUPPORTS_WHEN = False
        counter = 0

        def emit(self, pipeline):
            if pipeline.name == "unstable":
                type(self).counter += 1
                return base.Emit(self.filename(pipeline), f"{type(self).counter}\n")
            return base.Emit(self.filename(pipeline), f"fake {pipeline.name}\n")

    base.targets()  # load the real ones first
    monkeypatch.setitem(base._BACKENDS, "fake", Fake)
    return Fake


def test_unsupported_feature_error_or_warn(src, tmp_path, fake_target):
    code, _, err = cli("compile", "src/training.py", "--target", "fake", "-o", "out")
    assert (
        code == 2 and "[PC601]" in err and "training.py:" in err and "register" in err
    )
    assert not (tmp_path / "out").exists()
    code, _, err = cli(
        "compile",
        "src/training.py",
        "--target",
        "fake",
        "-o",
        "out",
        "--unsupported",
        "warn",
    )
    assert code == 0 and "warning:" in err and "[PC602]" in err
    assert (tmp_path / "out" / "ml_training.txt").read_text() == "fake ml_training\n"


def test_unstable_output_is_an_internal_error(src, tmp_path, fake_target):
    (src / "unstable.py").write_text(TYPED.replace('"typed"', '"unstable"'))
    code, _, err = cli("compile", "src/unstable.py", "--target", "fake", "-o", "out")
    assert code == 3 and "internal error" in err and "unstable" in err
    assert not (tmp_path / "out").exists()


def test_several_targets_from_tool_pipec(src, tmp_path, fake_target):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pipec]\nmodules = ["src/etl.py"]\ntargets = ["ir", "fake"]\nout_dir = "build"\n'
    )
    code, _, err = cli("compile")
    assert code == 0, err
    assert (tmp_path / "build" / "ir" / "etl.json").is_file()
    assert (tmp_path / "build" / "fake" / "etl.txt").read_text() == "fake etl\n"
    code, _, err = cli("compile", "-o", "x")
    assert code == 2 and "-o needs a single target" in err
    code, _, err = cli("compile", "--target", "fake", "-o", "x")
    assert code == 0 and (tmp_path / "x" / "etl.txt").is_file()


# -- [tool.pipec] ---------------------------------------------------------


PYPROJECT = """
[project]
name = "demo"

[tool.pipec]
modules = ["src/etl.py", "src/fan*.py"]
targets = ["ir"]
output = { ir = "build/ir" }
"""


def test_no_arg_compile_uses_tool_pipec(src, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    code, _, err = cli("compile")
    assert code == 0, err
    built = sorted(p.name for p in (tmp_path / "build" / "ir").iterdir())
    assert built == ["etl.json", "model_selection.json", "shard_processing.json"]
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert cli("compile", "--check")[0] == 0
    (tmp_path / "build" / "ir" / "etl.json").unlink()
    code, _, err = cli("compile", "--check")
    assert code == 1 and "would create ../build/ir/etl.json" in err
    assert cli("check")[0] == 0


def test_no_arg_compile_without_config(src):
    code, _, err = cli("compile", "--target", "ir")
    assert code == 2 and "nothing to do" in err


def test_invalid_tool_pipec(src, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        PYPROJECT + 'unsupported = "sometimes"\nbogus = 1\n'
    )
    code, _, err = cli("compile")
    assert (
        code == 2
        and "[PC503]" in err
        and "unknown key 'bogus'" in err
        and "'error' or 'warn'" in err
    )


# -- check, --version, --help ---------------------------------------------


def test_check_ok_and_errors(src):
    code, out, err = cli("check", "src/etl.py", "src/fanout.py")
    assert (code, out) == (0, "") and err == "pipec: ok: 3 pipelines in 2 files\n"
    code, out, err = cli("check", "src/etl.py", "src/broken.py")
    assert code == 2 and out == "" and "broken.py:" in err


def test_version():
    code, out, _ = cli("--version")
    from pipec import __version__

    assert code == 0 and out.strip() == f"pipec {__version__}"


@pytest.mark.parametrize("command", [[], ["compile"], ["check"], ["run"], ["graph"]])
def test_help(command):
    code, out, _ = cli(*command, "--help")
    assert code == 0 and "usage: pipec" in out


def test_usage_errors_exit_2():
    assert cli()[0] == 2
    assert cli("frobnicate")[0] == 2
    assert cli("graph", "x.py", "--format", "png")[0] == 2


def test_internal_error_exits_3(src, monkeypatch):
    import pipec.compile

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(pipec.compile, "compile_loaded", boom)
    monkeypatch.setattr("pipec.compile_command.compile_loaded", boom)
    code, _, err = cli("compile", "src/etl.py", "--target", "ir")
    assert (
        code == 3
        and "pipec: internal error: RuntimeError: kaboom" in err
        and "Traceback" not in err
    )


# -- the console script ---------------------------------------------------


def script(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PIPEC), *argv], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.skipif(not PIPEC.exists(), reason="pipec console script not installed")
def test_console_script_exit_codes(src, tmp_path):
    proc = script("compile", "src/etl.py", "--target", "ir", "-o", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (
        script(
            "compile",
            "src/etl.py",
            "--target",
            "ir",
            "-o",
            "out",
            "--check",
            cwd=tmp_path,
        ).returncode
        == 0
    )
    proc = script(
        "compile",
        "src/etl.py",
        "--target",
        "ir",
        "-o",
        "out",
        "--check",
        "--set",
        "multiplier=9",
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    proc = script("compile", "src/broken.py", "--target", "ir", cwd=tmp_path)
    assert (
        proc.returncode == 2
        and "Traceback" not in proc.stderr
        and "error:" in proc.stderr
    )
    proc = script("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("pipec ")


@pytest.mark.skipif(not PIPEC.exists(), reason="pipec console script not installed")
def test_console_script_run_and_graph(src, tmp_path):
    shutil.copy(REPO / "tests" / "scenarios" / "failing.py", src / "failing.py")
    proc = script("run", "src/etl.py", cwd=tmp_path)
    assert proc.returncode == 0 and "  load: succeeded" in proc.stderr
    proc = script("run", "src/failing.py", cwd=tmp_path)
    assert (
        proc.returncode == 1
        and "divide: failed" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    proc = script("graph", "src/etl.py", "--format", "dot", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith('digraph "etl" {')


@pytest.mark.skipif(not PIPEC.exists(), reason="pipec console script not installed")
def test_console_script_writes_large_yaml_as_the_library_does(tmp_path):
    """The console script writes large YAML in two processes
    (`yamlfmt.allow_fork`): the file is the one the library writes."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import common
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    from pipec.compile import compile_loaded, load_specs

    (tmp_path / "chain.py").write_text(common.chain_module(400), encoding="utf-8")
    proc = script("compile", "chain.py", "--target", "kubeflow", "-o", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = compile_loaded(load_specs([str(tmp_path / "chain.py")]), "kubeflow").outputs
    (text,) = expected.values()
    assert (tmp_path / "out" / "chain_400.yaml").read_text(encoding="utf-8") == text


_IN_TWO = """
import json, sys
from pipec.backends import yamlfmt

data = json.loads(sys.stdin.read())
yamlfmt.allow_fork()
split = yamlfmt._dump_in_two(data, True, 4096)
print(json.dumps([split, yamlfmt._dump(data, True, 4096)]))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork")
@pytest.mark.parametrize("key", ["components", "a: b", "x" * 200, "true"])
def test_yaml_in_two_processes_is_the_same_text(key):
    # In a fresh process: forking the test process (with its threads) is unsafe.
    odd = ["\x85 \u2028 \r", "- x", "'q'", 'a "b"', "1e3", "null", "", " lead", "multi\nline\n"]
    entry = {"list": odd, "n": 1, "f": 1.5, "nested": {"z": None, "y": True, "odd": odd}}
    data = {
        key: {f"k{i}": entry for i in range(300)},
        "deploymentSpec": {"executors": {f"e{i}": {"text": "code\n" * 300} for i in range(300)}},
        "root": {"dag": {"tasks": {f"t{i}": entry for i in range(300)}}, "z": 1},
        "schemaVersion": "2.1.0",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _IN_TWO], input=json.dumps(data), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    split, whole = json.loads(proc.stdout)
    if key == "components":
        assert split is not None  # large enough, plain keys: it was split
    assert split in (None, whole)
