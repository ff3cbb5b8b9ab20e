"""`pipec runs`, `runs show`, `runs gc`: the local runs kept in the store."""

from __future__ import annotations

import io
import json
import os
import time

import pytest

from pipec.cli import main

PIPELINE = """
from pipec import Pipeline, context, step

ctx = context(n=3)


@step(outputs=["nums"])
def make(n: int) -> list:
    return list(range(n))


@step(outputs=["total"])
def add(nums: list) -> int:
    return sum(nums)


p = Pipeline("numbers", context=ctx).add_step(make).add_step(add)
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def two_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "counting.py").write_text(PIPELINE)
    assert cli("run", "counting.py")[0] == 0
    assert cli("run", "counting.py", "--set", "n=5")[0] == 0
    return tmp_path


def test_runs_lists_every_run(two_runs):
    code, out, _ = cli("runs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["RUN", "ID", "PIPELINE", "STATUS", "STARTED", "DURATION", "COMMIT"]
    assert len(lines) == 3 and all(" numbers " in line and " succeeded " in line for line in lines[1:])
    code, out, _ = cli("runs", "--json")
    rows = json.loads(out)
    assert [r["status"] for r in rows] == ["succeeded", "succeeded"]
    assert set(rows[0]) >= {"run_id", "pipeline", "status", "started_at", "duration_seconds", "git_commit"}


def test_runs_show_prints_record_and_outputs(two_runs):
    code, out, _ = cli("runs", "show", "latest")
    assert code == 0
    assert "of pipeline numbers: succeeded" in out
    assert "n = 5" in out and "total = 10" in out and "nums = [0, 1, 2, 3, 4]" in out
    run_id = json.loads(cli("runs", "--json")[1])[0]["run_id"]
    data = json.loads(cli("runs", "show", run_id, "--json")[1])
    assert data["outputs"] == {"nums": [0, 1, 2], "total": 3}
    assert data["step_results"]["add"]["status"] == "succeeded"


def test_runs_show_unknown_run(two_runs):
    code, _, err = cli("runs", "show", "nope")
    assert code == 2 and "no run 'nope'" in err


def test_runs_gc_keeps_the_newest(two_runs):
    newest = json.loads(cli("runs", "--json")[1])[-1]["run_id"]
    code, _, err = cli("runs", "gc", "--keep", "1", "--dry-run")
    assert code == 0 and "would remove 1 run" in err
    assert len(json.loads(cli("runs", "--json")[1])) == 2
    code, _, err = cli("runs", "gc", "--keep", "1")
    assert code == 0
    assert [r["run_id"] for r in json.loads(cli("runs", "--json")[1])] == [newest]


def test_runs_gc_older_than_removes_runs_and_cache_entries(two_runs):
    cache = two_runs / ".pipec" / "cache"
    entries = [p for p in cache.rglob("*") if p.is_file()]
    assert entries, "the runs should have cached their steps"
    old = time.time() - 3 * 86400
    for path in entries:
        os.utime(path, (old, old))
    code, _, err = cli("runs", "gc", "--older-than", "1d")
    assert code == 0 and "removed 0 runs" in err and f"{len(entries)} cache entr" in err
    assert not [p for p in cache.rglob("*") if p.is_file()]
    code, _, err = cli("runs", "gc", "--older-than", "2999-01-01")
    assert code == 0 and "removed 2 runs" in err
    assert json.loads(cli("runs", "--json")[1]) == []


def test_runs_gc_needs_a_criterion_and_a_valid_date(two_runs):
    assert cli("runs", "gc")[0] == 2
    code, _, err = cli("runs", "gc", "--older-than", "yesterday")
    assert code == 2 and "no date" in err


def test_runs_store_that_is_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    code, _, err = cli("runs", "--store", "file")
    assert code == 2 and "is a file" in err
