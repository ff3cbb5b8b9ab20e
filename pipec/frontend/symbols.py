"""Module-level names and what they are bound to, followed across the tree.

`bindings(module)` lists, per name, the top-level statements that bind it, in
source order.  `Resolver.resolve(module, name)` follows imports into other
modules of the source tree until it reaches a definition, an import from
outside the tree, or pipec itself.
"""

from __future__ import annotations

from dataclasses import dataclass
import libcst as cst

from pipec.frontend.scan import target_names
from pipec.frontend.sources import SourceModule, SourceTree, dotted


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


@dataclass(frozen=True)
class Resolved:
    """Where a name ends up: a definition (`binding` is no import), an
    import from outside the tree (`external`, `attr`), pipec (`pipec`) or
    nothing (`binding` None)."""

    binding: Binding | None
    external: str = ""
    attr: str | None = None
    pipec: str | None = None


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


def star_imports(module: SourceModule) -> list[cst.ImportFrom]:
    if "star_imports" not in module.cache:
        module.cache["star_imports"] = [
            small
            for statement in module.tree.body
            if isinstance(statement, cst.SimpleStatementLine)
            for small in statement.body
            if isinstance(small, cst.ImportFrom)
            and isinstance(small.names, cst.ImportStar)
        ]
    return module.cache["star_imports"]


class Resolver:
    """Follows module-level names through imports of the source tree."""

    MAX_DEPTH = 32

    def __init__(self, tree: SourceTree) -> None:
        self.tree = tree

    def resolve(self, module: SourceModule, name: str, depth: int = 0) -> Resolved:
        found = bindings(module).get(name, [])
        if not found or depth > self.MAX_DEPTH:
            return Resolved(None)
        binding = found[-1]  # the last top-level binding wins
        if not binding.is_import:
            return Resolved(binding)
        return self._follow_import(binding, depth)

    def _follow_import(self, binding: Binding, depth: int) -> Resolved:
        target, attr = binding.target, binding.attr
        if target == "pipec" or target.startswith("pipec."):
            return Resolved(binding, pipec=attr or "")
        if attr is None:  # import a.b [as c]
            return Resolved(binding, external=target)
        submodule = f"{target}.{attr}" if target else attr
        if self.tree.contains(target) and not self.tree.contains(submodule):
            source = self.tree.module(target)
            return self.resolve(source, attr, depth + 1) if source else Resolved(None)
        return Resolved(binding, external=target, attr=attr)

    def resolve_expression(
        self, module: SourceModule, node: cst.BaseExpression
    ) -> Resolved:
        """A Name, or `alias.name` where `alias` is a module of the tree."""
        if isinstance(node, cst.Name):
            return self.resolve(module, node.value)
        if isinstance(node, cst.Attribute) and isinstance(
            node.value, (cst.Name, cst.Attribute)
        ):
            base = self._module_of(module, node.value)
            if base is not None:
                return self.resolve(base, node.attr.value)
        return Resolved(None)

    def _module_of(
        self, module: SourceModule, node: cst.BaseExpression
    ) -> SourceModule | None:
        """The tree module that `node` (`helpers` or `pkg.helpers`) names."""
        path = dotted(node)
        head, _, rest = path.partition(".")
        found = bindings(module).get(head, [])
        if not found or not found[-1].is_import:
            return None
        binding = found[-1]
        if binding.attr is None:
            full = binding.target if binding.alias.asname is not None else head
            name = f"{full}.{rest}" if rest else full
        else:
            name = f"{binding.target}.{binding.attr}" + (f".{rest}" if rest else "")
        return self.tree.module(name) if self.tree.contains(name) else None
