"""Retries, backoff, timeouts, `when`, skips, fallbacks, failures, fan-out,
exits, and values handed between steps as the targets hand them."""

import time

import pytest

from pipec.runner import execute
from runner_util import run_source


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPEC_HOME", raising=False)


FLAKY = """
CALLS = {"n": 0}


def flaky_value(fail_times):
    CALLS["n"] += 1
    if CALLS["n"] <= fail_times:
        raise ConnectionError(f"try {CALLS['n']}")
    return "ok"
"""


def test_retry_succeeds_on_a_later_attempt(tmp_path, monkeypatch):
    delays = []
    monkeypatch.setattr(execute, "sleep", delays.append)
    result = run_source(tmp_path, FLAKY + """
@step(outputs=["v"], retries=3, retry_delay=5, retry_backoff=2.0)
def fn():
    return flaky_value(2)

p = Pipeline("p").add_step(fn)
""")
    r = result.step_results["fn"]
    assert result.success and r.status == "succeeded" and r.attempts == 3 and result["v"] == "ok"
    assert delays == [5.0, 10.0]  # delay * backoff ** (k - 1) before retry k


def test_retry_exhausted_fails_with_the_last_error(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "sleep", lambda s: None)
    result = run_source(tmp_path, FLAKY + """
@step(outputs=["v"])
@retry(max_attempts=3, delay=1, backoff=1)
def fn():
    return flaky_value(10)

p = Pipeline("p").add_step(fn)
""")
    r = result.step_results["fn"]
    assert r.status == "failed" and r.attempts == 3
    assert r.error == "ConnectionError: try 3" and "ConnectionError" in r.traceback


def test_real_backoff_timing(tmp_path):
    start = time.perf_counter()
    result = run_source(tmp_path, FLAKY + """
@step(outputs=["v"], retries=3, retry_delay=0.05, retry_backoff=2.0)
def fn():
    return flaky_value(3)

p = Pipeline("p", enable_cache=False).add_step(fn)
""")
    elapsed = time.perf_counter() - start
    assert result.success and result.step_results["fn"].attempts == 4
    assert elapsed >= 0.05 + 0.1 + 0.2  # lower bound only


def test_timeout_is_a_failed_attempt(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "sleep", lambda s: None)
    start = time.perf_counter()
    result = run_source(tmp_path, """
import time

@step(outputs=["v"], timeout=0.1, retries=1)
def slow():
    time.sleep(3)
    return 1

p = Pipeline("p").add_step(slow)
""")
    r = result.step_results["slow"]
    assert r.status == "failed" and r.attempts == 2
    assert r.error == "TimeoutError: step 'slow' timed out after 0.1s"
    assert time.perf_counter() - start < 2.5  # did not wait for the worker


def test_timeout_not_reached_returns_the_value(tmp_path):
    result = run_source(tmp_path, """
import threading

@step(outputs=["v"], timeout=5)
def quick():
    return threading.current_thread().name

p = Pipeline("p").add_step(quick)
""")
    assert result.success and result["v"].startswith("pipec-quick")


def test_a_timeout_past_the_platform_limit_waits_without_end(tmp_path):
    result = run_source(tmp_path, """
@step(outputs=["v"], timeout=1e15)
def quick():
    return "done"

p = Pipeline("p").add_step(quick)
""")
    assert result.success and result["v"] == "done"
    assert result.step_results["quick"].attempts == 1


def test_defaults_and_positional_only_parameters_are_the_functions_own(tmp_path):
    result = run_source(tmp_path, """
@step(outputs=["pair"])
def make(pair=(1, "a")):
    return pair

@step(outputs=["both"])
@when(lambda n, /: n > 0)
def both(flag=(True,), n=0, /):
    return flag, n

p = Pipeline("p", context=context(n=2)).add_step(make).add_step(both)
""")
    assert result.success, result.step_results
    assert type(result["pair"]) is tuple and result["pair"] == (1, "a")
    assert result["both"] == ((True,), 2)


