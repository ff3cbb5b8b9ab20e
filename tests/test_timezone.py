"""`Pipeline(..., timezone=...)`: the schedule is read in that IANA time
zone on every target that schedules (Airflow: the DAG's time zone, from its
start date; Prefect: the deployment's schedule; Dagster: the schedule's
execution time zone); KFP has no schedule in its spec and keeps it in the
header with a note.  An unknown name is a located error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import yaml

import matrix
from pipec.cli import main

SOURCE = textwrap.dedent("""\
    from pipec import Pipeline, step


    @step(outputs=["x"])
    def make():
        return 1


    pipeline = Pipeline("tz", schedule="0 6 * * *", timezone={tz!r})
    pipeline.add_step(make)
""")


def compile_to(tmp_path, target, tz="Europe/Paris", capsys=None):
    src = tmp_path / "tz.py"
    src.write_text(SOURCE.format(tz=tz), encoding="utf-8")
    out = tmp_path / target
    code = main(["compile", str(src), "--target", target, "-o", str(out)])
    return code, out


def test_an_unknown_time_zone_is_a_located_error_with_a_suggestion(tmp_path, capsys):
    code, out = compile_to(tmp_path, "airflow", tz="Europe/Pari")
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "tz.py:9:58: error: invalid timezone 'Europe/Pari'" in err
    assert "did you mean 'Europe/Paris'?" in err and "[PC310]" in err


def test_without_a_time_zone_the_ir_is_unchanged(tmp_path, capsys):
    src = tmp_path / "plain.py"
    src.write_text(SOURCE.replace(", timezone={tz!r}", ""), encoding="utf-8")
    assert main(["compile", str(src), "--target", "ir", "-o", str(tmp_path / "ir")]) == 0
    assert "timezone" not in (tmp_path / "ir" / "tz.json").read_text()
    code, _ = compile_to(tmp_path, "ir")
    assert code == 0 and json.loads((tmp_path / "ir" / "tz.json").read_text())["pipelines"][0]["timezone"] == "Europe/Paris"


def test_airflow_reads_the_schedule_in_the_time_zone(tmp_path):
    code, out = compile_to(tmp_path, "airflow")
    assert code == 0
    script = textwrap.dedent("""\
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder=sys.argv[1])
        dag = bag.dags["tz"]
        print(json.dumps({"errors": list(bag.import_errors), "tz": dag.timezone.name,
                          "cron": dag.timetable.expression, "cron_tz": dag.timetable.timezone.name}))
    """)
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-c", script, str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["errors"] == [] and result["tz"] == "Europe/Paris"
    assert result["cron"] == "0 6 * * *" and result["cron_tz"] == "Europe/Paris"


def test_prefect_and_dagster_schedules_carry_the_time_zone(tmp_path):
    assert compile_to(tmp_path, "prefect")[0] == 0
    deployment = yaml.safe_load((tmp_path / "prefect" / "tz.prefect.yaml").read_text())
    assert deployment["deployments"][0]["schedules"] == [{"cron": "0 6 * * *", "timezone": "Europe/Paris"}]
    code, out = compile_to(tmp_path, "dagster")
    assert code == 0
    script = textwrap.dedent("""\
        import importlib.util, json
        spec = importlib.util.spec_from_file_location("tz", "tz.py")
        module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
        print(json.dumps([(s.cron_schedule, s.execution_timezone) for s in module.defs.schedules]))
    """)
    env = matrix.no_pipec_env([], base=dict(os.environ, DAGSTER_HOME=str(tmp_path)))
    proc = subprocess.run([sys.executable, "-c", script], cwd=out, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [["0 6 * * *", "Europe/Paris"]]


def test_kubeflow_keeps_the_time_zone_in_the_header_with_a_note(tmp_path, capsys):
    code, out = compile_to(tmp_path, "kubeflow")
    assert code == 0
    assert "# timezone: Europe/Paris\n" in (out / "tz.yaml").read_text()
    assert "the pipeline's timezone (Europe/Paris)" in capsys.readouterr().err
