"""Static evaluation of literals over libcst nodes (an `ast.literal_eval`).

Strings (with implicit concatenation, never f-strings), ints, floats,
negative numbers, bools, None, and lists / tuples / dicts of those.  A
module-level name bound once to a literal is followed (through imports of
the source tree).  Anything else raises `NotLiteral` naming the node, so the
caller reports a located diagnostic instead of guessing.  Tuples evaluate to
lists: the IR's literals are JSON-like.
"""

from __future__ import annotations

from typing import Any

import libcst as cst

from pipec.frontend.sources import SourceModule
from pipec.frontend.symbols import Resolver, bindings


class NotLiteral(Exception):
    def __init__(self, node: cst.CSTNode, module: SourceModule, detail: str) -> None:
        super().__init__(detail)
        self.node = node
        self.module = module
        self.detail = detail


class Uncarriable(NotLiteral):
    """A literal whose value no generated file can hold."""


class LiteralEvaluator:
    MAX_DEPTH = 16

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    def evaluate(
        self, module: SourceModule, node: cst.BaseExpression, depth: int = 0
    ) -> Any:
        if depth > self.MAX_DEPTH:
            raise NotLiteral(node, module, "the constant refers to itself")
        method = getattr(self, f"_eval_{type(node).__name__}", None)
        if method is None:
            raise NotLiteral(node, module, f"'{_short(module, node)}' is not a literal")
        return method(module, node, depth)

    def _eval_SimpleString(self, module, node: cst.SimpleString, depth):
        value = string_value(node)
        if not isinstance(value, str):
            raise NotLiteral(node, module, "bytes are not literals pipec can carry")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                raise Uncarriable(
                    node,
                    module,
                    f"the string holds a lone surrogate ({value[error.start]!r}), "
                    "which no UTF-8 file can carry",
                ) from None
        return value

    def _eval_ConcatenatedString(self, module, node: cst.ConcatenatedString, depth):
        return self.evaluate(module, node.left, depth) + self.evaluate(
            module, node.right, depth
        )

    def _eval_Integer(self, module, node: cst.Integer, depth):
        try:
            value = node.evaluated_value
        except (ValueError, SyntaxError):  # past Python's int/str digit limit
            value = None
        if value is None or abs(value) >= _INT_LIMIT:
            raise Uncarriable(
                node,
                module,
                "the integer has more than 4,300 digits, which Python cannot read "
                "back from the generated files (sys.int_info.default_max_str_digits)",
            )
        return value

    def _eval_Float(self, module, node: cst.Float, depth):
        return node.evaluated_value

    def _eval_UnaryOperation(self, module, node: cst.UnaryOperation, depth):
        value = self.evaluate(module, node.expression, depth)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise NotLiteral(node, module, f"'{_short(module, node)}' is not a literal")
        if isinstance(node.operator, cst.Minus):
            return -value
        if isinstance(node.operator, cst.Plus):
            return value
        raise NotLiteral(node, module, f"'{_short(module, node)}' is not a literal")

    def _eval_List(self, module, node: cst.List, depth):
        return self._elements(module, node, depth)

    def _eval_Tuple(self, module, node: cst.Tuple, depth):
        return self._elements(module, node, depth)

    def _elements(self, module, node, depth) -> list:
        values = []
        for element in node.elements:
            if isinstance(element, cst.StarredElement):
                raise NotLiteral(element, module, "unpacking is evaluated at run time")
            values.append(self.evaluate(module, element.value, depth))
        return values

    def _eval_Dict(self, module, node: cst.Dict, depth):
        values: dict[str, Any] = {}
        for element in node.elements:
            if isinstance(element, cst.StarredDictElement):
                raise NotLiteral(element, module, "unpacking is evaluated at run time")
            key = self.evaluate(module, element.key, depth)
            if not isinstance(key, str):
                raise NotLiteral(element.key, module, "dict keys must be strings")
            values[key] = self.evaluate(module, element.value, depth)
        return values

    def _eval_Name(self, module, node: cst.Name, depth):
        constants = {"True": True, "False": False, "None": None}
        if node.value in constants:
            return constants[node.value]
        return self._constant(module, node, depth)

    def _constant(self, module: SourceModule, node: cst.Name, depth: int) -> Any:
        """A module-level name bound exactly once, by `NAME = <literal>`."""
        resolved = self.resolver.resolve(module, node.value)
        binding = resolved.binding
        if binding is None or binding.is_import:
            raise NotLiteral(
                node, module, f"'{node.value}' is not a module-level constant"
            )
        if len(bindings(binding.module)[binding.name]) != 1 or not _is_plain_assign(
            binding.node
        ):
            raise NotLiteral(
                node, module, f"'{node.value}' is not bound once to a literal"
            )
        try:
            return self.evaluate(binding.module, binding.node.value, depth + 1)
        except NotLiteral as error:
            raise NotLiteral(
                node, module, f"'{node.value}' is bound to a value computed at run time"
            ) from error


# Python reads decimal integers of at most 4,300 digits by default.
_INT_LIMIT = 10**4300


def string_value(node: cst.SimpleString) -> str | bytes:
    """`node.evaluated_value` (`ast.literal_eval` of the literal), without
    compiling anything in the common case: no prefix, one line, no escape
    and only printable characters, whose value is the text between its
    quotes.  Anything else (prefixes, triple quotes, escapes, bytes) is
    left to `literal_eval`."""
    text = node.value
    quote, inner = text[0], text[1:-1]
    if (
        quote in "'\""
        and text[-1] == quote
        and len(text) >= 2
        and quote not in inner
        and "\\" not in inner
        and inner.isprintable()
    ):
        return inner
    return node.evaluated_value


def _is_plain_assign(node: cst.CSTNode) -> bool:
    if isinstance(node, cst.Assign):
        return len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name)
    return isinstance(node, cst.AnnAssign) and node.value is not None


def _short(module: SourceModule, node: cst.CSTNode) -> str:
    text = " ".join(module.code(node).split())
    return text if len(text) <= 40 else text[:37] + "..."
