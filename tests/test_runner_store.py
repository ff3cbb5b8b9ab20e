"""The store: caching, run records, outputs on disk, resume; the result API,
progress events and the module loader."""

import io
import json
import pickle
import sys
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from pipec import Pipeline, context, step, when
from pipec.runner import ConsolePrinter, run_pipeline
from pipec.runner.loader import load_pipelines

CASES = Path(__file__).parent / "runner_cases"


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPEC_HOME", raising=False)


def _path(uri):
    return Path(url2pathname(urlparse(uri).path))


def counted_pipeline(calls, cache=None, name="p"):
    @step(outputs=["data"], cache=cache)
    def load(size):
        calls.append("load")
        return list(range(size))

    @step(inputs=["data"], outputs=["total"], cache=cache)
    def total(data, offset):
        calls.append("total")
        return sum(data) + offset

    return Pipeline(name, context=context(size=3, offset=0)).add_step(load).add_step(total)


# -- cache --------------------------------------------------------------------

def test_cache_hit_and_misses():
    calls = []
    p = counted_pipeline(calls)
    first = run_pipeline(p)
    assert calls == ["load", "total"] and first["total"] == 3
    second = run_pipeline(p)
    assert calls == ["load", "total"]  # nothing ran
    assert {r.status for r in second.step_results.values()} == {"cached"}
    assert all(r.cached and r.attempts == 0 for r in second.step_results.values())
    assert second.success and second["total"] == 3
    # a context value a step reads: that step misses, its input changed: the next misses too
    run_pipeline(p, context={"size": 4})
    assert calls == ["load", "total"] * 2
    # only `total`'s parameter changed: `load` hits, `total` misses
    third = run_pipeline(p, context={"offset": 10})
    assert calls == ["load", "total"] * 2 + ["total"] and third["total"] == 13
    assert third.step_results["load"].status == "cached"
    assert third.step_results["total"].status == "succeeded"


def test_cache_disabled_by_step_or_pipeline():
    calls = []
    p = counted_pipeline(calls, cache=False)
    run_pipeline(p)
    run_pipeline(p)
    assert calls == ["load", "total"] * 2
    calls2 = []
    q = counted_pipeline(calls2)
    q.enable_cache = False
    run_pipeline(q)
    run_pipeline(q)
    assert calls2 == ["load", "total"] * 2


def test_unpicklable_argument_runs_uncached(tmp_path):
    import threading
    calls = []

    @step(outputs=["lock"])
    def make():
        return threading.Lock()

    @step(outputs=["ok"])
    def use(lock):
        calls.append(1)
        return True

    p = Pipeline("p").add_step(make).add_step(use)
    for _ in range(2):
        result = run_pipeline(p)
        assert result.success and result["ok"] is True
    assert calls == [1, 1]
    assert result.step_results["make"].artifact_uri is None  # a lock cannot be saved


# -- store and record -----------------------------------------------------------

def test_record_and_outputs_on_disk(tmp_path):
    result = run_pipeline(counted_pipeline([]), context={"offset": 1}, run_id="20250101T000000-abcdef")
    run_dir = tmp_path / ".pipec" / "runs" / "20250101T000000-abcdef"
    assert Path(result.run_dir) == run_dir
    record = json.loads((run_dir / "record.json").read_text())
    assert record["pipeline_name"] == "p" and record["run_id"] == "20250101T000000-abcdef"
    assert record["success"] is True and record["finished"] is True
    assert record["context"] == {"size": 3, "offset": 1}
    assert record["started_at"] <= record["finished_at"]
    assert "git_commit" in record and record["resumed_from"] is None
    step = record["step_results"]["total"]
    assert step["status"] == "succeeded" and step["attempts"] == 1 and step["cached"] is False
    assert step["error"] is None and step["duration_seconds"] >= 0
    assert _path(step["artifact_uri"]) == run_dir / "outputs" / "total.pkl"
    assert pickle.loads((run_dir / "outputs" / "total.pkl").read_bytes()) == 4
    assert pickle.loads((run_dir / "outputs" / "data.pkl").read_bytes()) == [0, 1, 2]


def test_store_location_argument_and_env(tmp_path, monkeypatch):
    run_pipeline(counted_pipeline([]), store=tmp_path / "elsewhere")
    assert len(list((tmp_path / "elsewhere" / "runs").iterdir())) == 1
    monkeypatch.setenv("PIPEC_HOME", str(tmp_path / "home"))
    result = run_pipeline(counted_pipeline([]))
    assert Path(result.run_dir).parent == tmp_path / "home" / "runs"
    assert not (tmp_path / ".pipec").exists()


