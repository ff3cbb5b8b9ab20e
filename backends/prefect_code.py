"""Small, black-stable building blocks of the Prefect backend's Python text.

`pyfmt` writes literals; this module adds the few statement shapes the flow
file needs, laid out the way black leaves them: a call (or `def`) on one line
when it fits in 88 columns, else one argument per line with a magic trailing
comma (which black keeps); a step's embedded code as a triple-quoted string
(black never touches string contents); and collision-free identifiers.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from pipec.backends.pylayout import Call, Expr, Lit, Raw, statement


@dataclass(frozen=True)
class Arg:
    """One argument (or parameter) of a call or `def`: `prefix` (such as
    `name=` or `name: int = `, or empty) followed by `value`, Python text,
    or by `literal` laid out with `py_literal` when `is_literal`."""

    prefix: str = ""
    value: str = ""
    literal: object = None
    is_literal: bool = False

    def expr(self) -> Expr:
        return Lit(self.literal) if self.is_literal else Raw(self.value)


def arg(name: str, value: str) -> Arg:
    """`name=value` (a bare `value` when `name` is empty)."""
    return Arg(f"{name}=" if name else "", value)


def lit(name: str, value: object) -> Arg:
    """`name=<value as a literal>`."""
    return Arg(f"{name}=" if name else "", literal=value, is_literal=True)


def call(head: str, args: list[Arg], indent: int = 0, tail: str = "") -> list[str]:
    """Lines of `head(args)tail` at `indent` levels, as black lays it out
    (the shared layout of `pylayout`)."""
    expr = Call(head, tuple((a.prefix, a.expr()) for a in args))
    return statement(indent, "", expr, tail).split("\n")


_NOT_IDENT = re.compile(r"[^0-9A-Za-z_]")


MAX_IDENTIFIER = 32  # keeps every generated statement's head short


def identifier(name: str) -> str:
    """A plain ASCII identifier derived from `name` (at most 32 characters,
    so that generated lines always fit black's layout)."""
    ident = _NOT_IDENT.sub("_", name)[:MAX_IDENTIFIER] or "_"
    if ident[0].isdigit():
        ident = "_" + ident
    return ident


class Names:
    """Allocates module-level names: never a keyword, a reserved name or one
    given out before; clashes get a numeric suffix (deterministic)."""

    def __init__(self, reserved: list[str]) -> None:
        self.taken = set(reserved) | set(keyword.kwlist) | set(keyword.softkwlist)

    def take(self, wanted: str) -> str:
        name = wanted
        counter = 2
        # Every `_pipec*` name belongs to the embedded runtime; dunder names
        # (`__name__`, `__builtins__`) to Python.
        while name in self.taken or name.lower().startswith("_pipec") or _dunder(name):
            if name.lower().startswith("_pipec") or _dunder(name):
                wanted = "step" + wanted
                name = wanted
                continue
            name = f"{wanted}_{counter}"
            counter += 1
        self.taken.add(name)
        return name


def _dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")
