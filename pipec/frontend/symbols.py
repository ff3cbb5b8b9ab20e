"""Module-level names and what they are bound to, followed across the tree.

`bindings(module)` lists, per name, the top-level statements that bind it, in
source order.  `Resolver.resolve(module, name)` follows imports into other
modules of the source tree until it reaches a definition, an import from
outside the tree, or pipec itself.
"""

from __future__ import annotations

from dataclasses import dataclass
import libcst as cst

from pipec.frontend.bindings import Binding, bindings
from pipec.frontend.sources import SourceModule, SourceTree, dotted


@dataclass(frozen=True)
class Resolved:
    """Where a name ends up: a definition (`binding` is no import), an
    import from outside the tree (`external`, `attr`), pipec (`pipec`) or
    nothing (`binding` None)."""

    binding: Binding | None
    external: str = ""
    attr: str | None = None
    pipec: str | None = None


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