def test_run_ids_are_sortable_and_unique():
    import re
    ids = [run_pipeline(counted_pipeline([])).run_id for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", i) for i in ids)
    with pytest.raises(ValueError, match="already exists"):
        run_pipeline(counted_pipeline([]), run_id=ids[0])
    with pytest.raises(ValueError, match="invalid run id"):
        run_pipeline(counted_pipeline([]), run_id="../x")


def test_git_commit_recorded_when_in_a_repository(tmp_path):
    import subprocess
    try:
        subprocess.run(["git", "init", "-q"], check=True, cwd=tmp_path)
        subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-q",
                        "--allow-empty", "-m", "x"], check=True, cwd=tmp_path)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not usable here")
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=tmp_path).stdout.strip()
    assert run_pipeline(counted_pipeline([])).git_commit == head


# -- resume -------------------------------------------------------------------------

def resumable(calls, flag):
    @step(outputs=["raw"])
    def fetch():
        calls.append("fetch")
        return [1, 2, 3]

    @step(outputs=["side"])
    def side():
        calls.append("side")
        return "side"

    @step(inputs=["raw"], outputs=["clean"])
    def clean(raw):
        calls.append("clean")
        if not flag.exists():
            raise RuntimeError("flag missing")
        return [x * 2 for x in raw]

    @step(inputs=["clean"], outputs=["report"])
    def report(clean):
        calls.append("report")
        return sum(clean)

    @step
    @when(lambda raw: False)
    def skipped():
        calls.append("skipped")

    p = Pipeline("resumable", enable_cache=False)
    return p.add_step(fetch).add_step(side).add_step(clean).add_step(report).add_step(skipped)


def test_resume_after_failure_reruns_from_the_failed_step(tmp_path):
    calls, flag = [], tmp_path / "flag"
    p = resumable(calls, flag)
    failed = run_pipeline(p)
    assert not failed.success
    assert [failed.step_results[n].status for n in ("clean", "report", "skipped")] == [
        "failed", "upstream_failed", "skipped"]
    assert calls == ["fetch", "side", "clean"]

    flag.write_text("fixed")
    calls.clear()
    resumed = run_pipeline(p, resume=failed.run_id)
    assert resumed.success and resumed.run_id != failed.run_id
    assert calls == ["clean", "report"]  # fetch and side were not re-run
    assert resumed["report"] == 12 and resumed["raw"] == [1, 2, 3]
    r = resumed.step_results
    assert r["fetch"].reused and r["fetch"].status == "succeeded" and r["fetch"].attempts == 0
    assert _path(r["fetch"].artifact_uri).parent == Path(resumed.run_dir) / "outputs"
    assert r["skipped"].status == "skipped" and r["skipped"].reused
    assert not r["clean"].reused
    record = json.loads((Path(resumed.run_dir) / "record.json").read_text())
    assert record["resumed_from"] == failed.run_id

    # resuming the resumed run re-runs nothing; "latest" finds it
    calls.clear()
    again = run_pipeline(p, resume="latest")
    assert again.success and calls == [] and again.resumed_from == resumed.run_id


def test_resume_errors():
    p = counted_pipeline([])
    with pytest.raises(ValueError, match="no run 'nope'"):
        run_pipeline(p, resume="nope")
    other = run_pipeline(counted_pipeline([], name="other"))
    with pytest.raises(ValueError, match="is a run of pipeline 'other'"):
        run_pipeline(p, resume=other.run_id)


# -- result API and progress -----------------------------------------------------------

def test_result_api():
    result = run_pipeline(counted_pipeline([]))
    assert result.pipeline_name == "p" and result.success and result.duration_seconds >= 0
    assert result.outputs == {"data": [0, 1, 2], "total": 3}
    assert result["total"] == 3 and "data" in result
    with pytest.raises(KeyError, match=r"no output named 'nope'; outputs produced: 'data', 'total'"):
        result["nope"]
    data = json.loads(json.dumps(result.to_dict()))
    assert data["step_results"]["load"]["status"] == "succeeded" and data["outputs"]["total"] == 3
    text = result.summary()
    assert "pipeline 'p' succeeded" in text and result.run_id in text
    assert any(line.split()[:2] == ["load", "succeeded"] for line in text.splitlines())


def test_to_dict_with_unserialisable_outputs():
    @step(outputs=["s"])
    def f():
        return {1, 2}

    data = run_pipeline(Pipeline("p").add_step(f)).to_dict()
    assert json.dumps(data) and data["outputs"]["s"] == "{1, 2}"


