"""Module-level code that changes a name after it is bound, and module-level
code whose value depends on when and where it runs.

A task carries the definitions of the names its step uses (`closure`); the
local run sees the module after all of its top-level statements ran.  For
the two to compute the same values, a statement that changes a carried name
without binding it travels with the name, in source order.  `mutations(module)`
finds them, per name, by what the statement does at module level:

    NAME[k] = v / NAME.attr = v / NAME[k] += v    (an assignment into it)
    del NAME / del NAME[k]                         (a deletion)
    NAME.method(...)                               (a call on it, as a statement;
    f(..., NAME, ...)                               or given to a call as a statement)
    setattr(NAME, ...) / delattr(NAME, ...)
    @NAME.register def f(): ...                    (a decorator on it, for a
                                                    name that is not a module)

and the same inside a top-level `if` / `for` / `while` / `with` / `try` /
`match` block (the whole block travels).  `if __name__ == "__main__":`
blocks never run when the module is imported and are left out; so are the
statements that declare pipelines (`add_step`, pipec's calls).

`run_time_calls(module, statement)`: the calls and attributes in a
statement's module-level code (function bodies excluded: they run when
called) whose value depends on the clock, chance, the machine or the
process: each task evaluates them again (PC406).
"""

from __future__ import annotations

import libcst as cst

from pipec.frontend.scan import children, dotted
from pipec.frontend.sources import SourceModule

_COMPOUND = (cst.If, cst.For, cst.While, cst.With, cst.Try, cst.Match)
_TRY_STAR = getattr(cst, "TryStar", None)
if _TRY_STAR is not None:
    _COMPOUND = (*_COMPOUND, _TRY_STAR)

# Qualified names whose value depends on when, where or in which process
# they are evaluated.  A trailing "." matches everything in the module.
_RUN_TIME = (
    "random.",
    "secrets.",
    "uuid.uuid1",
    "uuid.uuid4",
    "time.",
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "datetime.date.today",
    "os.listdir",
    "os.scandir",
    "os.walk",
    "os.getcwd",
    "os.getpid",
    "os.getenv",
    "os.environ",
    "os.urandom",
    "os.cpu_count",
    "os.path.exists",
    "os.path.isfile",
    "os.path.isdir",
    "os.path.getmtime",
    "os.path.getsize",
    "os.path.expanduser",
    "os.path.abspath",
    "os.path.realpath",
    "glob.",
    "pathlib.Path.cwd",
    "pathlib.Path.home",
    "socket.gethostname",
    "platform.node",
    "getpass.getuser",
    "tempfile.",
    "sys.argv",
    "numpy.random.",
    "torch.rand",
    "torch.randn",
    "torch.randint",
    "torch.randperm",
)
# Of those, the ones that are values rather than functions.
_RUN_TIME_VALUES = ("os.environ", "sys.argv")
# Builtins of the same kind (when no module-level name hides them).
_RUN_TIME_BUILTINS = ("open", "input", "id", "hash")
# Calls in those modules that make later values reproducible.
_SEEDS = ("random.seed", "numpy.random.seed", "torch.manual_seed")


def mutations(module: SourceModule) -> dict[str, list[int]]:
    """Per module-level name, the numbers of the top-level statements that
    change it without binding it, in source order (computed once)."""
    found = module.cache.get("mutations")
    if found is None:
        found = module.cache["mutations"] = {}
        for index, statement in enumerate(module.tree.body):
            for name in _changed(module, statement):
                found.setdefault(name, []).append(index)
    return found


def _changed(module: SourceModule, statement: cst.CSTNode) -> list[str]:
    names: list[str] = []
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        for decorator in statement.decorators:
            _decorator(module, decorator.decorator, names)
    elif isinstance(statement, cst.SimpleStatementLine):
        if _declares_pipeline(module, statement):
            return []
        for small in statement.body:
            _small(small, names)
    elif isinstance(statement, _COMPOUND) and not _is_main_block(statement):
        if _declares_pipeline(module, statement):
            return []
        for line in _simple_lines(statement):
            for small in line.body:
                _small(small, names)
    return list(dict.fromkeys(names))


