"""The example that shows step instances, `inputs` dicts, an always-run
step and a final step (examples/restock.py): `pipec run` gives the results
its docstring promises, and it compiles for every target.

Its runs on the real targets are the `restock` and `restock_failed`
scenarios of `matrix.SCENARIOS` (refused by KFP, which cannot run an
all_done step after two upstream steps nor tell a final step each step's
status, and by Dagster, which cannot express trigger rules and final
steps: PC601, or PC602 with `--unsupported=warn`)."""

from __future__ import annotations

import io
import json
import re

import pytest

import matrix
from pipec.backends.base import get
from pipec.cli import main

RESTOCK = matrix.EXAMPLES / "restock.py"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPEC_HOME", raising=False)
    return tmp_path


def statuses(result: dict) -> dict[str, str]:
    return {name: step["status"] for name, step in result["step_results"].items()}


def test_restock_runs_its_instances_and_its_audit_and_report(cwd):
    code, out, err = cli("run", str(RESTOCK), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(statuses(result).values()) == {"succeeded"}
    assert result["outputs"]["stock"] == {"A-100": 4, "B-200": 0, "C-300": 12, "D-400": 3}
    assert result["outputs"]["south_stock"] == {"A-100": 9, "C-300": 1}  # the instance's literal
    assert result["outputs"]["south_to_order"] == ["C-300"]
    assert result["outputs"]["audit"] == {"north": "3 SKUs ordered", "south": "1 SKUs low"}
    with open(result["outputs"]["purchase_order"]) as f:  # the run's own copy of the file
        assert f.read() == "sku,quantity\nA-100,6\nB-200,10\nD-400,7\n"
    assert result["outputs"]["summary"] == {"steps": 7, "not_succeeded": []}


def test_restock_audit_and_report_run_when_a_step_failed(cwd):
    code, out, err = cli("run", str(RESTOCK), "--set", "warehouse=west", "--json")
    assert code == 1, err
    result = json.loads(out)
    assert statuses(result) == {
        "count": "failed",
        "reorder": "upstream_failed",
        "order": "upstream_failed",
        "write_order": "upstream_failed",
        "count_south": "succeeded",
        "reorder_south": "succeeded",
        "audit": "succeeded",
        "report": "succeeded",
    }
    assert result["outputs"]["audit"] == {"north": "no order placed", "south": "1 SKUs low"}
    assert result["outputs"]["summary"] == {
        "steps": 7,
        "not_succeeded": ["count", "order", "reorder", "write_order"],
    }


REFUSED = {"kubeflow", "dagster"}


@pytest.mark.parametrize("target", ["airflow", "prefect", "kubeflow", "dagster"])
def test_restock_compiles_for_every_target(cwd, target):
    """Airflow and Prefect express everything; KFP and Dagster refuse the
    trigger rule and the final step (PC601), and compile the rest with
    `--unsupported=warn` (PC602 for exactly those two)."""
    assert get(target) is not None
    assert {s.id for s in matrix.SCENARIOS if s.file == RESTOCK and target in s.refused_by} == (
        {"restock", "restock_failed"} if target in REFUSED else set()
    )
    code, _, err = cli("compile", str(RESTOCK), "--target", target, "-o", "out")
    if target not in REFUSED:
        assert code == 0, err
        assert not re.findall(r"\[(PC6\d\d)\]", err)
    else:
        assert code == 2
        assert set(re.findall(r"step '(\w+)' uses .*\[(PC\d+)\]", err)) == {("audit", "PC601"), ("report", "PC601")}
        code, _, err = cli("compile", str(RESTOCK), "--target", target, "-o", "out", "--unsupported=warn")
        assert code == 0, err
        assert set(re.findall(r"step '(\w+)' uses .*\[(PC\d+)\]", err)) == {("audit", "PC602"), ("report", "PC602")}
    assert [p.name for p in (cwd / "out").iterdir() if p.is_file() and p.stem == "restock"]
