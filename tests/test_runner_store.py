"""The store: caching and step keys, run records, outputs on disk, resume;
the result API and progress events."""

import io
import json
import pickle
import sys
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from pipec.runner import ConsolePrinter, run_pipeline
from pipec.runner.plan import compile_pipeline
from runner_util import run_source, write_module

CASES = Path(__file__).parent / "runner_cases"


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPEC_HOME", raising=False)


def _path(uri):
    return Path(url2pathname(urlparse(uri).path))


CALLED = """
def _called(name):
    with open("calls.txt", "a") as f:
        f.write(name + "\\n")
"""


def calls(folder=None):
    path = Path(folder or ".") / "calls.txt"
    return path.read_text().split() if path.exists() else []


def counted_source(cache="None", name="p", enable_cache=True):
    return CALLED + f"""
@step(outputs=["data"], cache={cache})
def load(size):
    _called("load")
    return list(range(size))

@step(inputs=["data"], outputs=["total"], cache={cache})
def total(data, offset):
    _called("total")
    return sum(data) + offset

{name} = Pipeline("{name}", context=context(size=3, offset=0), enable_cache={enable_cache})
{name}.add_step(load).add_step(total)
"""


class Counted:
    """A module file with the counted pipeline, run as often as needed."""

    def __init__(self, folder, **options):
        self.name = options.get("name", "p")
        self.pipeline, self.root = compile_pipeline(self.name, write_module(folder, counted_source(**options)))

    def run(self, **options):
        return run_pipeline(self.pipeline, root=self.root, **options)


# -- cache --------------------------------------------------------------------

def test_cache_hit_and_misses(tmp_path):
    p = Counted(tmp_path)
    first = p.run()
    assert calls() == ["load", "total"] and first["total"] == 3
    second = p.run()
    assert calls() == ["load", "total"]  # nothing ran
    assert {r.status for r in second.step_results.values()} == {"cached"}
    assert all(r.cached and r.attempts == 0 for r in second.step_results.values())
    assert second.success and second["total"] == 3
    # a context value a step reads: that step misses, its input changed: the next misses too
    p.run(context={"size": 4})
    assert calls() == ["load", "total"] * 2
    # only `total`'s parameter changed: `load` hits, `total` misses
    third = p.run(context={"offset": 10})
    assert calls() == ["load", "total"] * 2 + ["total"] and third["total"] == 13
    assert third.step_results["load"].status == "cached"
    assert third.step_results["total"].status == "succeeded"


def test_cache_disabled_by_step_or_pipeline(tmp_path):
    p = Counted(tmp_path, cache="False")
    p.run()
    p.run()
    assert calls() == ["load", "total"] * 2
    q = Counted(tmp_path, name="q", enable_cache=False)
    q.run()
    q.run()
    assert calls() == ["load", "total"] * 4


CACHED_STEP = CALLED + """
from helpers import scale

FACTOR = {factor}

def adjust(v):
    return v * FACTOR{extra}

@step(outputs=["out"])
def work(values):
    _called("work")
    return [adjust(scale(v)) for v in values]

p = Pipeline("p", context=context(values=[1, 2])).add_step(work)
"""


@pytest.mark.parametrize("edit", ["constant", "helper function", "helper module", "pipec version"])
def test_cache_key_covers_everything_the_step_carries(tmp_path, monkeypatch, edit):
    """Editing a module constant, a helper function, a helper module the step
    imports, or a new pipec version runs the step again."""
    (tmp_path / "helpers.py").write_text("def scale(v):\n    return v * 10\n")
    path = tmp_path / "flow.py"

    def run(factor=2, extra=""):
        path.write_text("from pipec import Pipeline, context, step\n"
                        + CACHED_STEP.format(factor=factor, extra=extra))
        pipeline, root = compile_pipeline("p", path)
        return run_pipeline(pipeline, root=root)

    assert run()["out"] == [20, 40]
    assert run().step_results["work"].status == "cached"
    if edit == "constant":
        result = run(factor=3)
        expected = [30, 60]
    elif edit == "helper function":
        result = run(extra=" + 1")
        expected = [21, 41]
    elif edit == "helper module":
        (tmp_path / "helpers.py").write_text("def scale(v):\n    return v * 100\n")
        result = run()
        expected = [200, 400]
    else:
        import pipec.runner.cache as cache_module
        monkeypatch.setattr(cache_module, "__version__", "99.0")
        result = run()
        expected = [20, 40]
    assert result.step_results["work"].status == "succeeded" and result["out"] == expected
    assert calls() == ["work", "work"]