def _root(node: cst.CSTNode) -> str | None:
    """The name at the root of `a.b[c].d(...)`."""
    while True:
        if isinstance(node, cst.Name):
            return node.value
        if isinstance(node, cst.Attribute):
            node = node.value
        elif isinstance(node, cst.Subscript):
            node = node.value
        elif isinstance(node, cst.Call):
            node = node.func
        else:
            return None


def _target(node: cst.CSTNode, names: list[str], deleted: bool = False) -> None:
    if isinstance(node, (cst.Tuple, cst.List)):
        for element in node.elements:
            _target(element.value, names, deleted)
    elif isinstance(node, cst.StarredElement):
        _target(node.value, names, deleted)
    elif isinstance(node, (cst.Attribute, cst.Subscript)) or (
        deleted and isinstance(node, cst.Name)
    ):
        root = _root(node)
        if root:
            names.append(root)


def _small(small: cst.BaseSmallStatement, names: list[str]) -> None:
    if isinstance(small, cst.Assign):
        for target in small.targets:
            _target(target.target, names)
    elif isinstance(small, (cst.AugAssign, cst.AnnAssign)):
        _target(small.target, names)
    elif isinstance(small, cst.Del):
        _target(small.target, names, deleted=True)
    elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        call = small.value
        if isinstance(call.func, cst.Attribute):
            root = _root(call.func)
            if root:
                names.append(root)
        elif isinstance(call.func, cst.Name) and call.func.value in (
            "setattr",
            "delattr",
        ):
            if call.args:
                root = _root(call.args[0].value)
                if root:
                    names.append(root)
        for arg in call.args:
            if isinstance(arg.value, cst.Name):
                names.append(arg.value.value)


def _decorator(module: SourceModule, node: cst.CSTNode, names: list[str]) -> None:
    """`@NAME.attr` / `@NAME.attr(...)` on a definition changes NAME (a
    registry), unless NAME is an imported module or pipec."""
    func = node.func if isinstance(node, cst.Call) else node
    if not isinstance(func, cst.Attribute) or module.pipec_name(func) is not None:
        return
    root = _root(func)
    if root and not _is_module_import(module, root):
        names.append(root)


def _is_module_import(module: SourceModule, name: str) -> bool:
    from pipec.frontend.symbols import bindings

    found = bindings(module).get(name, [])
    return bool(found) and all(b.is_import and b.attr is None for b in found)


def _simple_lines(node: cst.CSTNode):
    """The simple statement lines in a compound statement, at any depth,
    outside function and class definitions."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.SimpleStatementLine):
            yield current
        elif isinstance(current, (cst.FunctionDef, cst.ClassDef)):
            continue
        elif isinstance(current, cst.SimpleStatementSuite):
            yield current
        else:
            stack.extend(reversed(children(current)))


def _is_main_block(statement: cst.CSTNode) -> bool:
    """`if __name__ == "__main__":` (either way round)."""
    if not isinstance(statement, cst.If) or not isinstance(
        statement.test, cst.Comparison
    ):
        return False
    test = statement.test
    if len(test.comparisons) != 1 or not isinstance(
        test.comparisons[0].operator, cst.Equal
    ):
        return False
    sides = [test.left, test.comparisons[0].comparator]
    return any(
        isinstance(s, cst.Name) and s.value == "__name__" for s in sides
    ) and any(
        isinstance(s, cst.SimpleString) and s.evaluated_value == "__main__"
        for s in sides
    )


def _declares_pipeline(module: SourceModule, statement: cst.CSTNode) -> bool:
    """A statement with an `add_step` call or a call of pipec's."""
    for node in _module_level(statement):
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value == "add_step":
                return True
            if dotted(func) and module.pipec_name(func) is not None:
                return True
    return False


