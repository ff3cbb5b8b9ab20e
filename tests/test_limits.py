"""`max_parallel`: on a foreach step, how many of its elements run at once;
on a Pipeline, how many tasks of a run.  The differential scenario
`limits` (tests/scenarios/limits.py) checks the limit is kept on every
target; here, the static checks and each target's native mechanism."""

from __future__ import annotations

import textwrap

import yaml

from pipec.cli import main

SOURCE = textwrap.dedent("""\
    from pipec import Pipeline, context, step

    ctx = context(items=[1, 2])


    @step(outputs=["x"], max_parallel=2)
    def make():
        return 1


    @step(foreach="items", outputs=["y"], max_parallel=0)
    def each(items):
        return items


    pipeline = Pipeline("p", context=ctx, max_parallel="many")
    pipeline.add_step(make).add_step(each)
""")


def test_misuse_is_reported_at_once_and_located(tmp_path, capsys):
    src = tmp_path / "p.py"
    src.write_text(SOURCE, encoding="utf-8")
    assert main(["check", str(src)]) == 2
    err = capsys.readouterr().err
    assert "p.py:6:22: error: step 'make' sets max_parallel" in err and "[PC218]" in err
    assert "p.py:11:52: error: option 'max_parallel' of @step must be an integer >= 1 or None, not 0" in err
    assert "p.py:16:52: error: option 'max_parallel' of Pipeline must be an integer >= 1 or None" in err


def test_each_target_uses_its_native_limit(tmp_path):
    src = tmp_path / "p.py"
    src.write_text(SOURCE.replace('"many"', "3").replace("max_parallel=0", "max_parallel=2")
                   .replace('@step(outputs=["x"], max_parallel=2)', '@step(outputs=["x"])'), encoding="utf-8")
    out = {}
    for target in ("airflow", "prefect", "dagster", "kubeflow"):
        assert main(["compile", str(src), "--target", target, "-o", str(tmp_path / target)]) == 0
    airflow = (tmp_path / "airflow" / "p.py").read_text()
    assert "max_active_tasks=3," in airflow and '@task(task_id="each", retries=0, max_active_tis_per_dagrun=2)' in airflow
    prefect = (tmp_path / "prefect" / "p.py").read_text()
    assert "task_runner=ThreadPoolTaskRunner(max_workers=3)" in prefect and "max_parallel=2," in prefect
    dagster = (tmp_path / "dagster" / "p.py").read_text()
    assert '"max_concurrent": 3' in dagster and '{"key": "pipec/step", "value": "each", "limit": 2}' in dagster
    spec = yaml.safe_load((tmp_path / "kubeflow" / "p.yaml").read_text())
    out = [t.get("iteratorPolicy") for t in spec["root"]["dag"]["tasks"].values() if "parameterIterator" in t]
    assert out == [{"parallelismLimit": 2}]
