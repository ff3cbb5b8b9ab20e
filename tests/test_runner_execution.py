"""Retries, backoff, timeouts, `when`, skips, fallbacks, failures, fan-out."""

import threading
import time

import pytest

from pipec import Pipeline, context, on_failure, retry, step, when
from pipec.runner import execute, run_pipeline


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPEC_HOME", raising=False)


def flaky(fail_times, value="ok"):
    """A function failing its first `fail_times` calls; `.calls` counts."""
    def fn():
        fn.calls += 1
        if fn.calls <= fail_times:
            raise ConnectionError(f"try {fn.calls}")
        return value
    fn.calls = 0
    return fn


def test_retry_succeeds_on_a_later_attempt(monkeypatch):
    delays = []
    monkeypatch.setattr(execute, "sleep", delays.append)
    fn = flaky(2)
    s = step(outputs=["v"], retries=3, retry_delay=5, retry_backoff=2.0)(fn)
    result = run_pipeline(Pipeline("p").add_step(s))
    r = result.step_results["fn"]
    assert result.success and r.status == "succeeded" and r.attempts == 3 and result["v"] == "ok"
    assert delays == [5.0, 10.0]  # delay * backoff ** (k - 1) before retry k


def test_retry_exhausted_fails_with_the_last_error(monkeypatch):
    monkeypatch.setattr(execute, "sleep", lambda s: None)
    fn = flaky(10)
    s = step(outputs=["v"])(retry(max_attempts=3, delay=1, backoff=1)(fn))
    r = run_pipeline(Pipeline("p").add_step(s)).step_results["fn"]
    assert r.status == "failed" and r.attempts == 3 and fn.calls == 3
    assert r.error == "ConnectionError: try 3" and "ConnectionError" in r.traceback


def test_real_backoff_timing():
    fn = flaky(3)
    s = step(outputs=["v"], retries=3, retry_delay=0.05, retry_backoff=2.0)(fn)
    start = time.perf_counter()
    result = run_pipeline(Pipeline("p", enable_cache=False).add_step(s))
    elapsed = time.perf_counter() - start
    assert result.success and result.step_results["fn"].attempts == 4
    assert elapsed >= 0.05 + 0.1 + 0.2  # lower bound only


def test_timeout_is_a_failed_attempt(monkeypatch):
    monkeypatch.setattr(execute, "sleep", lambda s: None)
    release = threading.Event()

    @step(outputs=["v"], timeout=0.1, retries=1)
    def slow():
        release.wait(5)
        return 1

    start = time.perf_counter()
    result = run_pipeline(Pipeline("p").add_step(slow))
    release.set()
    r = result.step_results["slow"]
    assert r.status == "failed" and r.attempts == 2
    assert r.error == "TimeoutError: step 'slow' timed out after 0.1s"
    assert time.perf_counter() - start < 4  # did not wait for the worker


def test_timeout_not_reached_returns_the_value():
    @step(outputs=["v"], timeout=5)
    def quick():
        return threading.current_thread().name

    result = run_pipeline(Pipeline("p").add_step(quick))
    assert result.success and result["v"].startswith("pipec-quick")


def _gated(threshold_default):
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

    p = Pipeline("gate", context=context(threshold=threshold_default))
    return p.add_step(evaluate).add_step(register).add_step(notify).add_step(audit).add_step(report)


def test_when_false_skips_and_skips_propagate():
    result = run_pipeline(_gated(0.9))
    statuses = {n: r.status for n, r in result.step_results.items()}
    assert statuses == {"evaluate": "succeeded", "register": "skipped", "notify": "skipped",
                        "audit": "skipped", "report": "succeeded"}
    assert result.success
    assert list(result.outputs) == ["score", "report"]
    with pytest.raises(KeyError, match="'registered' was not produced: its step 'register' is skipped"):
        result["registered"]


def test_when_true_runs_and_context_override_flips_it():
    assert run_pipeline(_gated(0.9), context={"threshold": 0.5})["notified"] == "notified"


def test_when_predicate_that_raises_fails_the_step():
    @step
    @when(lambda flag: 1 / 0)
    def s():
        return None

    r = run_pipeline(Pipeline("p", context=context(flag=1)).add_step(s)).step_results["s"]
    assert r.status == "failed" and "ZeroDivisionError" in r.error


