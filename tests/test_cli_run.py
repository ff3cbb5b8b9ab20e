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


CHATTY = '''\
import logging
import sys

from pipec import Pipeline, step, when

log = logging.getLogger("chatty")


@step(outputs=["xs"])
def make():
    print("making the list")
    print("a warning on stderr", file=sys.stderr)
    log.info("made %d items", 3)
    return [1, 2, 3]


@step(outputs=["ys"], foreach="xs")
def square(xs):
    print(f"squaring {xs}")
    return xs * xs


@step(outputs=["big"])
@when(lambda ys: sum(ys) > 100)
def report(ys):
    return sum(ys)


@step(outputs=["z"])
def after(big):
    return big


@step(outputs=["boom"])
def explode():
    raise RuntimeError("no")


@step(outputs=["w"])
def downstream(boom):
    return boom


p = Pipeline("chatty", enable_cache=False)
p.add_step(make).add_step(square).add_step(report).add_step(after)
p.add_step(explode).add_step(downstream)
'''


@pytest.fixture
def chatty(src):
    (src / "chatty.py").write_text(CHATTY)
    return src / "chatty.py"


def test_run_says_why_a_step_was_skipped(chatty):
    code, out, err = cli("run", "src/chatty.py", "--json")
    assert code == 1
    assert ("  report: skipped (`when` predicate `sum(ys) > 100` (chatty.py:24) was false: "
            "ys=[1, 4, 9])") in err
    assert "  after: skipped (upstream step 'report' was skipped)" in err
    assert "  downstream: upstream_failed (upstream step 'explode' failed)" in err
    steps = json.loads(out)["step_results"]
    assert steps["after"]["reason"] == "upstream step 'report' was skipped"
    assert steps["report"]["reason"].startswith("`when` predicate `sum(ys) > 100`")


def test_run_shows_fanout_progress(chatty):
    code, _, err = cli("run", "src/chatty.py")
    assert "  square: started (3 elements)" in err
    for k in range(3):
        assert f"  square[{k}]: element {k + 1}/3 succeeded (" in err
    assert {f"({done}/3 done)" for done in (1, 2, 3)} <= {
        line[line.rindex("("):] for line in err.splitlines() if "square[" in line and "element" in line
    }


def test_run_captures_print_and_logging_per_step(chatty, tmp_path):
    code, out, err = cli("run", "src/chatty.py", "--json")
    # live, prefixed by the step (the element for foreach steps)
    assert "  make | making the list" in err
    assert "  make | a warning on stderr" in err
    assert "  make | INFO chatty: made 3 items" in err
    for x in (1, 2, 3):
        assert f"  square[{x - 1}] | squaring {x}" in err
    # and into the run folder
    result = json.loads(out)
    logs = Path(result["run_dir"]) / "logs"
    make_log = (logs / "make.log").read_text()
    assert make_log.splitlines() == ["making the list", "a warning on stderr",
                                     "INFO chatty: made 3 items"]
    assert sorted((logs / "square.log").read_text().splitlines()) == [
        "squaring 1", "squaring 2", "squaring 3"]
    assert result["step_results"]["make"]["log"] == str(logs / "make.log")
    assert not (logs / "report.log").exists()
    assert f"  step logs: {logs}" in err and f"  run folder: {result['run_dir']}" in err


def test_run_json_is_one_document_even_when_steps_print(chatty, capfd):
    """Through the real process streams: the step's print must not reach stdout."""
    code, out, err = cli("run", "src/chatty.py", "--json")
    captured = capfd.readouterr()
    assert "making the list" not in out + captured.out
    assert json.loads(out)["outputs"]["xs"] == [1, 2, 3]
    code, out, _ = cli("run", "src/fanout.py", "--json")
    assert code == 0
    runs = json.loads(out)
    assert [r["pipeline_name"] for r in runs] == ["model_selection", "shard_processing"]


def test_run_prints_small_output_values_and_the_folder(src):
    code, out, err = cli("run", "src/etl.py")
    assert code == 0 and out == ""
    assert "  outputs:\n" in err and "    row_count = 2\n" in err
    assert "  run folder: " in err


def test_capture_failure_never_breaks_the_step(chatty, tmp_path):
    """A logs path that cannot be a folder (a file put there as the run
    starts): the steps still succeed and their output is still shown live."""
    from pipec.frontend import load
    from pipec.runner import ConsolePrinter, run_pipeline

    pipeline = load(chatty).module.pipelines[0]
    stream = io.StringIO()
    store = tmp_path / "store"
    printer = ConsolePrinter(stream)

    def progress(event):
        if event.kind == "run_started":
            (store / "runs" / event.run_id / "logs").write_text("a file, not a folder")
        printer(event)

    result = run_pipeline(pipeline, root=chatty.parent, store=store, progress=progress)
    assert result.step_results["make"].status == "succeeded"
    assert result.step_results["square"].status == "succeeded"
    assert result.step_results["make"].log is None
    assert "  make | making the list" in stream.getvalue()


def test_runs_show_names_the_logs(chatty):
    code, out, _ = cli("run", "src/chatty.py", "--json")
    run_id = json.loads(out)["run_id"]
    code, out, err = cli("runs", "show", run_id)
    assert code == 0, err
    assert "  logs: " in out and "make.log" in out and "square.log" in out
    assert "after: skipped (upstream step 'report' was skipped)" in out
    code, out, _ = cli("runs", "show", run_id, "--json")
    assert json.loads(out)["logs_dir"].endswith("logs")
