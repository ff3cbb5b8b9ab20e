"""How long cached outputs live: a step with no inputs is cached only with
an explicit `cache=True` (what it returns may change with the world, and
Airflow and Dagster, which cache nothing, re-run it too), and `cache_ttl`
bounds the age of a reused entry — locally, on Prefect (`cache_expiration`)
and on KFP (whose cache never expires: such a step is not cached)."""

from __future__ import annotations

import json
import textwrap
import time

import yaml

from pipec.cli import main

SOURCE = textwrap.dedent("""\
    import time

    from pipec import Pipeline, context, step

    ctx = context(n=2)


    @step(outputs=["stamp"])
    def clock():
        return time.time()


    @step(outputs=["pinned"], cache=True)
    def pinned_clock():
        return time.time()


    @step(outputs=["scaled"], cache_ttl=1.5)
    def scale(n):
        return [n, time.time()]


    pipeline = Pipeline("lifetime", context=ctx)
    pipeline.add_step(clock).add_step(pinned_clock).add_step(scale)
""")


def run(tmp_path, capsys) -> dict:
    code = main(["run", str(tmp_path / "lifetime.py"), "--json", "--store", str(tmp_path / "store")])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    return {name: (step["status"], result["outputs"][out])
            for name, out in (("clock", "stamp"), ("pinned_clock", "pinned"), ("scale", "scaled"))
            for step in [result["step_results"][name]]}


def test_inputless_steps_rerun_and_entries_expire(tmp_path, capsys):
    (tmp_path / "lifetime.py").write_text(SOURCE, encoding="utf-8")
    first = run(tmp_path, capsys)
    second = run(tmp_path, capsys)
    assert second["clock"][0] == "succeeded" and second["clock"][1] != first["clock"][1]
    assert second["pinned_clock"] == ("cached", first["pinned_clock"][1])
    assert second["scale"] == ("cached", first["scale"][1])
    time.sleep(1.6)
    third = run(tmp_path, capsys)
    assert third["scale"][0] == "succeeded" and third["scale"][1] != first["scale"][1]
    assert third["pinned_clock"][0] == "cached"


def test_targets_bound_the_cache_lifetime(tmp_path, capsys):
    (tmp_path / "lifetime.py").write_text(SOURCE, encoding="utf-8")
    for target in ("prefect", "kubeflow"):
        assert main(["compile", str(tmp_path / "lifetime.py"), "--target", target, "-o", str(tmp_path / target)]) == 0
    flow = (tmp_path / "prefect" / "lifetime.py").read_text()
    assert '@task(name="clock", cache_policy=NO_CACHE)' in flow
    assert "cache_expiration=timedelta(seconds=1.5)" in flow and "from datetime import timedelta\n" in flow
    spec = yaml.safe_load((tmp_path / "kubeflow" / "lifetime.yaml").read_text())
    caching = {name: task["cachingOptions"]["enableCache"] for name, task in spec["root"]["dag"]["tasks"].items()}
    assert caching == {"clock": False, "pinned-clock": True, "scale": False}
    assert "cache expiry (cache_ttl) of step(s) scale" in capsys.readouterr().err
