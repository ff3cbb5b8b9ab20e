"""Module-level bindings: per name, the top-level statements that bind it.

`bindings(module)` is read by the source tree itself (qualified names) and
by the resolver (`symbols`), so it lives below both: it imports nothing of
the frontend but its walks (`scan`), and reads a `SourceModule` only through
its attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from pipec.frontend.scan import dotted, target_names

if TYPE_CHECKING:
    from pipec.frontend.sources import SourceModule


@dataclass(frozen=True)
class Binding:
    """Top-level statement number `index` of `module` binds `name`.  For an
    import, `alias` is the import alias and `target` the absolute module
    (`from target import attr` or `import target`)."""

    module: SourceModule
    name: str
    index: int
    statement: cst.CSTNode
    node: cst.CSTNode  # the FunctionDef / ClassDef / small statement / alias
    alias: cst.ImportAlias | None = None
    target: str = ""
    attr: str | None = None

    @property
    def is_import(self) -> bool:
        return self.alias is not None

    @property
    def written_module(self) -> str:
        """The module as the import statement spells it ('..pkg.mod')."""
        if isinstance(self.node, cst.ImportFrom):
            return "." * len(self.node.relative) + (
                dotted(self.node.module) if self.node.module else ""
            )
        return self.target


def bindings(module: SourceModule) -> dict[str, list[Binding]]:
    """Per name, the top-level statements binding it (computed once)."""
    if module.symbols is None:
        table: dict[str, list[Binding]] = {}
        for index, statement in enumerate(module.tree.body):
            for binding in _statement_bindings(module, index, statement):
                table.setdefault(binding.name, []).append(binding)
        module.symbols = table
    return module.symbols


def _statement_bindings(
    module: SourceModule, index: int, statement: cst.CSTNode
) -> list[Binding]:
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return [Binding(module, statement.name.value, index, statement, statement)]
    if isinstance(statement, cst.SimpleStatementLine):
        found = []
        for small in statement.body:
            found.extend(_small_bindings(module, index, statement, small))
        return found
    collector = _NestedBindings()
    statement.visit(collector)
    return [
        Binding(module, name, index, statement, statement) for name in collector.names
    ]


def _small_bindings(
    module: SourceModule, index: int, statement, small
) -> list[Binding]:
    if isinstance(small, cst.Import):
        return [
            Binding(
                module,
                _bound_name(alias),
                index,
                statement,
                small,
                alias,
                dotted(alias.name),
            )
            for alias in small.names
        ]
    if isinstance(small, cst.ImportFrom) and not isinstance(
        small.names, cst.ImportStar
    ):
        target = module.absolute(
            len(small.relative), dotted(small.module) if small.module else ""
        )
        return [
            Binding(
                module,
                _bound_name(alias),
                index,
                statement,
                small,
                alias,
                target,
                dotted(alias.name),
            )
            for alias in small.names
        ]
    names: list[str] = []
    if isinstance(small, cst.Assign):
        for target in small.targets:
            names.extend(target_names(target.target))
    elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
        names.extend(target_names(small.target))
    return [Binding(module, name, index, statement, small) for name in names]


def _bound_name(alias: cst.ImportAlias) -> str:
    if alias.asname is not None:
        return alias.asname.name.value
    return dotted(alias.name).split(".")[0]


class _NestedBindings(cst.CSTVisitor):
    """Names bound at module level inside an if / try / for / with block."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def _add(self, names: list[str]) -> None:
        self.names.extend(n for n in names if n not in self.names)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self._add([node.name.value])
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self._add([node.name.value])
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._add(target_names(node.target))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._add(target_names(node.target))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._add(target_names(node.target))

    def visit_For(self, node: cst.For) -> None:
        self._add(target_names(node.target))

    def visit_AsName(self, node: cst.AsName) -> None:
        self._add(target_names(node.name))

    def visit_Import(self, node: cst.Import) -> None:
        self._add([_bound_name(a) for a in node.names if a.asname is None])

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if not isinstance(node.names, cst.ImportStar):
            self._add([_bound_name(a) for a in node.names if a.asname is None])