def test_cache_key_keeps_dict_key_order(tmp_path):
    source = CALLED + """
@step(outputs=["keys"])
def keys(options):
    _called("keys")
    return list(options)

p = Pipeline("p", context=context(options={"a": 1, "b": 2})).add_step(keys)
"""
    path = write_module(tmp_path, source)
    pipeline, root = compile_pipeline("p", path)
    assert run_pipeline(pipeline, root=root)["keys"] == ["a", "b"]
    reordered = run_pipeline(pipeline, root=root, context={"options": {"b": 2, "a": 1}})
    assert reordered.step_results["keys"].status == "succeeded" and reordered["keys"] == ["b", "a"]
    assert calls() == ["keys", "keys"]


def test_unpicklable_output_fails_and_is_not_cached(tmp_path):
    source = """
import threading

@step(outputs=["lock"])
def make():
    return threading.Lock()

@step(outputs=["ok"])
def use(lock):
    return True

p = Pipeline("p").add_step(make).add_step(use)
"""
    for _ in range(2):
        result = run_source(tmp_path, source)
        assert result.step_results["make"].status == "failed"
        assert result.step_results["make"].artifact_uri is None
        assert "cannot pickle" in result.step_results["make"].error


# -- store and record -----------------------------------------------------------

def test_record_and_outputs_on_disk(tmp_path):
    result = Counted(tmp_path).run(context={"offset": 1}, run_id="20250101T000000-abcdef")
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
    assert _path(step["artifact_uri"]) == run_dir / "outputs" / "total.json"
    assert json.loads((run_dir / "outputs" / "total.json").read_bytes()) == 4
    assert json.loads((run_dir / "outputs" / "data.json").read_bytes()) == [0, 1, 2]


def test_outputs_that_json_cannot_carry_exactly_are_pickles(tmp_path):
    result = run_source(tmp_path, """
@step(outputs=["t"])
def f():
    return (1, 2)

p = Pipeline("p").add_step(f)
""")
    path = _path(result.step_results["f"].artifact_uri)
    assert path.suffix == ".pkl" and pickle.loads(path.read_bytes()) == (1, 2)


def test_store_location_argument_and_env(tmp_path, monkeypatch):
    p = Counted(tmp_path)
    p.run(store=tmp_path / "elsewhere")
    assert len(list((tmp_path / "elsewhere" / "runs").iterdir())) == 1
    monkeypatch.setenv("PIPEC_HOME", str(tmp_path / "home"))
    result = p.run()
    assert Path(result.run_dir).parent == tmp_path / "home" / "runs"
    assert not (tmp_path / ".pipec").exists()