GATED = """
@step(outputs=["score"])
def evaluate():
    return 0.7

@step(inputs=["score"], outputs=["registered"])
@when(lambda score, threshold: score >= threshold)
def register(score):
    return f"registered {score}"

@step(inputs=["registered"], outputs=["notified"])
def notify(registered):
    return "notified"

@step(outputs=["gated"])
@when(lambda registered: True)  # reads an output of a skipped step: skipped too
def audit():
    return "audited"

@step(inputs=["score"], outputs=["report"])
def report(score):
    return f"score {score}"

p = Pipeline("gate", context=context(threshold=0.9))
p.add_step(evaluate).add_step(register).add_step(notify).add_step(audit).add_step(report)
"""


def test_when_false_skips_and_skips_propagate(tmp_path):
    result = run_source(tmp_path, GATED, "gate")
    statuses = {n: r.status for n, r in result.step_results.items()}
    assert statuses == {"evaluate": "succeeded", "register": "skipped", "notify": "skipped",
                        "audit": "skipped", "report": "succeeded"}
    assert result.success
    assert list(result.outputs) == ["score", "report"]
    with pytest.raises(KeyError, match="'registered' was not produced: its step 'register' is skipped"):
        result["registered"]


def test_when_true_runs_and_context_override_flips_it(tmp_path):
    assert run_source(tmp_path, GATED, "gate", context={"threshold": 0.5})["notified"] == "notified"


def test_when_predicate_that_raises_fails_the_step(tmp_path):
    result = run_source(tmp_path, """
@step
@when(lambda flag: 1 / 0)
def s():
    return None

p = Pipeline("p", context=context(flag=1)).add_step(s)
""")
    r = result.step_results["s"]
    assert r.status == "failed" and "ZeroDivisionError" in r.error


def test_fallback_after_last_attempt(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "sleep", lambda s: None)
    result = run_source(tmp_path, """
def fallback(x, y):
    return {"b": [x, y], "a": x}

@step(outputs=["a", "b"], retries=1)
@on_failure(fallback)
def broken(x, y=2):
    raise RuntimeError("down")

@step(inputs=["a"], outputs=["c"])
def after(a):
    return a + 1

p = Pipeline("p", context=context(x=1)).add_step(broken).add_step(after)
""")
    r = result.step_results["broken"]
    assert result.success and r.status == "succeeded" and r.fallback_used and r.attempts == 2
    assert r.error == "RuntimeError: down"
    assert (result["a"], result["b"], result["c"]) == (1, [1, 2], 2)


def test_fallback_that_fails_fails_the_step(tmp_path):
    result = run_source(tmp_path, """
def fallback():
    raise ValueError("no backup")

@step(outputs=["v"])
@on_failure(fallback)
def broken():
    raise RuntimeError("down")

p = Pipeline("p").add_step(broken)
""")
    r = result.step_results["broken"]
    assert r.status == "failed"
    assert r.error == "RuntimeError: down; then fallback 'fallback' failed: ValueError: no backup"


def test_failure_marks_downstream_and_independent_branch_runs(tmp_path):
    result = run_source(tmp_path, """
def mark(name):
    with open("ran.txt", "a") as f:
        f.write(name + "\\n")

@step(outputs=["n"])
def numbers():
    return [1, 2]

@step(outputs=["r"])
def divide(n, d):
    return [x / d for x in n]

@step(outputs=["s"])
def total(r):
    mark("total")
    return sum(r)

@step
@when(lambda s: True)
def gate():
    mark("gate")

@step(outputs=["c"])
def count(n):
    mark("count")
    return len(n)

p = Pipeline("p", context=context(d=0))
p.add_step(numbers).add_step(divide).add_step(total).add_step(gate).add_step(count)
""")
    statuses = {n: r.status for n, r in result.step_results.items()}
    assert statuses == {"numbers": "succeeded", "divide": "failed", "total": "upstream_failed",
                        "gate": "upstream_failed", "count": "succeeded"}
    assert not result.success and (tmp_path / "ran.txt").read_text() == "count\n"
    assert result.step_results["divide"].error == "ZeroDivisionError: division by zero"
    assert result["c"] == 2


