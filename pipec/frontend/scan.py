"""Purpose-built walks over libcst trees, in place of libcst's metadata.

libcst's `ScopeProvider` / `QualifiedNameProvider` analyse every node of a
module, and its generic visitor rebuilds every node it passes; for a module
of a thousand steps that is seconds.  pipec needs much less:

- `children(node)`: the child nodes that can hold names, read straight from
  the node's fields (whitespace and punctuation skipped);
- `Scopes.names_bound(scope)`: what a function, lambda, class body or
  comprehension binds (its parameters and local assignments, `global` and
  `nonlocal` declarations, and which imports the local names come from);
- `ModuleScan`: one walk of a module collecting the few things the frontend
  looks for anywhere in it (imports, `global` statements, calls that may be
  `Pipeline(...)` / `.add_step(...)`, decorators on nested functions), each
  with the top-level statement it is in and its enclosing scopes;
- `FreeNames`: the module-level names a top-level statement reads, with
  Python's scoping rules (parameters, locals, comprehension targets, class
  bodies, `global` / `nonlocal`) and string annotations.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Callable, Iterator

import libcst as cst

# Fields that never hold a name: whitespace, punctuation, blank lines.
_SKIP = frozenset(
    {
        "lpar",
        "rpar",
        "lbracket",
        "rbracket",
        "lbrace",
        "rbrace",
        "leading_lines",
        "lines_after_decorators",
        "header",
        "footer",
        "semicolon",
        "comma",
        "equal",
        "colon",
        "dot",
        "operator",
        "asynchronous",
        "trailing_whitespace",
        "newline",
    }
)
_FIELDS: dict[type, Callable[[cst.CSTNode], tuple]] = {}


def _field_values(kind: type) -> Callable[[cst.CSTNode], tuple]:
    """The function that reads, in one call, the fields of a `kind` node
    that may hold names (in field order); made once per node type."""
    names = tuple(
        f.name
        for f in dataclasses.fields(kind)
        if f.name not in _SKIP
        and not f.name.startswith("whitespace")
        and f.type is not str  # Name.value, SimpleString.value...: text
    )
    if len(names) > 1:
        read = attrgetter(*names)
    else:  # attrgetter of one name gives the value, not a tuple
        get = attrgetter(*names) if names else None

        def read(node: cst.CSTNode) -> tuple:
            return (get(node),) if get else ()

    _FIELDS[kind] = read
    return read


# Whether a type is a libcst node, per type: libcst's node classes are
# abstract (ABCMeta), so `isinstance(value, cst.CSTNode)` is a Python-level
# `__instancecheck__` call, and the walks below ask it of every field.
_IS_NODE: dict[type, bool] = {}


def _is_node(kind: type) -> bool:
    flag = _IS_NODE.get(kind)
    if flag is None:
        flag = _IS_NODE[kind] = issubclass(kind, cst.CSTNode)
    return flag


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The child nodes of `node` that may contain names, in field order."""
    kind = type(node)
    found: list[cst.CSTNode] = []
    for value in (_FIELDS.get(kind) or _field_values(kind))(node):
        if _is_node(type(value)):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend([v for v in value if _is_node(type(v))])
    return found


def dotted(node: cst.CSTNode | None) -> str:
    """'a.b.c' for a Name / Attribute chain, '' otherwise."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr.value}" if base else ""
    return ""


_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)
_FUNCTIONS = (cst.FunctionDef, cst.Lambda)
ScopeNode = cst.CSTNode  # FunctionDef, Lambda, ClassDef or a comprehension


# --------------------------------------------------------------------------
# Identifiers as Python reads them


class _NormalisedNames(cst.CSTTransformer):
    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        value = updated.value
        if value.isascii():
            return updated
        return updated.with_changes(value=unicodedata.normalize("NFKC", value))


def normalise_names(tree: cst.Module, text: str) -> cst.Module:
    """`tree` with every identifier NFKC-normalised, as Python's parser
    normalises them (`ｌｏａｄ` is `load`), so that everything the frontend
    reads from the tree names things as Python does.  A text already in
    NFKC (any ASCII text) has nothing to change: the tree is returned as is."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return tree
    return tree.visit(_NormalisedNames())


