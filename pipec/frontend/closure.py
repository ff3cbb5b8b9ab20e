"""Step code: the self-contained module source each task carries.

For one step, `CodeExtractor.extract(decl)` collects the module-level names
its function, fallback and predicate use (`scan.FreeNames`, Python's scoping
rules), and
transitively the names those definitions use.  An import of a pipeline
module of the source tree (a module importing pipec) is followed: the
definition is copied instead.  Imports of helper modules of the tree (no
pipec) and of outside modules are kept, written absolute.  pipec's
decorators and imports are dropped.  The result, in a deterministic order:

    imports  ·  definitions (dependency modules first, then source order)
    ·  the step function  ·  its fallback  ·  its predicate
"""

from __future__ import annotations

import builtins
import symtable
from dataclasses import dataclass, field

import libcst as cst

from pipec import ir
from pipec.diagnostics import Diagnostics, did_you_mean
from pipec.frontend.declarations import Callee, StepDecl, decorator_kinds
from pipec.frontend.mutations import mutations, run_time_calls
from pipec.frontend.scan import FreeNames
from pipec.frontend.sources import SourceModule, SourceTree, dotted
from pipec.frontend.symbols import Binding, Resolver, bindings, star_imports

# Names every module can read without defining them: the builtins and the
# attributes Python gives a module.
BUILTINS = frozenset(dir(builtins)) | {
    "__name__", "__file__", "__doc__", "__spec__", "__loader__", "__package__",
    "__builtins__", "__path__", "__annotations__", "__dict__", "__class__",
}  # fmt: skip


@dataclass
class _Unit:
    """One piece of emitted code; `key` orders it."""

    module: str
    key: tuple
    text: str
    is_import: bool = False
    simple: bool = False  # a one-line statement: one blank line around it
    helper: str | None = None  # the tree module an import imports
    external: str | None = None  # the outside module an import imports
    after_roots: bool = False  # uses the step's own functions: goes after them


@dataclass
class _Closure:
    step: str
    root: SourceModule
    modules: list[str] = field(default_factory=list)  # dependencies first
    units: dict[tuple, _Unit] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    bound: dict[str, str] = field(default_factory=dict)  # name -> signature
    helper_modules: list[str] = field(default_factory=list)
    imported_modules: list[str] = field(default_factory=list)
    roots: set[str] = field(default_factory=set)  # the functions emitted last
    # (module, node, name): names read that no module-level statement binds
    undefined: list[tuple[SourceModule, cst.Name, str]] = field(default_factory=list)
    unevaluated: set[str] = field(default_factory=set)  # names in lazy annotations