def test_run_ids_are_sortable_and_unique(tmp_path):
    import re
    p = Counted(tmp_path)
    ids = [p.run().run_id for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", i) for i in ids)
    with pytest.raises(ValueError, match="already exists"):
        p.run(run_id=ids[0])
    with pytest.raises(ValueError, match="invalid run id"):
        p.run(run_id="../x")


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
    assert Counted(tmp_path).run().git_commit == head


# -- resume -------------------------------------------------------------------------

RESUMABLE = CALLED + """
from pathlib import Path

@step(outputs=["raw"])
def fetch():
    _called("fetch")
    return [1, 2, 3]

@step(outputs=["side"])
def side():
    _called("side")
    return "side"

@step(inputs=["raw"], outputs=["clean"])
def clean(raw):
    _called("clean")
    if not Path("flag").exists():
        raise RuntimeError("flag missing")
    return [x * 2 for x in raw]

@step(inputs=["clean"], outputs=["report"])
def report(clean):
    _called("report")
    return sum(clean)

@step
@when(lambda raw: False)
def skipped():
    _called("skipped")

p = Pipeline("resumable", enable_cache=False)
p.add_step(fetch).add_step(side).add_step(clean).add_step(report).add_step(skipped)
"""


def _resumable(tmp_path, source=RESUMABLE):
    pipeline, root = compile_pipeline("resumable", write_module(tmp_path, source))
    return lambda **options: run_pipeline(pipeline, root=root, **options)


def test_resume_after_failure_reruns_from_the_failed_step(tmp_path):
    run = _resumable(tmp_path)
    failed = run()
    assert not failed.success
    assert [failed.step_results[n].status for n in ("clean", "report", "skipped")] == [
        "failed", "upstream_failed", "skipped"]
    assert calls() == ["fetch", "side", "clean"]

    (tmp_path / "flag").write_text("fixed")
    (tmp_path / "calls.txt").unlink()
    resumed = run(resume=failed.run_id)
    assert resumed.success and resumed.run_id != failed.run_id
    assert calls() == ["clean", "report"]  # fetch and side were not re-run
    assert resumed["report"] == 12 and resumed["raw"] == [1, 2, 3]
    r = resumed.step_results
    assert r["fetch"].reused and r["fetch"].status == "succeeded" and r["fetch"].attempts == 0
    assert _path(r["fetch"].artifact_uri).parent == Path(resumed.run_dir) / "outputs"
    assert r["skipped"].status == "skipped"  # its predicate is evaluated again: still false
    assert not r["clean"].reused
    record = json.loads((Path(resumed.run_dir) / "record.json").read_text())
    assert record["resumed_from"] == failed.run_id

    # resuming the resumed run re-runs nothing; "latest" finds it
    (tmp_path / "calls.txt").unlink()
    again = run(resume="latest")
    assert again.success and calls() == [] and again.resumed_from == resumed.run_id


RESUME_CONTEXT = CALLED + """
@step(outputs=["numbers"])
def numbers(n):
    _called("numbers")
    return list(range(n))

@step(outputs=["total"])
def total(numbers):
    _called("total")
    return sum(numbers)

@step(outputs=["other"])
def other(label):
    _called("other")
    return label

@step(outputs=["big"])
@when(lambda total: total > 10)
def big(total):
    _called("big")
    return total

@step(outputs=["broken"])
def broken(label):
    raise RuntimeError("always")

p = Pipeline("p", context=context(n=4, label="x"), enable_cache=False)
p.add_step(numbers).add_step(total).add_step(other).add_step(big).add_step(broken)
"""


def test_resume_with_changed_context_reruns_what_changed(tmp_path):
    """`--resume latest --set n=10` after a run with n=4: the steps whose
    inputs changed run again, a step skipped by a `when` that is now true
    runs, unchanged steps are reused."""
    pipeline, root = compile_pipeline("p", write_module(tmp_path, RESUME_CONTEXT))
    first = run_pipeline(pipeline, root=root)
    assert not first.success and first.step_results["big"].status == "skipped"
    assert calls() == ["numbers", "total", "other"]
    (tmp_path / "calls.txt").unlink()
    resumed = run_pipeline(pipeline, root=root, resume="latest", context={"n": 10})
    assert calls() == ["numbers", "total", "big"]
    assert resumed.context == {"n": 10, "label": "x"}
    assert (resumed["total"], resumed["big"]) == (45, 45)
    assert resumed.step_results["other"].reused and not resumed.step_results["total"].reused


def test_resume_after_the_code_changed_reruns_the_changed_step(tmp_path):
    run = _resumable(tmp_path)
    (tmp_path / "flag").write_text("fixed")
    first = run()
    assert first.success and first["report"] == 12
    (tmp_path / "calls.txt").unlink()
    changed = RESUMABLE.replace("return sum(clean)", "return sum(clean) + 1")
    resumed = _resumable(tmp_path, changed)(resume="latest")
    assert calls() == ["report"] and resumed["report"] == 13


def test_resume_errors(tmp_path):
    p = Counted(tmp_path)
    with pytest.raises(ValueError, match="no run 'nope'"):
        p.run(resume="nope")
    other = Counted(tmp_path, name="other").run()
    with pytest.raises(ValueError, match="is a run of pipeline 'other'"):
        p.run(resume=other.run_id)


# -- result API and progress -----------------------------------------------------------

def test_result_api(tmp_path):
    result = Counted(tmp_path).run()
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


def test_to_dict_with_unserialisable_outputs(tmp_path):
    data = run_source(tmp_path, """
@step(outputs=["s"])
def f():
    return {1, 2}

p = Pipeline("p").add_step(f)
""").to_dict()
    assert json.dumps(data) and data["outputs"]["s"] == "{1, 2}"


def test_progress_events_and_console_printer(tmp_path, monkeypatch):
    from pipec.runner import execute
    monkeypatch.setattr(execute, "sleep", lambda s: None)
    events = []
    stream = io.StringIO()
    printer = ConsolePrinter(stream)

    def both(event):
        events.append(event)
        printer(event)

    run_source(tmp_path, """
CALLS = []

@step(outputs=["v"], retries=1, retry_delay=2)
def flaky():
    CALLS.append(1)
    if len(CALLS) == 1:
        raise ConnectionError("boom")
    return 1

p = Pipeline("p").add_step(flaky)
""", progress=both)
    kinds = [(e.kind, e.step) for e in events]
    assert kinds == [("run_started", None), ("step_started", "flaky"), ("attempt_failed", "flaky"),
                     ("step_finished", "flaky"), ("run_finished", None)]
    assert events[2].retry_in == 2 and events[2].attempt == 1 and events[2].max_attempts == 2
    assert events[3].status == "succeeded"
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5
    assert "flaky: attempt 1/2 failed: ConnectionError: boom; retrying in 2s" in lines[2]
    assert "flaky: succeeded" in lines[3] and "pipeline 'p' succeeded" in lines[4]


# -- modules of a package ---------------------------------------------------------------

def test_package_module_with_relative_imports_runs_its_carried_code():
    pipeline, root = compile_pipeline("second", CASES / "pkg" / "sub" / "flow.py")
    assert root == CASES
    assert run_pipeline(pipeline, root=root)["tripled"] == 15
    assert str(CASES) not in sys.path  # the source root is on the path for the run only


# -- resume after a crash ------------------------------------------------------------

CRASHING = """
import os
import signal
from pathlib import Path
from pipec import Pipeline, step

HERE = Path(".")  # carried code runs in the working directory, as on the targets

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
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies: no `finally`, no exit handler
    return b + 1

@step(inputs=["c"], outputs=["d"])
def fourth(c):
    _called("fourth")
    return c + 1

pipeline = Pipeline("crashy", enable_cache=False).add_step(first).add_step(second).add_step(third).add_step(fourth)
"""


def test_resume_after_the_process_crashed_mid_run(tmp_path, monkeypatch):
    import subprocess
    folder = tmp_path / "mod"
    folder.mkdir()
    monkeypatch.chdir(folder)
    (folder / "crashy_flow.py").write_text(CRASHING)
    store = tmp_path / "store"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import crashy_flow; "
            "from pipec.runner import run_pipeline; "
            "run_pipeline(crashy_flow.pipeline, store=sys.argv[2], run_id='crashed-1')")
    proc = subprocess.run([sys.executable, "-c", code, str(folder), str(store)],
                          capture_output=True, text=True, timeout=120, cwd=folder)
    assert proc.returncode == -9, proc.stderr
    calls_file = folder / "calls.txt"
    assert calls_file.read_text().split() == ["first", "second", "third"]

    crashed = store / "runs" / "crashed-1"
    record = json.loads((crashed / "record.json").read_text())
    assert record["finished"] is False and record["success"] is None
    lines = [json.loads(line) for line in (crashed / "steps.jsonl").read_text().splitlines()]
    assert [(x["name"], x["status"]) for x in lines] == [("first", "succeeded"), ("second", "succeeded")]
    # a line cut short by the crash is ignored
    with open(crashed / "steps.jsonl", "a") as f:
        f.write('{"name": "third", "sta')

    (folder / "fixed").write_text("")
    calls_file.write_text("")
    p, root = compile_pipeline("crashy", folder / "crashy_flow.py")
    resumed = run_pipeline(p, root=root, store=store, resume="crashed-1")
    assert resumed.success and resumed.resumed_from == "crashed-1"
    assert calls_file.read_text().split() == ["third", "fourth"]  # first and second were reused
    r = resumed.step_results
    assert r["first"].reused and r["second"].reused and not r["third"].reused
    assert r["first"].status == "succeeded" and r["first"].attempts == 0
    assert resumed["a"] == 1 and resumed["b"] == 2 and resumed["d"] == 4
    final = json.loads((Path(resumed.run_dir) / "record.json").read_text())
    assert final["finished"] is True and final["success"] is True
    assert list(final["step_results"]) == ["first", "second", "third", "fourth"]
    assert final["output_names"] == ["a", "b", "c", "d"]

    # the crashed run can be resumed again: its record is left as it was
    calls_file.write_text("")
    again = run_pipeline(p, root=root, store=store, resume="crashed-1")
    assert again.success and calls_file.read_text().split() == ["third", "fourth"]