def test_foreach_over_context_list_keeps_element_order(tmp_path):
    result = run_source(tmp_path, """
import time

@step(outputs=["out", "tag"], foreach="item")
def work(item, scale):
    time.sleep(0.02 * (5 - item))  # later elements finish first in the pool
    return item * scale, f"t{item}"

p = Pipeline("p", context=context(item=[1, 2, 3, 4], scale=10)).add_step(work)
""")
    assert result["out"] == [10, 20, 30, 40] and result["tag"] == ["t1", "t2", "t3", "t4"]


def test_foreach_over_upstream_output(tmp_path):
    result = run_source(tmp_path, """
@step(outputs=["shards"])
def make():
    return [[1, 2], [3], []]

@step(inputs=["shards"], outputs=["sums"], foreach="shards")
def add(shards):
    return sum(shards)

p = Pipeline("p").add_step(make).add_step(add)
""")
    assert result["sums"] == [3, 3, 0]


FOREACH_FLAKY = """
import threading

COUNTS = {}
LOCK = threading.Lock()

@step(outputs=["v"], foreach="x", retries=1)
def f(x):
    with LOCK:
        COUNTS[x] = COUNTS.get(x, 0) + 1
    if x == "bad" or (x == "flaky" and COUNTS[x] == 1):
        raise RuntimeError(x)
    return x

p = Pipeline("p", context=context(x=["a", "flaky"])).add_step(f)
q = Pipeline("q", context=context(x=["a", "bad"])).add_step(f)
"""


def test_foreach_element_retries_and_failures(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "sleep", lambda s: None)
    ok = run_source(tmp_path, FOREACH_FLAKY, "p")
    assert ok.success and ok["v"] == ["a", "flaky"] and ok.step_results["f"].attempts == 2
    bad = run_source(tmp_path, FOREACH_FLAKY, "q")
    assert bad.step_results["f"].status == "failed"
    assert bad.step_results["f"].error == "element 1: RuntimeError: bad"


def test_foreach_value_must_be_a_list_and_empty_list_gives_empty_outputs(tmp_path):
    source = """
@step(outputs=["v"], foreach="x")
def f(x):
    return x

p = Pipeline("p", context=context(x=[])).add_step(f)
"""
    bad = run_source(tmp_path, source, "p", context={"x": 3})
    assert "is bound to 3 (int), which is not a list" in bad.step_results["f"].error
    empty = run_source(tmp_path, source, "p")
    assert empty.success and empty["v"] == []


def test_foreach_when_is_evaluated_once(tmp_path):
    result = run_source(tmp_path, """
def check(flag):
    with open("checks.txt", "a") as f:
        f.write("checked\\n")
    return flag

@step(outputs=["v"], foreach="x")
@when(check)
def f(x):
    return x

p = Pipeline("p", context=context(x=[1, 2, 3], flag=True)).add_step(f)
""")
    assert result["v"] == [1, 2, 3] and (tmp_path / "checks.txt").read_text() == "checked\n"


# -- values handed between steps (as the targets hand them) -------------------------

def test_an_in_place_change_of_an_input_does_not_reach_other_steps(tmp_path):
    """Each step reads its inputs back from the envelope the producer's
    output was written to, as a target's task does: a consumer that changes
    its input in place changes its own copy only, cached run or fresh."""
    source = """
@step(outputs=["items"])
def make():
    return [1, 2]

@step(outputs=["first"])
def spoil(items):
    items.append(99)
    return len(items)

@step(outputs=["second"])
def count(items, config):
    config["seen"] = True
    return len(items)

@step(outputs=["config_after"])
def read_config(config):
    return dict(config)

p = Pipeline("p", context=context(config={"k": 1}))
p.add_step(make).add_step(spoil).add_step(count).add_step(read_config)
"""
    for _ in range(2):  # fresh, then cached
        result = run_source(tmp_path, source)
        assert (result["items"], result["first"], result["second"]) == ([1, 2], 3, 2)
        assert result["config_after"] == {"k": 1}