def test_progress_events_and_console_printer(monkeypatch):
    from pipec.runner import execute
    monkeypatch.setattr(execute, "sleep", lambda s: None)
    events = []
    stream = io.StringIO()
    printer = ConsolePrinter(stream)

    calls = []

    @step(outputs=["v"], retries=1, retry_delay=2)
    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("boom")
        return 1

    def both(event):
        events.append(event)
        printer(event)

    run_pipeline(Pipeline("p").add_step(flaky), progress=both)
    kinds = [(e.kind, e.step) for e in events]
    assert kinds == [("run_started", None), ("step_started", "flaky"), ("attempt_failed", "flaky"),
                     ("step_finished", "flaky"), ("run_finished", None)]
    assert events[2].retry_in == 2 and events[2].attempt == 1 and events[2].max_attempts == 2
    assert events[3].status == "succeeded"
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5
    assert "flaky: attempt 1/2 failed: ConnectionError: boom; retrying in 2s" in lines[2]
    assert "flaky: succeeded" in lines[3] and "pipeline 'p' succeeded" in lines[4]


# -- loader ---------------------------------------------------------------------------

def test_loader_imports_by_module_name_with_relative_imports():
    pipelines = load_pipelines(CASES / "pkg" / "sub" / "flow.py")
    assert list(pipelines) == ["first", "second"]
    assert sys.modules["pkg.sub.flow"].__file__ == str(CASES / "pkg" / "sub" / "flow.py")
    assert sys.path[0] == str(CASES)
    assert run_pipeline(pipelines["second"])["tripled"] == 15


def test_loader_reloads_and_does_not_keep_stale_modules(tmp_path):
    for value in (1, 2):
        folder = tmp_path / f"v{value}"
        folder.mkdir()
        (folder / "runner_case_mod.py").write_text(
            "from pipec import Pipeline, step\n"
            f"@step(outputs=['v'])\ndef make():\n    return {value}\n"
            "pipe = Pipeline('pipe').add_step(make)\n")
        pipelines = load_pipelines(folder / "runner_case_mod.py")
        assert run_pipeline(pipelines["pipe"], store=folder / ".pipec")["v"] == value


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_pipelines(tmp_path / "missing.py")


# -- resume after a crash ------------------------------------------------------------

CRASHING = '''
import os
from pathlib import Path
from pipec import Pipeline, step

HERE = Path(__file__).parent

def _called(name):
    with open(HERE / "calls.txt", "a") as f:
        f.write(name + "\\n")

@step(outputs=["a"])
def first():
    _called("first")
    return 1

@step(inputs=["a"], outputs=["b"])
def second(a):
    _called("second")
    return a + 1

@step(inputs=["b"], outputs=["c"])
def third(b):
    _called("third")
    if not (HERE / "fixed").exists():
        os._exit(3)  # the process dies: no `finally`, no exit handler
    return b + 1

@step(inputs=["c"], outputs=["d"])
def fourth(c):
    _called("fourth")
    return c + 1

pipeline = Pipeline("crashy", enable_cache=False).add_step(first).add_step(second).add_step(third).add_step(fourth)
'''


def test_resume_after_the_process_crashed_mid_run(tmp_path):
    import subprocess
    folder = tmp_path / "mod"
    folder.mkdir()
    (folder / "crashy_flow.py").write_text(CRASHING)
    store = tmp_path / "store"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import crashy_flow; "
            "from pipec.runner import run_pipeline; "
            "run_pipeline(crashy_flow.pipeline, store=sys.argv[2], run_id='crashed-1')")
    proc = subprocess.run([sys.executable, "-c", code, str(folder), str(store)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    calls = folder / "calls.txt"
    assert calls.read_text().split() == ["first", "second", "third"]

    crashed = store / "runs" / "crashed-1"
    record = json.loads((crashed / "record.json").read_text())
    assert record["finished"] is False and record["success"] is None
    lines = [json.loads(line) for line in (crashed / "steps.jsonl").read_text().splitlines()]
    assert [(x["name"], x["status"]) for x in lines] == [("first", "succeeded"), ("second", "succeeded")]
    # a line cut short by the crash is ignored
    with open(crashed / "steps.jsonl", "a") as f:
        f.write('{"name": "third", "sta')

    (folder / "fixed").write_text("")
    calls.write_text("")
    p = load_pipelines(folder / "crashy_flow.py")["crashy"]
    resumed = run_pipeline(p, store=store, resume="crashed-1")
    assert resumed.success and resumed.resumed_from == "crashed-1"
    assert calls.read_text().split() == ["third", "fourth"]  # first and second were reused
    r = resumed.step_results
    assert r["first"].reused and r["second"].reused and not r["third"].reused
    assert r["first"].status == "succeeded" and r["first"].attempts == 0
    assert resumed["a"] == 1 and resumed["b"] == 2 and resumed["d"] == 4
    final = json.loads((Path(resumed.run_dir) / "record.json").read_text())
    assert final["finished"] is True and final["success"] is True
    assert list(final["step_results"]) == ["first", "second", "third", "fourth"]
    assert final["output_names"] == ["a", "b", "c", "d"]

    # the crashed run can be resumed again: its record is left as it was
    calls.write_text("")
    again = run_pipeline(p, store=store, resume="crashed-1")
    assert again.success and calls.read_text().split() == ["third", "fourth"]
