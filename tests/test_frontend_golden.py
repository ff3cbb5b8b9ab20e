"""Golden IR: every `tests/cases/<name>/pipeline.py` compiles to exactly
`tests/cases/<name>/expected.ir.json`.  Adding a case is adding a folder.

    PIPEC_UPDATE_GOLDEN=1 pytest tests/test_frontend_golden.py   # rewrite
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipec import ir
from pipec.frontend import load

CASES = Path(__file__).parent / "cases"
CASE_FILES = sorted(CASES.glob("*/pipeline.py"))


@pytest.mark.parametrize(
    "pipeline", CASE_FILES, ids=[p.parent.name for p in CASE_FILES]
)
def test_golden_ir(pipeline: Path) -> None:
    result = load(pipeline)
    assert result.ok, "\n".join(d.format() for d in result.diagnostics)
    actual = ir.to_json(result.module)
    expected_file = pipeline.parent / "expected.ir.json"
    if os.environ.get("PIPEC_UPDATE_GOLDEN") == "1":
        expected_file.write_text(actual, encoding="utf-8")
    assert (
        expected_file.exists()
    ), f"no {expected_file.name}; run with PIPEC_UPDATE_GOLDEN=1"
    assert actual == expected_file.read_text(encoding="utf-8")


ROUND_TRIP = [pytest.param(p, id=p.parent.name) for p in CASE_FILES]


@pytest.mark.parametrize("pipeline", ROUND_TRIP)
def test_ir_round_trips(pipeline: Path) -> None:
    module = load(pipeline).module
    assert ir.from_json(ir.to_json(module)) == module


@pytest.mark.parametrize(
    "pipeline", CASE_FILES, ids=[p.parent.name for p in CASE_FILES]
)
def test_step_code_is_self_contained(pipeline: Path) -> None:
    """Each step's code compiles, imports no pipec and defines its names."""
    for pipe in load(pipeline).module.pipelines:
        for step in pipe.steps:
            code = step.code
            tree = compile(code.source, f"<{step.name}>", "exec")
            assert "pipec" not in tree.co_names, code.source
            defined = set(tree.co_names)
            for name in (code.function, code.fallback, code.predicate):
                assert name is None or name in defined
