"""The source tree: reading, parsing and locating the modules pipec follows.

Every module is parsed once with libcst and wrapped in a `MetadataWrapper`;
positions, scopes and qualified names are resolved once per module.  Paths
kept here are relative to the source root (POSIX), so nothing machine
specific reaches the IR or the diagnostics.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import libcst as cst
from libcst._metadata_dependent import LazyValue
from libcst.metadata import (
    GlobalScope,
    MetadataWrapper,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from pipec import ir
from pipec.diagnostics import Diagnostics

PIPEC_MODULES = ("pipec", "pipec.language")


@dataclass
class SourceModule:
    """One parsed module of the source tree."""

    name: str  # dotted module name from the source root
    path: str  # POSIX path relative to the source root
    is_package: bool
    wrapper: MetadataWrapper
    _positions: dict = field(default_factory=dict, repr=False)
    _qualified: dict = field(default_factory=dict, repr=False)
    _scopes: dict = field(default_factory=dict, repr=False)
    symbols: dict | None = field(default=None, repr=False)  # see symbols.bindings

    def __post_init__(self) -> None:
        self._positions = self.wrapper.resolve(PositionProvider)
        self._qualified = self.wrapper.resolve(QualifiedNameProvider)
        self._scopes = self.wrapper.resolve(ScopeProvider)

    @property
    def tree(self) -> cst.Module:
        return self.wrapper.module

    def span(self, node: cst.CSTNode) -> ir.Span:
        where = self._positions[node]
        return ir.Span(
            self.path,
            where.start.line,
            where.start.column + 1,
            where.end.line,
            where.end.column + 1,
        )

    def code(self, node: cst.CSTNode) -> str:
        return self.tree.code_for_node(node)

    def qualified_names(self, node: cst.CSTNode) -> tuple[str, ...]:
        value = self._qualified.get(node, ())
        if isinstance(value, LazyValue):
            value = value()
        return tuple(sorted(q.name for q in value))

    def pipec_name(self, node: cst.CSTNode) -> str | None:
        """'step' when `node` resolves to `pipec.step` (however imported)."""
        for qualified in self.qualified_names(node):
            module, _, attr = qualified.rpartition(".")
            if module in PIPEC_MODULES:
                return attr
        return None

    @property
    def global_scope(self) -> GlobalScope:
        return self._scopes[self.tree]

    @property
    def package(self) -> str:
        """The package relative imports of this module start from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]

    def absolute(self, level: int, name: str) -> str:
        """The absolute module name of `from <level dots><name> import ...`."""
        if level == 0:
            return name
        parts = self.package.split(".") if self.package else []
        if level - 1 > len(parts) or (
            level > 1 and level - 1 == len(parts) and not name
        ):
            return "." * level + name  # above the source root: no module of the tree
        base = parts[: len(parts) - (level - 1)]
        return ".".join([*base, name] if name else base)

    def imports_pipec(self) -> bool:
        finder = _PipecImportFinder()
        self.tree.visit(finder)
        return finder.found


class _PipecImportFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found = False

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            if _is_pipec(dotted(alias.name)):
                self.found = True

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if (
            not node.relative
            and node.module is not None
            and _is_pipec(dotted(node.module))
        ):
            self.found = True


def _is_pipec(module: str) -> bool:
    return module == "pipec" or module.startswith("pipec.")


def dotted(node: cst.BaseExpression | None) -> str:
    """'a.b.c' for a Name / Attribute chain, '' otherwise."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr.value}" if base else ""
    return ""


def _syntax_error(
    path: str, text: str, error: cst.ParserSyntaxError
) -> tuple[ir.Span, str]:
    """Where and what: CPython's parser points closer to the mistake than
    libcst's, so ask it first (`ast.parse` compiles nothing and runs
    nothing); fall back to libcst's position for syntax CPython accepts."""
    try:
        ast.parse(text, filename=path)
    except SyntaxError as cpython:
        if cpython.lineno:
            return (
                ir.Span(path, cpython.lineno, max(cpython.offset or 1, 1)),
                cpython.msg,
            )
    except (ValueError, RecursionError):
        pass
    return (
        ir.Span(path, max(error.editor_line, 1), max(error.editor_column, 1)),
        error.message,
    )


class SourceTree:
    """The modules under one source root, parsed on demand and cached."""

    def __init__(self, root: Path, diagnostics: Diagnostics) -> None:
        self.root = root
        self.diagnostics = diagnostics
        self._modules: dict[str, SourceModule | None] = {}

    def relative(self, file: Path) -> str:
        return file.resolve().relative_to(self.root).as_posix()

    def module_name(self, file: Path) -> str:
        parts = list(Path(self.relative(file)).with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    def file_for(self, name: str) -> Path | None:
        """The file of module `name` in this tree, or None."""
        if not name or "" in name.split("."):
            return None
        base = self.root.joinpath(*name.split("."))
        for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def contains(self, name: str) -> bool:
        return self.file_for(name) is not None

    def missing(self, name: str) -> bool:
        """`name` belongs to the tree (its top-level package is here) but
        no such module exists: an import pipec cannot follow."""
        top = self.root / name.split(".")[0]
        return not self.contains(name) and (
            top.is_dir() or top.with_suffix(".py").is_file()
        )

    def module(self, name: str) -> SourceModule | None:
        """The parsed module `name`, or None (not in the tree or unreadable)."""
        if name not in self._modules:
            file = self.file_for(name)
            self._modules[name] = self.parse(file) if file else None
        return self._modules[name]

    def parse(self, file: Path) -> SourceModule | None:
        path = self.relative(file)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            detail = (
                getattr(error, "strerror", None)
                or getattr(error, "reason", None)
                or type(error).__name__
            )
            self.diagnostics.error(
                "PC002", ir.Span(path, 1, 1), path=path, detail=detail
            )
            return None
        try:
            tree = cst.parse_module(text)
        except cst.ParserSyntaxError as error:
            span, detail = _syntax_error(path, text, error)
            self.diagnostics.error("PC001", span, detail=detail)
            return None
        name = self.module_name(file)
        module = SourceModule(
            name, path, file.name == "__init__.py", MetadataWrapper(tree)
        )
        self._modules.setdefault(name, module)
        return module

    def loaded(self) -> Iterator[SourceModule]:
        for module in self._modules.values():
            if module is not None:
                yield module
