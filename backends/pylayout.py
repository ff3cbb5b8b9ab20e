"""Black-stable layout of the few expression shapes the Python backends
(Airflow, Prefect, Dagster) write: names, literals, calls and dicts of those.

The rule is black's for code without magic trailing commas: an expression
stays on one line when its line fits in 88 columns; otherwise its brackets
open and every element goes on its own line with a trailing comma (which
black then keeps as a magic trailing comma).  Literals are laid out by
`pyfmt.py_literal`, strings escaped by `pyfmt.py_str`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipec.backends.pyfmt import INDENT, LINE_LENGTH, py_literal, py_str, width


class Expr:
    def flat(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def layout(self, indent: int, prefix: str = "", suffix: str = "") -> str:
        """The expression as it stands at `indent` after `prefix` and before
        `suffix` (neither included); continuation lines carry their indent."""
        return self.flat()


@dataclass(frozen=True)
class Raw(Expr):
    """Fixed text pipec writes itself (names, scaffolding)."""

    text: str

    def flat(self) -> str:
        return self.text


@dataclass(frozen=True)
class Lit(Expr):
    """A literal value from the source, escaped."""

    value: object

    def flat(self) -> str:
        return _flat_literal(self.value)

    def layout(self, indent: int, prefix: str = "", suffix: str = "") -> str:
        return py_literal(self.value, indent, prefix, suffix)


def _flat_literal(value: object) -> str:
    from pipec.backends.pyfmt import _flat

    return _flat(value)


@dataclass(frozen=True)
class Call(Expr):
    """`head(arg, key=arg, ...)`; `close` is ")" (or "):" for a def line is
    handled by the caller through `suffix`)."""

    head: str
    args: tuple[tuple[str | None, Expr], ...] = ()
    open: str = "("
    close: str = ")"

    def _items(self) -> list[tuple[str, Expr]]:
        return [(_prefix(key), value) for key, value in self.args]

    def flat(self) -> str:
        inner = ", ".join(key + value.flat() for key, value in self._items())
        return f"{self.head}{self.open}{inner}{self.close}"

    def layout(self, indent: int, prefix: str = "", suffix: str = "") -> str:
        flat = self.flat()
        if not self.args or fits(indent, prefix + flat + suffix):
            return flat
        lines = [self.head + self.open]
        for key, value in self._items():
            lines.append(
                INDENT * (indent + 1) + key + value.layout(indent + 1, key, ",") + ","
            )
        lines.append(INDENT * indent + self.close)
        return "\n".join(lines)


def _prefix(key: str | None) -> str:
    """What precedes an argument: nothing (positional), `key=`, or a prefix
    written whole (`name=`, `name: int = `, as `def` parameters have)."""
    if not key:
        return ""
    return key if key.endswith(("=", "= ")) else key + "="


@dataclass(frozen=True)
class Dict(Expr):
    """`{"key": expr, ...}` with string keys."""

    items: tuple[tuple[str, Expr], ...]

    def flat(self) -> str:
        return "{" + ", ".join(f"{py_str(k)}: {v.flat()}" for k, v in self.items) + "}"

    def layout(self, indent: int, prefix: str = "", suffix: str = "") -> str:
        flat = self.flat()
        if not self.items or fits(indent, prefix + flat + suffix):
            return flat
        lines = ["{"]
        for key, value in self.items:
            head = py_str(key) + ": "
            lines.append(
                INDENT * (indent + 1) + head + value.layout(indent + 1, head, ",") + ","
            )
        lines.append(INDENT * indent + "}")
        return "\n".join(lines)


def fits(indent: int, text: str) -> bool:
    return "\n" not in text and width(INDENT * indent + text) <= LINE_LENGTH


def statement(indent: int, prefix: str, expr: Expr, suffix: str = "") -> str:
    """One statement line (or several): `prefix` + expr + `suffix`."""
    return INDENT * indent + prefix + expr.layout(indent, prefix, suffix) + suffix
