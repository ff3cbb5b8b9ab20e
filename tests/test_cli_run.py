"""`pipec run`: static check first (2), then a local run (0 / 1), progress
and a summary on stderr."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from pipec.cli import main

REPO = Path(__file__).resolve().parent.parent


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def src(tmp_path, monkeypatch):
    folder = tmp_path / "src"
    folder.mkdir()
    for path in (
        REPO / "examples" / "etl.py",
        REPO / "examples" / "fanout.py",
        REPO / "tests" / "scenarios" / "failing.py",
    ):
        shutil.copy(path, folder / path.name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPEC_HOME", raising=False)
    return folder


def test_run_succeeds_with_progress_and_summary(src, tmp_path):
    code, out, err = cli("run", "src/etl.py", "--json")
    assert code == 0, err
    assert "pipec: running pipeline 'etl'" in err
    for step in ("extract", "transform", "load"):
        assert f"  {step}: succeeded" in err
    assert "pipeline 'etl' succeeded" in err
    result = json.loads(out)
    assert result["success"] is True and result["outputs"]["row_count"] == 2
    assert (tmp_path / ".pipec").is_dir()


def test_run_with_set(src):
    code, out, err = cli("run", "src/etl.py", "--set", "multiplier=1", "--json")
    assert code == 0, err
    assert json.loads(out)["outputs"]["total_value"] == 4 * 2.5 + 7 * 1.25


def test_run_failure_exits_1_and_resume(src):
    code, _, err = cli("run", "src/failing.py")
    assert code == 1
    assert (
        "divide: failed" in err
        and "ZeroDivisionError" in err
        and "Traceback" not in err
    )
    code, out, err = cli(
        "run", "src/failing.py", "--set", "divisor=2", "--resume", "latest", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["outputs"]["ratio_sum"] == 3.0


def test_run_unknown_resume_is_an_input_error(src):
    code, _, err = cli("run", "src/etl.py", "--resume", "no-such-run")
    assert code == 2 and "no-such-run" in err


def test_run_input_errors_exit_2_before_importing(src, tmp_path):
    marker = tmp_path / "imported"
    (src / "bad.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from pipec import Pipeline, step\n\n"
        "@step(inputs=['nothing'])\ndef f(nothing):\n    return 1\n\n"
        "p = Pipeline('p')\np.add_step(f)\n"
    )
    code, _, err = cli("run", "src/bad.py")
    assert code == 2 and "bad.py:" in err and "error:" in err
    assert not marker.exists()
    assert cli("run", "src/etl.py", "--set", "nope=1")[0] == 2
    assert cli("run", "src/etl.py:elt")[0] == 2
    assert cli("run", "src/missing.py")[0] == 2


def test_run_does_not_import_the_module(src):
    """Like every target, the run executes each step's carried code: the
    module's own top-level statements never run."""
    (src / "sideeffect.py").write_text(
        "from pipec import Pipeline, step\n\n"
        "@step(outputs=['x'])\ndef f():\n    return 1\n\n"
        "p = Pipeline('p')\np.add_step(f)\n"
        "raise RuntimeError('no database')\n"
    )
    code, out, err = cli("run", "src/sideeffect.py", "--json")
    assert code == 0, err
    assert json.loads(out)["outputs"] == {"x": 1} and "no database" not in err


@pytest.mark.parametrize("call", ["sys.exit(0)", "os._exit(0)"])
def test_a_step_that_exits_fails_and_the_run_exits_1_with_the_summary(src, call):
    (src / "exits.py").write_text(
        "import os\nimport sys\n\nfrom pipec import Pipeline, step\n\n"
        f"@step(outputs=['x'])\ndef leave():\n    {call}\n\n"
        "@step(outputs=['y'])\ndef other():\n    return 2\n\n"
        "p = Pipeline('p')\np.add_step(leave).add_step(other)\n"
    )
    code, _, err = cli("run", "src/exits.py")
    assert code == 1, err
    assert "  leave: failed" in err and "  other: succeeded" in err
    assert "pipeline 'p' failed" in err
    assert any(line.split()[:2] == ["leave", "failed"] for line in err.splitlines())


def test_run_all_pipelines_of_a_module_in_order(src):
    code, _, err = cli("run", "src/fanout.py")
    assert code == 0, err
    assert err.index("running pipeline 'model_selection'") < err.index(
        "running pipeline 'shard_processing'"
    )
    code, _, err = cli("run", "src/fanout.py:shard_processing")
    assert code == 0 and "model_selection" not in err
    code, _, err = cli("run", "src/fanout.py", "--resume", "latest")
    assert code == 2 and "--resume needs one pipeline" in err