# --------------------------------------------------------------------------
# What a scope binds


@dataclass
class Bound:
    """The names a scope binds: name -> the qualified name it imports
    (`pipec.step` for `from pipec import step`), or '' for any other binding."""

    names: dict[str, str] = field(default_factory=dict)
    globals: set[str] = field(default_factory=set)
    nonlocals: set[str] = field(default_factory=set)


def import_bindings(
    node: cst.Import | cst.ImportFrom, absolute: Callable[[int, str], str]
) -> list[tuple[str, str]]:
    """(bound name, qualified name) for each alias of an import statement;
    `absolute(level, module)` makes relative imports absolute."""
    if isinstance(node, cst.Import):
        found = []
        for alias in node.names:
            written = dotted(alias.name)
            if alias.asname is not None:
                found.append((dotted(alias.asname.name), written))
            else:
                head = written.split(".")[0]
                found.append((head, head))
        return found
    if isinstance(node.names, cst.ImportStar):
        return []
    module = absolute(len(node.relative), dotted(node.module) if node.module else "")
    found = []
    for alias in node.names:
        written = dotted(alias.name)
        bound = dotted(alias.asname.name) if alias.asname is not None else written
        found.append((bound, f"{module}.{written}" if module else written))
    return found


def target_names(node: cst.CSTNode) -> list[str]:
    """Names an assignment target binds (`a`, `a, *b`, `[a, b]`)."""
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, (cst.Tuple, cst.List)):
        names = []
        for element in node.elements:
            names.extend(target_names(element.value))
        return names
    if isinstance(node, cst.StarredElement):
        return target_names(node.value)
    return []


# The node types `_Binder.walk` treats specially.
_BINDING_KINDS = frozenset(
    {
        cst.FunctionDef,
        cst.ClassDef,
        cst.Lambda,
        cst.Import,
        cst.ImportFrom,
        cst.Global,
        cst.Nonlocal,
        cst.AssignTarget,
        cst.AnnAssign,
        cst.AugAssign,
        cst.NamedExpr,
        cst.For,
        cst.CompFor,
        cst.AsName,
        cst.Del,
        cst.MatchAs,
        cst.MatchStar,
        cst.MatchMapping,
    }
)


class _Binder:
    """Collects what one scope's own code binds (not nested scopes)."""

    def __init__(self, absolute: Callable[[int, str], str]) -> None:
        self.absolute = absolute
        self.bound = Bound()

    def add(self, names: list[str], qualified: str = "") -> None:
        for name in names:
            self.bound.names[name] = qualified

    def walk(self, node: cst.CSTNode) -> None:
        kind = type(node)
        if kind not in _BINDING_KINDS:  # most nodes: only look inside
            for child in children(node):
                self.walk(child)
            return
        if kind in (cst.FunctionDef, cst.ClassDef):
            self.add([node.name.value])
            return  # its decorators, defaults and bases bind nothing worth it
        if kind is cst.Lambda:
            return
        if kind in (cst.Import, cst.ImportFrom):
            for name, qualified in import_bindings(node, self.absolute):
                self.bound.names[name] = qualified
            return
        if kind is cst.Global:
            self.bound.globals.update(item.name.value for item in node.names)
            return
        if kind is cst.Nonlocal:
            self.bound.nonlocals.update(item.name.value for item in node.names)
            return
        if kind is cst.AssignTarget:
            self.add(target_names(node.target))
        elif kind in (cst.AnnAssign, cst.AugAssign, cst.NamedExpr):
            self.add(target_names(node.target))
        elif kind in (cst.For, cst.CompFor):
            if kind is cst.For:
                self.add(target_names(node.target))
        elif kind is cst.AsName:
            self.add(target_names(node.name))
        elif kind is cst.Del:
            self.add(target_names(node.target))
        elif kind in (cst.MatchAs, cst.MatchStar):
            if node.name is not None:
                self.add([node.name.value])
        elif kind is cst.MatchMapping:
            if node.rest is not None:
                self.add([node.rest.value])
        for child in children(node):
            self.walk(child)