class CodeExtractor:
    def __init__(
        self, tree: SourceTree, resolver: Resolver, diagnostics: Diagnostics
    ) -> None:
        self.tree = tree
        self.resolver = resolver
        self.diagnostics = diagnostics
        self._texts: dict[tuple[str, int], str] = {}
        self._helpers: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}

    def extract(self, decl: StepDecl, step: str) -> ir.CodeBlock:
        state = _Closure(step, decl.module, [decl.module.name])
        module = decl.module
        for star in star_imports(module):
            written = "." * len(star.relative) + (
                dotted(star.module) if star.module else ""
            )
            self.diagnostics.error("PC408", module.span(star), module=written)
        roots: list[str] = [self._definition_text(module, decl.node)]
        self._check_run_time(module, decl.node, decl.function)
        self._claim(state, module, decl.function, decl.span)
        state.roots.add(decl.function)
        self._mark_root(state, module, decl.node)
        self._need_all(
            state,
            module,
            self.free_names(state, module, [decl.node], exclude=decl.decorators),
        )
        fallback = self._callee_root(state, decl.fallback, roots)
        predicate = None
        if decl.when is not None and isinstance(decl.when.expression, cst.Lambda):
            predicate = f"_when_{decl.function}"
            self._claim(state, module, predicate, decl.when.span)
            state.roots.add(predicate)
            self._need_all(
                state, module, self.free_names(state, module, [decl.when.expression])
            )
            roots.append(_lambda_function(module, predicate, decl.when.expression))
        else:
            predicate = self._callee_root(state, decl.when, roots)
        source = self._assemble(state, roots)
        self._check_defined(state, source, decl.span)
        return ir.CodeBlock(
            source,
            decl.function,
            fallback,
            predicate,
            tuple(state.helper_modules),
            tuple(state.imported_modules),
            self._helper_sources(tuple(state.helper_modules)),
        )

    def _helper_sources(self, modules: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        if modules not in self._helpers:
            self._helpers[modules] = helper_sources(self.tree, list(modules))
        return self._helpers[modules]

    # -- names ------------------------------------------------------------

    def free_names(
        self,
        state: _Closure,
        module: SourceModule,
        nodes: list[cst.CSTNode],
        exclude=(),
    ) -> list[str]:
        """Module-level names used in `nodes` (module-level code), in order
        of first use; computed once per node.  The names they read that
        nothing defines are kept in `state` for `_check_defined`."""
        excluded = frozenset(id(n) for n in exclude)
        memo = module.cache.setdefault("free_names", {})
        names: list[str] = []
        for node in nodes:
            key = (id(node), excluded)
            if key not in memo:
                memo[key] = _free_names(module, node, excluded)
            found, undefined, unevaluated = memo[key]
            names.extend(n for n in found if n not in names)
            state.undefined.extend((module, where, name) for where, name in undefined)
            state.unevaluated.update(unevaluated)
        return names

    def _check_defined(self, state: _Closure, source: str, span: ir.Span) -> None:
        """PC405 for each name the carried code reads as a global and does
        not define, by Python's own scope analysis (`symtable`) of that
        code; located where the step's code reads it.  A module with a star
        import may define anything: that import is reported instead."""
        reads = _undefined_globals(source)
        if not reads:
            return
        located: set[str] = set()
        for module, node, name in state.undefined:
            if name in reads and not star_imports(module):
                hint = did_you_mean(name, [*bindings(module), *BUILTINS])
                self.diagnostics.error("PC405", module.span(node), name=name, hint=hint)
                located.add(name)
        if star_imports(state.root):
            return
        # Names some module-level statement binds but the code lacks: not
        # carried because of an error reported already.
        bound = {
            name
            for module in state.modules
            for name in bindings(self.tree.module(module) or state.root)
        }
        for name in sorted(reads - located - state.unevaluated - bound):
            self.diagnostics.error("PC405", span, name=name, hint="")

    def _need_all(
        self, state: _Closure, module: SourceModule, names: list[str]
    ) -> None:
        for name in names:
            self._need(state, module, name)

    def _need(self, state: _Closure, module: SourceModule, name: str) -> None:
        if (module.name, name) in state.seen:
            return
        state.seen.add((module.name, name))
        found = bindings(module).get(name, [])
        for binding in found:
            if binding.is_import:
                self._import(state, binding)
            else:
                self._definition(state, binding)
        if found:
            first = found[0].index
            for index in mutations(module).get(name, ()):
                if index > first:
                    self._change(state, module, name, index)
            for index, node in _global_statements(module).get(name, ()):
                if (module.name, index) not in state.units:
                    detail = "a function changes it with `global`, and a task does not run that change; bind it at module level instead"
                    self.diagnostics.error(
                        "PC407",
                        module.span(node),
                        name=name,
                        step=state.step,
                        detail=detail,
                    )

    def _change(
        self, state: _Closure, module: SourceModule, name: str, index: int
    ) -> None:
        """Top-level statement `index` changes `name`: it travels with it,
        in source order (after the step's own code when it uses that)."""
        key = (module.name, index)
        if key in state.units:
            return
        statement = module.tree.body[index]
        self._check_run_time(module, statement, name)
        text = self._definition_text(module, statement)
        simple = isinstance(statement, cst.SimpleStatementLine)
        unit = _Unit(module.name, (index,), text, simple=simple)
        state.units[key] = unit
        exclude = _pipec_decorators(module, statement)
        used = self.free_names(state, module, [statement], exclude=exclude)
        unit.after_roots = module is state.root and bool(state.roots & set(used))
        self._need_all(state, module, used)

    def _check_run_time(
        self, module: SourceModule, statement: cst.CSTNode, name: str
    ) -> None:
        """PC406 for what `statement` computes at run time."""
        for node, _ in run_time_calls(module, statement):
            call = module.code(node.func if isinstance(node, cst.Call) else node)
            if isinstance(node, cst.Call):
                call += "(...)"
            self.diagnostics.add("PC406", module.span(node), name=name, call=call)

    # -- definitions ------------------------------------------------------

    def _mark_root(
        self, state: _Closure, module: SourceModule, node: cst.CSTNode
    ) -> None:
        index = module.statement_index(node)
        if index is not None:
            state.units[(module.name, index)] = _Unit(module.name, (index,), "")

    def _definition(self, state: _Closure, binding: Binding) -> None:
        module = binding.module
        key = (module.name, binding.index)
        if key in state.units:
            return
        self._claim(state, module, binding.name, module.span(binding.node))
        self._check_carriable(state, module, binding)
        self._check_run_time(module, binding.statement, binding.name)
        text = self._definition_text(module, binding.statement)
        simple = isinstance(binding.statement, cst.SimpleStatementLine)
        state.units[key] = _Unit(module.name, (binding.index,), text, simple=simple)
        exclude = _pipec_decorators(module, binding.statement)
        self._need_all(
            state,
            module,
            self.free_names(state, module, [binding.statement], exclude=exclude),
        )

    def _check_carriable(
        self, state: _Closure, module: SourceModule, binding: Binding
    ) -> None:
        for node in module.scan.globals.get(binding.index, []):
            self.diagnostics.error(
                "PC404",
                module.span(node),
                name=binding.name,
                step=state.step,
                detail="it changes module state with `global`, which does not outlive a task",
            )
        if module is not state.root:
            for star in star_imports(module):
                self.diagnostics.error(
                    "PC404",
                    module.span(star),
                    name="*",
                    step=state.step,
                    detail=f"'{module.path}' uses `from ... import *`; import the names you use",
                )

    def _claim(
        self,
        state: _Closure,
        module: SourceModule,
        name: str,
        span: ir.Span,
        signature: str = "",
    ) -> None:
        """Bind `name` in the flat step module; PC404 on a clash."""
        signature = signature or f"module {module.name}"
        previous = state.bound.setdefault(name, signature)
        if previous != signature:
            where = [
                (
                    s.replace("module ", "'", 1) + "'"
                    if s.startswith("module ")
                    else f"`{s}`"
                )
                for s in (previous, signature)
            ]
            detail = f"it is defined by both {where[0]} and {where[1]}; rename one"
            self.diagnostics.error(
                "PC404", span, name=name, step=state.step, detail=detail
            )

    def _definition_text(self, module: SourceModule, node: cst.CSTNode) -> str:
        """The code of top-level statement `node`, without pipec's
        decorators, relative imports made absolute; computed once."""
        key = (module.name, id(node))
        if key not in self._texts:
            self._texts[key] = _definition_text(module, node)
        return self._texts[key]

    def _callee_root(
        self, state: _Closure, callee: Callee | None, roots: list[str]
    ) -> str | None:
        """A fallback or predicate function given by name."""
        if callee is None or callee.definition is None:
            return None
        binding = callee.definition.binding
        module = state.root
        if (
            binding.module is module
            and binding.name == callee.name
            and not _is_unit(state, binding)
        ):
            self._claim(state, module, callee.name, callee.span)
            state.roots.add(callee.name)
            self._mark_root(state, module, binding.statement)
            roots.append(self._definition_text(module, binding.statement))
            exclude = _pipec_decorators(module, binding.statement)
            self._need_all(
                state,
                module,
                self.free_names(state, module, [binding.statement], exclude=exclude),
            )
        else:
            self._need(state, module, callee.name)
        return callee.name

    # -- imports ----------------------------------------------------------

    def _import(self, state: _Closure, binding: Binding) -> None:
        module, target, attr = binding.module, binding.target, binding.attr
        span = module.span(binding.alias)
        if target == "pipec" or target.startswith("pipec."):
            detail = "it comes from pipec, which the compiled output does not have"
            self.diagnostics.error(
                "PC404", span, name=binding.name, step=state.step, detail=detail
            )
            return
        full = f"{target}.{attr}" if attr and target else (attr or target)
        if (
            _relative(binding)
            and not self.tree.contains(target)
            or self.tree.missing(target)
        ):
            self.diagnostics.error("PC003", span, module=binding.written_module)
            return
        if (
            self.tree.contains(target)
            and attr is not None
            and not self.tree.contains(full)
        ):
            source = self.tree.module(target)
            if source is not None and source.imports_pipec():
                self._follow(state, binding, source)
                return
        tree_module = (
            full
            if self.tree.contains(full)
            else (target if self.tree.contains(target) else None)
        )
        if tree_module is not None:
            source = self.tree.module(tree_module)
            if source is not None and source.imports_pipec():
                detail = f"it is the pipeline module '{tree_module}'; import the names you use from it"
                self.diagnostics.error(
                    "PC404", span, name=binding.name, step=state.step, detail=detail
                )
                return
        text = _import_text(binding)
        self._claim(state, module, binding.name, span, signature=text)
        unit = _Unit(module.name, (binding.index,), text, is_import=True, simple=True)
        if tree_module is not None:
            unit.helper = tree_module
        else:
            unit.external = (target or attr).split(".")[0]
        state.units.setdefault(("import", text), unit)

    def _follow(self, state: _Closure, binding: Binding, source: SourceModule) -> None:
        """`from <pipeline module> import name [as alias]`: copy `name`."""
        if source.name not in state.modules:
            state.modules.insert(state.modules.index(binding.module.name), source.name)
        self._need(state, source, binding.attr)
        if binding.name != binding.attr:
            module = binding.module
            self._claim(state, module, binding.name, module.span(binding.alias))
            text = f"{binding.name} = {binding.attr}\n"
            unit = _Unit(module.name, (binding.index, binding.name), text, simple=True)
            state.units[(module.name, binding.index, binding.name)] = unit

    # -- output -----------------------------------------------------------

    def _assemble(self, state: _Closure, roots: list[str]) -> str:
        rank = {name: i for i, name in enumerate(state.modules)}
        units = [u for u in state.units.values() if u.text]
        imports = sorted(
            (u for u in units if u.is_import),
            key=lambda u: (rank.get(u.module, -1), u.key, u.text),
        )
        definitions = sorted(
            (u for u in units if not u.is_import and not u.after_roots),
            key=lambda u: (rank[u.module], u.key),
        )
        after = sorted((u for u in units if u.after_roots), key=lambda u: u.key)
        for unit in imports:
            if unit.helper:
                _append(state.helper_modules, unit.helper)
            else:
                _append(state.imported_modules, unit.external)
        source = "".join(u.text for u in imports)
        previous = _Unit("", (), source, simple=True) if imports else None
        for unit in [*definitions, *(_Unit("", (), text) for text in roots), *after]:
            if previous is not None:
                source += "\n" if previous.simple and unit.simple else "\n\n"
            source += unit.text
            previous = unit
        return source


def _definition_text(module: SourceModule, statement: cst.CSTNode) -> str:
    sliced = _sliced_definition(module, statement)
    if sliced is not None:
        return sliced
    node = statement
    if isinstance(node, cst.FunctionDef):
        kinds = decorator_kinds(module, node)
        decorators = [d for d, kind in zip(node.decorators, kinds) if kind is None]
        if decorators:
            decorators[0] = decorators[0].with_changes(leading_lines=())
        node = node.with_changes(decorators=decorators)
    if hasattr(node, "leading_lines"):
        node = node.with_changes(leading_lines=())
    if isinstance(node, cst.ClassDef) and node.decorators:
        node = node.with_changes(
            decorators=[
                node.decorators[0].with_changes(leading_lines=()),
                *node.decorators[1:],
            ]
        )
    if _has_relative_import(module, statement):
        node = node.visit(_AbsoluteImports(module))
    return module.tree.code_for_node(node).rstrip("\n") + "\n"


def _sliced_definition(module: SourceModule, statement: cst.CSTNode) -> str | None:
    """The common case, without generating code: a function whose
    decorators are all pipec's and that has no relative import is the
    module's text from after its decorators (or blank lines) to its end."""
    if not isinstance(statement, cst.FunctionDef) or _has_relative_import(
        module, statement
    ):
        return None
    if None in decorator_kinds(module, statement):
        return None
    layout = module.layout
    before = statement.decorators or statement.leading_lines
    start, end = layout.inclusive(statement)
    if before:
        start = layout.inclusive(before[-1])[1]
    return layout.source(start, end).rstrip("\n") + "\n"


def _has_relative_import(module: SourceModule, statement: cst.CSTNode) -> bool:
    index = module.statement_index(statement)
    if index is None:
        return True
    if "relative_imports" not in module.cache:  # the statements that have one
        module.cache["relative_imports"] = {
            site.index
            for site in module.scan.imports
            if isinstance(site.node, cst.ImportFrom) and site.node.relative
        }
    return index in module.cache["relative_imports"]


def _free_names(
    module: SourceModule, node: cst.CSTNode, excluded
) -> tuple[list[str], list[tuple[cst.Name, str]]]:
    """The module-level names `node` uses, in order of first use; and the
    names it reads that nothing defines (not in annotations, which need
    not be evaluated, nor in string annotations)."""
    table = bindings(module)
    collector = FreeNames(module.scopes, module.any_qualified)
    collector.lazy_annotations = any(
        b.target == "__future__" for b in table.get("annotations", ())
    )
    found = collector.collect(node, excluded)
    ordered = sorted(
        (module.offset(where), i, name)
        for i, (where, name) in enumerate(found)
        if name in table
    )
    undefined = [
        (where, name)
        for where, name in found
        if name not in table
        and name not in BUILTINS
        and type(where) is cst.Name
        and id(where) not in collector.unevaluated
    ]
    unevaluated = {
        name
        for where, name in found
        if id(where) in collector.unevaluated or type(where) is not cst.Name
    }
    names = list(dict.fromkeys(name for _, _, name in ordered))
    return names, undefined, unevaluated


def _undefined_globals(source: str) -> set[str]:
    """The names `source` reads as globals (in any scope) that it binds
    nowhere at module level (nor with `global` in a function) and that are
    no builtins, by CPython's symbol tables."""
    try:
        top = symtable.symtable(source, "<step>", "exec")
    except (SyntaxError, ValueError, RecursionError):
        return set()
    bound = {
        s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()
    }
    reads: set[str] = set()
    stack = [top]
    while stack:
        table = stack.pop()
        for symbol in table.get_symbols():
            name = symbol.get_name()
            if symbol.is_declared_global() and symbol.is_assigned():
                bound.add(name)
            elif symbol.is_referenced() and (table is top or symbol.is_global()):
                reads.add(name)
        stack.extend(table.get_children())
    return reads - bound - BUILTINS


def _global_statements(module: SourceModule) -> dict[str, list[tuple[int, cst.Global]]]:
    """Per name, the `global` statements naming it, with the number of the
    top-level statement they are in (computed once)."""
    found = module.cache.get("global_statements")
    if found is None:
        found = module.cache["global_statements"] = {}
        for index, nodes in module.scan.globals.items():
            for node in nodes:
                for item in node.names:
                    found.setdefault(item.name.value, []).append((index, node))
    return found


def helper_sources(tree: SourceTree, modules: list[str]) -> tuple[tuple[str, str], ...]:
    """(name, source text) of `modules`, the tree modules they import
    (transitively) and the package `__init__` modules above them, by name."""
    found: dict[str, str] = {}
    pending = list(modules)
    while pending:
        name = pending.pop(0)
        if name in found:
            continue
        module = tree.module(name)
        if module is None:
            continue
        found[name] = module.text
        pending.extend(_tree_imports(module, tree))
        pending.extend(_packages_above(tree, name))
    return tuple(sorted(found.items()))


def _packages_above(tree: SourceTree, name: str) -> list[str]:
    parts = name.split(".")
    packages = []
    for end in range(1, len(parts)):
        package = ".".join(parts[:end])
        file = tree.file_for(package)
        if file is not None and file.name == "__init__.py":
            packages.append(package)
    return packages


def _tree_imports(module: SourceModule, tree: SourceTree) -> list[str]:
    """The modules of the tree that a module imports, anywhere in it."""
    names: list[str] = []

    def add(name: str) -> None:
        if name and tree.contains(name) and name not in names:
            names.append(name)

    for site in module.scan.imports:
        node = site.node
        if isinstance(node, cst.Import):
            for alias in node.names:
                add(dotted(alias.name))
            continue
        target = module.absolute(
            len(node.relative), dotted(node.module) if node.module else ""
        )
        add(target)
        if not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                add(f"{target}.{dotted(alias.name)}" if target else dotted(alias.name))
    return names


def _pipec_decorators(module: SourceModule, node: cst.CSTNode) -> list[cst.Decorator]:
    if not isinstance(node, cst.FunctionDef):
        return []
    kinds = decorator_kinds(module, node)
    return [d for d, kind in zip(node.decorators, kinds) if kind is not None]


def _relative(binding: Binding) -> bool:
    return isinstance(binding.node, cst.ImportFrom) and bool(binding.node.relative)


def _is_unit(state: _Closure, binding: Binding) -> bool:
    return (binding.module.name, binding.index) in state.units


def _append(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _import_text(binding: Binding) -> str:
    alias = binding.alias
    written = dotted(alias.name)
    suffix = f" as {binding.name}" if alias.asname is not None else ""
    if binding.attr is None:
        return f"import {written}{suffix}\n"
    return f"from {binding.target} import {written}{suffix}\n"


def _lambda_function(module: SourceModule, name: str, node: cst.Lambda) -> str:
    params = module.tree.code_for_node(node.params)
    body = module.tree.code_for_node(node.body).strip()
    if "\n" in body and not node.body.lpar:
        body = f"(\n        {body}\n    )"
    return f"def {name}({params}):\n    return {body}\n"


class _AbsoluteImports(cst.CSTTransformer):
    """`from .x import y` inside copied code → `from pkg.x import y`."""

    def __init__(self, module: SourceModule) -> None:
        self.module = module

    def leave_ImportFrom(
        self, original: cst.ImportFrom, updated: cst.ImportFrom
    ) -> cst.ImportFrom:
        if not updated.relative:
            return updated
        name = self.module.absolute(
            len(updated.relative), dotted(updated.module) if updated.module else ""
        )
        if not name or name.startswith("."):  # no package to start from: as written
            return updated
        return updated.with_changes(relative=(), module=cst.parse_expression(name))