def test_an_output_no_target_can_carry_fails_the_producing_step(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "sleep", lambda s: None)
    result = run_source(tmp_path, """
import threading

@step(outputs=["gen"], retries=1)
def numbers():
    return (i for i in range(3))

@step(outputs=["lock"])
def locked():
    return threading.Lock()

@step(outputs=["n"])
def use(gen):
    return sum(gen)

p = Pipeline("p").add_step(numbers).add_step(locked).add_step(use)
""")
    statuses = {n: r.status for n, r in result.step_results.items()}
    assert statuses == {"numbers": "failed", "locked": "failed", "use": "upstream_failed"}
    r = result.step_results["numbers"]
    assert r.attempts == 2 and "output 'gen' of step 'numbers' cannot be passed on" in r.error
    assert "cannot pickle 'generator' object" in r.error


def test_values_keep_their_types_and_dict_order(tmp_path):
    result = run_source(tmp_path, """
@step(outputs=["values"])
def make():
    return {"b": 2, "a": (1, 2.0), "s": {3}, "raw": b"x", "n": None}

@step(outputs=["kinds"])
def kinds(values):
    return [list(values), [type(v).__name__ for v in values.values()]]

p = Pipeline("p").add_step(make).add_step(kinds)
""")
    assert result["kinds"] == [["b", "a", "s", "raw", "n"], ["int", "tuple", "set", "bytes", "NoneType"]]


def test_objects_of_classes_of_the_pipeline_module_cross_steps(tmp_path):
    source = """
import dataclasses

@dataclasses.dataclass
class Point:
    x: int
    y: int

    def norm1(self):
        return abs(self.x) + abs(self.y)

@step(outputs=["point"])
def make():
    return Point(3, -4)

@step(outputs=["summary"])
def use(point):
    return [point.norm1(), isinstance(point, Point), point == Point(3, -4)]

@step(outputs=["moved"])
def move(point):
    return dataclasses.replace(point, x=point.x + 1)

p = Pipeline("p").add_step(make).add_step(use).add_step(move)
"""
    for _ in range(2):  # fresh, then from the cache
        result = run_source(tmp_path, source)
        assert result.success, result.summary()
        assert result["summary"] == [7, True, True]
        assert (result["moved"].x, result["moved"].y) == (4, -4)


# -- exits -------------------------------------------------------------------------------

@pytest.mark.parametrize("call", ["sys.exit(0)", "os._exit(0)", "sys.exit('bye')", "exit()"])
def test_a_step_that_exits_fails_and_the_run_goes_on(tmp_path, call):
    result = run_source(tmp_path, f"""
import os
import sys

@step(outputs=["a"])
def leave():
    {call}
    return 1

@step(outputs=["b"])
def other():
    return 2

@step(outputs=["c"])
def after(a):
    return a

p = Pipeline("p").add_step(leave).add_step(other).add_step(after)
""")
    statuses = {n: r.status for n, r in result.step_results.items()}
    assert statuses == {"leave": "failed", "other": "succeeded", "after": "upstream_failed"}
    assert not result.success and result["b"] == 2
    assert result.step_results["leave"].error.split(":")[0] in ("SystemExit", "StepExit")


def test_dataclasses_of_a_module_with_postponed_annotations(tmp_path):
    """`from __future__ import annotations` makes dataclasses look the class's
    module up in sys.modules: the carried code's module is there too."""
    from pipec.runner import run_pipeline
    from pipec.runner.plan import compile_pipeline

    path = tmp_path / "postponed.py"
    path.write_text(
        "from __future__ import annotations\n\nimport dataclasses\n\n"
        "from pipec import Pipeline, step\n\n\n"
        "@dataclasses.dataclass\nclass Box:\n    size: int\n\n\n"
        "@step(outputs=['box'])\ndef make() -> Box:\n    return Box(3)\n\n\n"
        "@step(outputs=['n'])\ndef use(box: Box) -> int:\n    return box.size\n\n\n"
        "p = Pipeline('p').add_step(make).add_step(use)\n"
    )
    pipeline, root = compile_pipeline("p", path)
    result = run_pipeline(pipeline, root=root)
    assert result.success, result.summary()
    assert result["n"] == 3 and result["box"].size == 3
