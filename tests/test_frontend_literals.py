"""Static literal evaluation: what `ast.literal_eval` accepts of pipec's
literals evaluates to the same value (tuples as lists); the rest is refused
with the node to blame."""

from __future__ import annotations

import ast
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipec.diagnostics import Diagnostics
from pipec.frontend.literals import LiteralEvaluator, NotLiteral
from pipec.frontend.sources import SourceTree
from pipec.frontend.symbols import Resolver

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
literals = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def evaluate(tmp_path: Path, source: str, expression: str):
    (tmp_path / "m.py").write_text(
        f"{source}\nVALUE = {expression}\n", encoding="utf-8"
    )
    tree = SourceTree(tmp_path.resolve(), Diagnostics())
    module = tree.module("m")
    value_node = module.tree.body[-1].body[0].value
    return LiteralEvaluator(Resolver(tree)).evaluate(module, value_node)


def as_lists(value):
    if isinstance(value, (list, tuple)):
        return [as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: as_lists(v) for k, v in value.items()}
    return value


@settings(max_examples=60, deadline=None)
@given(literals)
def test_round_trip_of_repr(tmp_path_factory, value) -> None:
    folder = tmp_path_factory.mktemp("lit")
    assert evaluate(folder, "", repr(value)) == as_lists(ast.literal_eval(repr(value)))


@pytest.mark.parametrize(
    "source, expression, expected",
    [
        ("", '"a" "b" \'c\'', "abc"),
        ("", "-3", -3),
        ("", "(-2.5, +1)", [-2.5, 1]),
        ("X = 4", "[X, {'k': X}]", [4, {"k": 4}]),
        ("X = 'x'\nY = X", "Y", "x"),
        ("", "0x10", 16),
    ],
)
def test_accepted(tmp_path: Path, source: str, expression: str, expected) -> None:
    assert evaluate(tmp_path, source, expression) == expected


@pytest.mark.parametrize(
    "source, expression",
    [
        ("", 'f"{1}"'),
        ("", "b'x'"),
        ("", "1 + 2"),
        ("", "{1: 'a'}"),
        ("", "[*range(3)]"),
        ("X = 1\nX = 2", "X"),
        ("import os", "os.sep"),
        ("def f(): pass", "f"),
        ("X = len('a')", "X"),
        ("", "undefined_name"),
    ],
)
def test_refused(tmp_path: Path, source: str, expression: str) -> None:
    with pytest.raises(NotLiteral):
        evaluate(tmp_path, source, expression)
