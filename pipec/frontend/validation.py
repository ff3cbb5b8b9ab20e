"""Checks on how pipec's decorators are placed, independent of pipelines."""

from __future__ import annotations

import libcst as cst

from pipec.diagnostics import Diagnostics
from pipec.frontend.declarations import decorator_kind
from pipec.frontend.sources import SourceModule


def check_decorator_placement(module: SourceModule, diagnostics: Diagnostics) -> None:
    """PC208: pipec decorators on methods or nested functions."""
    finder = _NestedDecorators(module)
    module.tree.visit(finder)
    for decorator, kind in finder.found:
        diagnostics.error("PC208", module.span(decorator), decorator=kind)


class _NestedDecorators(cst.CSTVisitor):
    def __init__(self, module: SourceModule) -> None:
        self.module = module
        self.depth = 0
        self.found: list[tuple[cst.Decorator, str]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if self.depth > 0:
            for decorator in node.decorators:
                kind = decorator_kind(self.module, decorator)
                if kind is not None:
                    self.found.append((decorator, kind))
        self.depth += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.depth -= 1

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.depth += 1

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.depth -= 1