class Scopes:
    """What each scope binds, computed once per scope node."""

    def __init__(self, absolute: Callable[[int, str], str]) -> None:
        self.absolute = absolute
        self._bound: dict[int, Bound] = {}

    def names_bound(self, scope: ScopeNode) -> Bound:
        key = id(scope)
        if key not in self._bound:
            self._bound[key] = self._collect(scope)
        return self._bound[key]

    def _collect(self, scope: ScopeNode) -> Bound:
        binder = _Binder(self.absolute)
        if isinstance(scope, _FUNCTIONS):
            binder.add(param_names(scope.params))
            binder.walk(scope.body)
        elif isinstance(scope, cst.ClassDef):
            binder.walk(scope.body)
        elif isinstance(scope, _COMPREHENSIONS):
            for_in = scope.for_in
            while for_in is not None:
                binder.add(target_names(for_in.target))
                for_in = for_in.inner_for_in
        return binder.bound

    def lookup(self, name: str, scopes: tuple[ScopeNode, ...]) -> str | None:
        """The qualified name `name` has in the innermost of `scopes` that
        binds it ('' for a non-import binding), or None when it is a
        module-level name there.  Class bodies are seen only from their own
        code, not from the functions inside them."""
        for depth in range(len(scopes) - 1, -1, -1):
            scope = scopes[depth]
            if isinstance(scope, cst.ClassDef) and depth != len(scopes) - 1:
                continue
            bound = self.names_bound(scope)
            if name in bound.globals:
                return None
            if name in bound.nonlocals:
                continue
            if name in bound.names:
                return bound.names[name]
        return None


def param_names(params: cst.Parameters) -> list[str]:
    names = [
        p.name.value
        for p in (*params.posonly_params, *params.params, *params.kwonly_params)
    ]
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            names.append(star.name.value)
    return names


# --------------------------------------------------------------------------
# One walk of a whole module


@dataclass(frozen=True)
class Site:
    """A node found by `ModuleScan`, with top-level statement number `index`
    and its enclosing scopes (outermost first; empty at module level)."""

    node: cst.CSTNode
    index: int
    scopes: tuple[ScopeNode, ...]


# The node types `ModuleScan._walk` treats specially.
_SCAN_KINDS = frozenset(
    {
        cst.Call,
        cst.Import,
        cst.ImportFrom,
        cst.Global,
        cst.FunctionDef,
        cst.ClassDef,
        cst.Lambda,
        *_COMPREHENSIONS,
    }
)


@dataclass
class ModuleScan:
    imports: list[Site] = field(default_factory=list)  # Import / ImportFrom
    globals: dict[int, list[cst.Global]] = field(default_factory=dict)
    calls: list[Site] = field(default_factory=list)  # f(...), a.b(...), x.add_step(...)
    nested: list[Site] = field(default_factory=list)  # decorated, not top level

    @classmethod
    def of(cls, module: cst.Module) -> "ModuleScan":
        scan = cls()
        for index, statement in enumerate(module.body):
            scan._walk(statement, index, ())
        return scan

    def _walk(
        self, node: cst.CSTNode, index: int, scopes: tuple[ScopeNode, ...]
    ) -> None:
        kind = type(node)
        if kind not in _SCAN_KINDS:  # most nodes: only look inside
            for child in children(node):
                self._walk(child, index, scopes)
            return
        if kind is cst.Call:
            func = node.func
            if dotted(func) or (
                isinstance(func, cst.Attribute) and func.attr.value == "add_step"
            ):
                self.calls.append(Site(node, index, scopes))
        elif kind in (cst.Import, cst.ImportFrom):
            self.imports.append(Site(node, index, scopes))
            return
        elif kind is cst.Global:
            self.globals.setdefault(index, []).append(node)
            return
        elif kind is cst.FunctionDef or kind is cst.ClassDef:
            if kind is cst.FunctionDef and scopes and node.decorators:
                self.nested.append(Site(node, index, scopes))
            inner = (*scopes, node)
            for child in children(node):
                if child is node.body:
                    self._walk(child, index, inner)
                else:
                    self._walk(child, index, scopes)
            return
        elif kind is cst.Lambda or kind in _COMPREHENSIONS:
            inner = (*scopes, node)
            for child in children(node):
                self._walk(child, index, inner)
            return
        for child in children(node):
            self._walk(child, index, scopes)