def _module_level(statement: cst.CSTNode, skip: frozenset[int] = frozenset()):
    """The nodes of `statement` that run when the module is loaded: all of
    them but function and lambda bodies (their decorators, defaults and
    annotations are evaluated where they are defined), and but `skip`."""
    stack = [statement]
    while stack:
        current = stack.pop()
        if id(current) in skip or type(current) is cst.Annotation:
            continue
        yield current
        if isinstance(current, cst.FunctionDef):
            stack.extend(reversed([*current.decorators, current.params]))
        elif isinstance(current, cst.Lambda):
            stack.append(current.params)
        else:
            stack.extend(reversed(children(current)))


def run_time_calls(
    module: SourceModule, statement: cst.CSTNode
) -> list[tuple[cst.CSTNode, str]]:
    """(node, qualified name) of each call or attribute in the module-level
    code of top-level `statement` whose value depends on when, where or in
    which process it runs (computed once per statement)."""
    memo = module.cache.setdefault("run_time_calls", {})
    key = id(statement)
    if key not in memo:
        memo[key] = _run_time_calls(module, statement)
    return memo[key]


def _may_compute_at_run_time(module: SourceModule) -> bool:
    """Whether the module imports anything `_RUN_TIME` names or mentions a
    builtin of `_RUN_TIME_BUILTINS` (computed once): most pipeline modules
    need no walk at all."""
    from pipec.frontend.symbols import bindings

    found = module.cache.get("may_compute_at_run_time")
    if found is None:
        heads = {pattern.split(".")[0] for pattern in _RUN_TIME}
        found = any(
            b.is_import and (b.target or b.attr or "").split(".")[0] in heads
            for named in bindings(module).values()
            for b in named
        ) or any(f"{name}(" in module.text for name in _RUN_TIME_BUILTINS)
        module.cache["may_compute_at_run_time"] = found
    return found


def _run_time_calls(module, statement) -> list[tuple[cst.CSTNode, str]]:
    from pipec.frontend.declarations import decorator_kinds
    from pipec.frontend.symbols import bindings

    if not _may_compute_at_run_time(module):
        return []

    at = module.statement_index(statement)
    found: list[tuple[cst.CSTNode, str]] = []
    table = bindings(module)
    checked: set[int] = set()
    skip: frozenset[int] = frozenset()
    if isinstance(statement, cst.FunctionDef):  # pipec's decorators are not carried
        kinds = decorator_kinds(module, statement)
        skip = frozenset(
            id(d) for d, kind in zip(statement.decorators, kinds) if kind is not None
        )
    for node in _module_level(statement, skip):
        if isinstance(node, cst.Call):
            target = node.func
        elif isinstance(node, cst.Attribute):
            target = node
        else:
            continue
        if id(target) in checked or not dotted(target):
            continue
        checked.add(id(target))
        path = dotted(target)
        head = path.split(".")[0]
        if head in table:
            imported = any(b.is_import for b in table[head])
            names = module.qualified_names(target, at) if imported else ()
        elif path in _RUN_TIME_BUILTINS and isinstance(node, cst.Call):
            names = (path,)
        else:
            names = ()
        for name in names:
            if _is_run_time(name) and (
                isinstance(node, cst.Call) or name in _RUN_TIME_VALUES
            ):
                found.append((node, name))
                break
        # `a.b.c`: its inner `a.b` is no separate use
        inner = target.value if isinstance(target, cst.Attribute) else None
        while isinstance(inner, cst.Attribute):
            checked.add(id(inner))
            inner = inner.value
    return found


def _is_run_time(name: str) -> bool:
    if name in _SEEDS or name in _RUN_TIME_BUILTINS:
        return name in _RUN_TIME_BUILTINS
    for pattern in _RUN_TIME:
        if pattern.endswith("."):
            if name.startswith(pattern):
                return True
        elif name == pattern or name.startswith(pattern + "."):
            return True
    return False