def test_fallback_after_last_attempt(monkeypatch):
    monkeypatch.setattr(execute, "sleep", lambda s: None)
    got = []

    def fallback(x, y):
        got.append((x, y))
        return {"b": y, "a": x}

    @step(outputs=["a", "b"], retries=1)
    @on_failure(fallback)
    def broken(x, y=2):
        raise RuntimeError("down")

    @step(inputs=["a"], outputs=["c"])
    def after(a):
        return a + 1

    result = run_pipeline(Pipeline("p", context=context(x=1)).add_step(broken).add_step(after))
    r = result.step_results["broken"]
    assert result.success and r.status == "succeeded" and r.fallback_used and r.attempts == 2
    assert r.error == "RuntimeError: down"
    assert got == [(1, 2)] and (result["a"], result["b"], result["c"]) == (1, 2, 2)


def test_fallback_that_fails_fails_the_step():
    def fallback():
        raise ValueError("no backup")

    @step(outputs=["v"])
    @on_failure(fallback)
    def broken():
        raise RuntimeError("down")

    r = run_pipeline(Pipeline("p").add_step(broken)).step_results["broken"]
    assert r.status == "failed"
    assert r.error == "RuntimeError: down; then fallback 'fallback' failed: ValueError: no backup"


def test_failure_marks_downstream_and_independent_branch_runs():
    ran = []

    @step(outputs=["n"])
    def numbers():
        return [1, 2]

    @step(outputs=["r"])
    def divide(n, d):
        return [x / d for x in n]

    @step(outputs=["s"])
    def total(r):
        ran.append("total")
        return sum(r)

    @step
    @when(lambda s: True)
    def gate():
        ran.append("gate")

    @step(outputs=["c"])
    def count(n):
        ran.append("count")
        return len(n)

    p = Pipeline("p", context=context(d=0))
    p.add_step(numbers).add_step(divide).add_step(total).add_step(gate).add_step(count)
    result = run_pipeline(p)
    statuses = {n: r.status for n, r in result.step_results.items()}
    assert statuses == {"numbers": "succeeded", "divide": "failed", "total": "upstream_failed",
                        "gate": "upstream_failed", "count": "succeeded"}
    assert not result.success and ran == ["count"]
    assert result.step_results["divide"].error == "ZeroDivisionError: division by zero"
    assert result["c"] == 2


def test_foreach_over_context_list_keeps_element_order():
    @step(outputs=["out", "tag"], foreach="item")
    def work(item, scale):
        time.sleep(0.02 * (5 - item))  # later elements finish first in the pool
        return item * scale, f"t{item}"

    p = Pipeline("p", context=context(item=[1, 2, 3, 4], scale=10)).add_step(work)
    result = run_pipeline(p)
    assert result["out"] == [10, 20, 30, 40] and result["tag"] == ["t1", "t2", "t3", "t4"]


def test_foreach_over_upstream_output():
    @step(outputs=["shards"])
    def make():
        return [[1, 2], [3], []]

    @step(inputs=["shards"], outputs=["sums"], foreach="shards")
    def add(shards):
        return sum(shards)

    result = run_pipeline(Pipeline("p").add_step(make).add_step(add))
    assert result["sums"] == [3, 3, 0]


def test_foreach_element_retries_and_failures(monkeypatch):
    monkeypatch.setattr(execute, "sleep", lambda s: None)
    counts = {}
    lock = threading.Lock()

    @step(outputs=["v"], foreach="x", retries=1)
    def f(x):
        with lock:
            counts[x] = counts.get(x, 0) + 1
        if x == "bad" or (x == "flaky" and counts[x] == 1):
            raise RuntimeError(x)
        return x

    ok = run_pipeline(Pipeline("p", context=context(x=["a", "flaky"])).add_step(f))
    assert ok.success and ok["v"] == ["a", "flaky"] and ok.step_results["f"].attempts == 2
    bad = run_pipeline(Pipeline("q", context=context(x=["a", "bad"])).add_step(f))
    assert bad.step_results["f"].status == "failed"
    assert bad.step_results["f"].error == "element 1: RuntimeError: bad"


def test_foreach_value_must_be_a_list_and_empty_list_gives_empty_outputs():
    @step(outputs=["v"], foreach="x")
    def f(x):
        return x

    bad = run_pipeline(Pipeline("p", context=context(x=3)).add_step(f))
    assert "is bound to 3 (int), which is not a list" in bad.step_results["f"].error
    empty = run_pipeline(Pipeline("q", context=context(x=[])).add_step(f))
    assert empty.success and empty["v"] == []


def test_foreach_when_is_evaluated_once():
    calls = []

    def check(flag):
        calls.append(flag)
        return flag

    @step(outputs=["v"], foreach="x")
    @when(check)
    def f(x):
        return x

    result = run_pipeline(Pipeline("p", context=context(x=[1, 2, 3], flag=True)).add_step(f))
    assert result["v"] == [1, 2, 3] and calls == [True]