# --------------------------------------------------------------------------
# Free names


class FreeNames:
    """The module-level names read by a piece of module-level code.

    `collect(node, exclude)` returns (node, name) pairs: each `Name` read
    that resolves to module level (or, for names inside a string
    annotation, the string), in no particular order; the caller sorts them
    by position.  `typing(name)` tells whether a module-level name is
    `typing.X` / `typing_extensions.X` (its qualified names), for the
    string annotations inside `List["Model"]`, `cast("T", x)` and such."""

    def __init__(
        self,
        scopes: Scopes,
        qualified: Callable[[str], tuple[str, ...]],
    ) -> None:
        self.scopes = scopes
        self.qualified = qualified
        self.found: list[tuple[cst.CSTNode, str]] = []
        # ids of the found names in annotations Python does not evaluate:
        # a local variable's, or any with `lazy_annotations` (a module with
        # `from __future__ import annotations`)
        self.unevaluated: set[int] = set()
        self.lazy_annotations = False
        self._local_annotation = 0  # > 0 in a local variable's annotation
        self._string: cst.CSTNode | None = None  # the annotation being read
        self._annotation_depth = 0  # > 0 inside an annotation
        self._hints = [False]  # top: inside a type hint (List[...], cast(...))
        self._literal = 0  # > 0 inside typing.Literal[...]

    def collect(
        self, node: cst.CSTNode, exclude: frozenset[int] = frozenset()
    ) -> list[tuple[cst.CSTNode, str]]:
        self.found = []
        self.unevaluated = set()
        self._exclude = exclude
        self._visit(node, ())
        return self.found

    # -- resolution -------------------------------------------------------

    def _load(self, node: cst.Name, scopes: tuple[ScopeNode, ...]) -> None:
        if self.scopes.lookup(node.value, scopes) is None:
            self.found.append((self._string or node, node.value))
            if self._annotation_depth and (
                self.lazy_annotations or self._local_annotation
            ):
                self.unevaluated.add(id(node))

    def _qualified(self, node: cst.CSTNode, scopes) -> tuple[str, ...]:
        path = dotted(node)
        if not path:
            return ()
        head, _, rest = path.partition(".")
        local = self.scopes.lookup(head, scopes)
        if local is not None:
            return (f"{local}.{rest}" if rest else local,) if local else ()
        return tuple(
            f"{q}.{rest}" if rest else q for q in self.qualified(head)
        )

    # -- the walk ---------------------------------------------------------

    def _visit(self, node: cst.CSTNode, scopes: tuple[ScopeNode, ...]) -> None:
        if id(node) in self._exclude:
            return
        method = _VISIT.get(type(node))
        if method is not None:
            method(self, node, scopes)
            return
        for child in children(node):
            self._visit(child, scopes)

    def _each(self, nodes, scopes) -> None:
        for node in nodes:
            self._visit(node, scopes)

    def _name(self, node: cst.Name, scopes) -> None:
        self._load(node, scopes)

    def _attribute(self, node: cst.Attribute, scopes) -> None:
        self._visit(node.value, scopes)

    def _arg(self, node: cst.Arg, scopes) -> None:
        self._visit(node.value, scopes)

    def _skip(self, node, scopes) -> None:
        pass

    def _target(self, node: cst.CSTNode, scopes) -> None:
        """An assignment target: names are bound, not read."""
        if isinstance(node, cst.Name):
            return
        if isinstance(node, (cst.Tuple, cst.List)):
            for element in node.elements:
                self._target(element.value, scopes)
        elif isinstance(node, cst.StarredElement):
            self._target(node.value, scopes)
        else:
            self._visit(node, scopes)  # a.b = ..., a[i] = ...: reads a, i

    def _assign_target(self, node: cst.AssignTarget, scopes) -> None:
        self._target(node.target, scopes)

    def _ann_assign(self, node: cst.AnnAssign, scopes) -> None:
        self._target(node.target, scopes)
        local = bool(scopes) and isinstance(scopes[-1], _FUNCTIONS)
        self._local_annotation += local
        self._visit(node.annotation, scopes)
        self._local_annotation -= local
        if node.value is not None:
            self._visit(node.value, scopes)

    def _aug_assign(self, node: cst.AugAssign, scopes) -> None:
        self._target(node.target, scopes)
        self._visit(node.value, scopes)

    def _named_expr(self, node: cst.NamedExpr, scopes) -> None:
        self._visit(node.value, scopes)

    def _for(self, node: cst.For, scopes) -> None:
        self._target(node.target, scopes)
        self._visit(node.iter, scopes)
        self._visit(node.body, scopes)
        if node.orelse is not None:
            self._visit(node.orelse, scopes)

    def _as_name(self, node: cst.AsName, scopes) -> None:
        self._target(node.name, scopes)

    def _match_as(self, node, scopes) -> None:
        if node.pattern is not None:
            self._visit(node.pattern, scopes)

    def _match_mapping(self, node: cst.MatchMapping, scopes) -> None:
        self._each(node.elements, scopes)

    def _match_keyword(self, node: cst.MatchKeywordElement, scopes) -> None:
        self._visit(node.pattern, scopes)

    def _type_alias(self, node: cst.TypeAlias, scopes) -> None:
        self._visit(node.value, scopes)

    def _param(self, node: cst.Param, scopes) -> None:
        # Defaults and annotations are read where the function is defined;
        # the caller passes the enclosing scopes.
        if node.default is not None:
            self._visit(node.default, scopes)
        if node.annotation is not None:
            self._visit(node.annotation, scopes)

    def _parameters(self, params: cst.Parameters, scopes) -> None:
        for param in (
            *params.posonly_params,
            *params.params,
            *params.kwonly_params,
            params.star_arg,
            params.star_kwarg,
        ):
            if isinstance(param, cst.Param):
                self._param(param, scopes)

    def _function(self, node: cst.FunctionDef, scopes) -> None:
        self._each(node.decorators, scopes)
        self._parameters(node.params, scopes)
        if node.returns is not None:
            self._visit(node.returns, scopes)
        self._visit(node.body, (*scopes, node))

    def _lambda(self, node: cst.Lambda, scopes) -> None:
        self._parameters(node.params, scopes)
        self._visit(node.body, (*scopes, node))

    def _class(self, node: cst.ClassDef, scopes) -> None:
        self._each(node.decorators, scopes)
        self._each(node.bases, scopes)
        self._each(node.keywords, scopes)
        inner = (*scopes, node)
        statements = node.body.body  # IndentedBlock or SimpleStatementSuite
        # A class body reads a name from the module until it binds it.
        bound = Bound()
        self.scopes._bound[id(node)] = bound
        for statement in statements:
            self._visit(statement, inner)
            binder = _Binder(self.scopes.absolute)
            binder.walk(statement)
            bound.names.update(binder.bound.names)
            bound.globals.update(binder.bound.globals)
            bound.nonlocals.update(binder.bound.nonlocals)
        del self.scopes._bound[id(node)]  # seen from outside: the whole body

    def _comprehension(self, node, scopes) -> None:
        for_in = node.for_in
        self._visit(for_in.iter, scopes)  # the first iterable: outside
        inner = (*scopes, node)
        while for_in is not None:
            self._target(for_in.target, inner)
            if for_in is not node.for_in:
                self._visit(for_in.iter, inner)
            self._each(for_in.ifs, inner)
            for_in = for_in.inner_for_in
        if isinstance(node, cst.DictComp):
            self._visit(node.key, inner)
            self._visit(node.value, inner)
        else:
            self._visit(node.elt, inner)

    def _import(self, node, scopes) -> None:
        pass

    # -- annotations ------------------------------------------------------

    def _annotation(self, node: cst.Annotation, scopes) -> None:
        self._annotation_depth += 1
        self._visit(node.annotation, scopes)
        self._annotation_depth -= 1

    def _subscript(self, node: cst.Subscript, scopes) -> None:
        hint = literal = False
        if isinstance(node.value, cst.Name):
            names = self._qualified(node.value, scopes)
            hint = any(q.startswith(("typing.", "typing_extensions.")) for q in names)
            literal = any(
                q in ("typing.Literal", "typing_extensions.Literal") for q in names
            )
        self._visit(node.value, scopes)
        self._hints.append(hint)
        self._literal += literal
        self._each(node.slice, scopes)
        self._hints.pop()
        self._literal -= literal

    def _call(self, node: cst.Call, scopes) -> None:
        names = self._qualified(node.func, scopes)
        self._visit(node.func, scopes)
        for index, arg in enumerate(node.args):
            typed = (
                "typing.cast" in names
                and index == 0
                or ("typing.NewType" in names or "typing.TypeVar" in names)
                and index > 0
            )
            self._hints.append(typed)
            self._visit(arg, scopes)
            self._hints.pop()

    def _string(self, node: cst.BaseString, scopes) -> None:
        if (self._hints[-1] or self._annotation_depth) and not self._literal:
            value = node.evaluated_value
            if value:
                try:
                    parsed = normalise_names(cst.parse_module(value), value)
                except cst.ParserSyntaxError:
                    parsed = None
                if parsed is not None:
                    outer = self._string
                    self._string = outer or node
                    self._visit(parsed, scopes)
                    self._string = outer
                    return
        if isinstance(node, cst.ConcatenatedString):
            self._visit(node.left, scopes)
            self._visit(node.right, scopes)
        else:
            for child in children(node):
                self._visit(child, scopes)


