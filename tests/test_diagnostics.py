"""Diagnostics cases: every `tests/diagnostics/<name>.py` is a bad pipeline
module whose expected diagnostics are marked on their lines:

    @step(retires=3)  # E: PC201

The set of (line, code) reported for the file must equal the marked set,
and each column must point inside its line.  Adding a case is adding a file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipec.frontend import load

CASES = Path(__file__).parent / "diagnostics"
CASE_FILES = sorted(CASES.glob("*.py"))
MARK = re.compile(r"#\s*E:\s*((?:PC\d{3}\s*)+)$")


def expected(path: Path) -> list[tuple[int, str]]:
    marks = []
    for number, line in enumerate(
        path.read_text(encoding="utf-8").splitlines(), start=1
    ):
        found = MARK.search(line)
        if found:
            marks.extend((number, code) for code in found.group(1).split())
    return sorted(marks)


@pytest.mark.parametrize("case", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_diagnostics(case: Path) -> None:
    result = load(case)
    lines = case.read_text(encoding="utf-8").splitlines()
    own = [d for d in result.diagnostics if d.path == case.name]
    report = "\n".join(d.format() for d in result.diagnostics)
    assert sorted({(d.line, d.code) for d in own}) == expected(case), report
    assert len(own) == len(result.diagnostics), report
    assert result.module is None
    for d in own:
        assert 1 <= d.col <= len(lines[d.line - 1]) + 1, d.format()


def test_every_case_marks_something() -> None:
    for case in CASE_FILES:
        assert expected(case), f"{case.name} marks no expected diagnostic"