_VISIT: dict[type, Callable] = {
    cst.Name: FreeNames._name,
    cst.Attribute: FreeNames._attribute,
    cst.Arg: FreeNames._arg,
    cst.AssignTarget: FreeNames._assign_target,
    cst.AnnAssign: FreeNames._ann_assign,
    cst.AugAssign: FreeNames._aug_assign,
    cst.NamedExpr: FreeNames._named_expr,
    cst.For: FreeNames._for,
    cst.AsName: FreeNames._as_name,
    cst.MatchAs: FreeNames._match_as,
    cst.MatchStar: FreeNames._skip,
    cst.MatchMapping: FreeNames._match_mapping,
    cst.MatchKeywordElement: FreeNames._match_keyword,
    cst.TypeAlias: FreeNames._type_alias,
    cst.Param: FreeNames._param,
    cst.FunctionDef: FreeNames._function,
    cst.Lambda: FreeNames._lambda,
    cst.ClassDef: FreeNames._class,
    cst.ListComp: FreeNames._comprehension,
    cst.SetComp: FreeNames._comprehension,
    cst.GeneratorExp: FreeNames._comprehension,
    cst.DictComp: FreeNames._comprehension,
    cst.Import: FreeNames._import,
    cst.ImportFrom: FreeNames._import,
    cst.Global: FreeNames._skip,
    cst.Nonlocal: FreeNames._skip,
    cst.Annotation: FreeNames._annotation,
    cst.Subscript: FreeNames._subscript,
    cst.Call: FreeNames._call,
    cst.SimpleString: FreeNames._string,
    cst.ConcatenatedString: FreeNames._string,
}


def walk_all(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node under `node` (names-bearing fields only), preorder."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


# --------------------------------------------------------------------------
# Shapes the readers look for (plain checks: libcst.matchers costs more to
# import than pipec spends reading a hundred steps)


def is_single_arg_call(node: cst.CSTNode) -> bool:
    """`f(x)`: a call with exactly one plain positional argument."""
    return (
        isinstance(node, cst.Call)
        and len(node.args) == 1
        and node.args[0].keyword is None
        and node.args[0].star == ""
    )


def is_add_step_call(node: cst.CSTNode) -> bool:
    """`<anything>.add_step(...)`."""
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "add_step"
    )
