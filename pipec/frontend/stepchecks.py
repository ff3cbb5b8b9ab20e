"""Checks on one step's own declaration that need no pipeline around it.

- PC212: a name twice in `inputs` / `outputs`;
- PC213: retries set by both `@step(retries=...)` and `@retry(...)`;
- PC214: an `async def` or generator step, fallback or predicate (pipec
  uses the value they return; a coroutine or generator object is no value);
- PC215: a `return` of a literal tuple / list of the wrong length, or of a
  dict literal with other keys, for the declared outputs;
- PC216: `@on_failure(f)` / `@when(f)` on `f` itself;
- PC217: a fallback that cannot be called with the step's arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from pipec.diagnostics import Diagnostics
from pipec.frontend.scan import children

if TYPE_CHECKING:
    from pipec.frontend.declarations import Callee, StepDecl

_RETRY_OPTIONS = ("retries", "retry_delay", "retry_backoff")
_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


def check_step(decl: "StepDecl", diagnostics: Diagnostics) -> None:
    name = decl.option("name", decl.function)
    _check_names(decl, name, diagnostics)
    if decl.retry is not None:
        given = [o for o in _RETRY_OPTIONS if o in decl.options]
        if given:
            options = ", ".join(f"{o}=..." for o in given)
            diagnostics.error("PC213", decl.retry_span, step=name, options=options)
    _check_function(decl, decl.node, f"step '{name}'", diagnostics)
    for decorator, callee in (("on_failure", decl.fallback), ("when", decl.when)):
        if callee is None:
            continue
        node = _callee_node(callee)
        if node is decl.node:
            diagnostics.error("PC216", callee.span, decorator=decorator, step=name)
            continue
        role = "fallback" if decorator == "on_failure" else "`when` predicate"
        what = (
            f"{role} '{callee.name}'" if callee.name else f"the {role} of step '{name}'"
        )
        _check_function(
            decl, node, what, diagnostics, outputs=decorator == "on_failure"
        )
    if decl.fallback is not None and _callee_node(decl.fallback) is not decl.node:
        _check_fallback_params(decl, name, decl.fallback, diagnostics)


def _check_names(decl: "StepDecl", step: str, diagnostics: Diagnostics) -> None:
    for option in ("inputs", "outputs"):
        names = decl.option(option) or []
        if isinstance(names, dict):  # parameter -> output: keys are unique
            continue
        for index, value in enumerate(names):
            if value in names[:index]:
                span = decl.options[option].span
                diagnostics.error("PC212", span, option=option, step=step, name=value)
                break


def _callee_node(callee: "Callee") -> cst.CSTNode | None:
    if isinstance(callee.expression, cst.Lambda):
        return callee.expression
    if callee.definition is not None and callee.definition.binding is not None:
        return callee.definition.binding.node
    return None


def _check_function(
    decl: "StepDecl",
    node: cst.CSTNode | None,
    what: str,
    diagnostics: Diagnostics,
    outputs: bool = True,
) -> None:
    if not isinstance(node, (cst.FunctionDef, cst.Lambda)):
        return
    module = (
        decl.module
        if node is decl.node or isinstance(node, cst.Lambda)
        else (
            decl.fallback.definition.binding.module
            if decl.fallback and _callee_node(decl.fallback) is node
            else decl.when.definition.binding.module
        )
    )
    names = list(decl.option("outputs") or [])
    checks_returns = outputs and len(names) >= 2
    yields, returns = [], []
    if checks_returns or _may_yield(module, node):
        yields, returns = _body_shape(node)
    if isinstance(node, cst.FunctionDef) and node.asynchronous is not None:
        diagnostics.error(
            "PC214",
            module.span(node.name),
            what=what,
            kind="an `async def` coroutine function",
        )
    elif yields:
        diagnostics.error(
            "PC214",
            module.span(yields[0]),
            what=what,
            kind="a generator (it uses `yield`)",
        )
    if not checks_returns:
        return
    step = decl.option("name", decl.function)
    for ret in returns:
        got = _wrong_shape(ret.value, names)
        if got:
            diagnostics.error(
                "PC215",
                module.span(ret),
                step=step,
                count=len(names),
                outputs=names,
                got=got,
            )


def _may_yield(module, node: cst.FunctionDef | cst.Lambda) -> bool:
    """Whether the function's code has the word `yield` (its text is read
    from the module's layout: cheaper than walking its body)."""
    if isinstance(node, cst.Lambda) or module.statement_index(node) is None:
        return True
    return "yield" in module.layout.source(*module.layout.inclusive(node))


def _body_shape(node: cst.FunctionDef | cst.Lambda) -> tuple[list, list[cst.Return]]:
    """The `yield` / `yield from` expressions and the `return` statements of
    a function's own body (nested functions, lambdas and classes are
    theirs)."""
    yields: list[cst.CSTNode] = []
    returns: list[cst.Return] = []
    stack = [node.body]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Yield):
            yields.append(current)
        elif isinstance(current, cst.Return):
            returns.append(current)
        elif isinstance(current, _SCOPES):
            continue
        stack.extend(children(current))
    return yields, returns


def _wrong_shape(value: cst.BaseExpression | None, names: list[str]) -> str | None:
    """What a `return value` gives when that is surely not `names`."""
    if isinstance(value, (cst.Tuple, cst.List)):
        if any(isinstance(e, cst.StarredElement) for e in value.elements):
            return None
        count = len(value.elements)
        if count != len(names):
            kind = "tuple" if isinstance(value, cst.Tuple) else "list"
            return f"a {kind} of {count} value{'s' if count != 1 else ''}"
        return None
    if isinstance(value, cst.Dict):
        keys = []
        for element in value.elements:
            if not isinstance(element, cst.DictElement) or not isinstance(
                element.key, cst.SimpleString
            ):
                return None
            keys.append(element.key.evaluated_value)
        if sorted(keys) != sorted(names):
            return f"a dict with keys {sorted(keys)!r}"
    return None


def _check_fallback_params(
    decl: "StepDecl", step: str, fallback: "Callee", diagnostics: Diagnostics
) -> None:
    node = _callee_node(fallback)
    if not isinstance(node, (cst.FunctionDef, cst.Lambda)):
        return
    params = node.params
    accepts = {
        p.name.value
        for p in (*params.posonly_params, *params.params, *params.kwonly_params)
    }
    takes_any = isinstance(params.star_kwarg, cst.Param)
    given = [p.name for p in decl.params]
    for name in given:
        if name not in accepts and not takes_any:
            detail = f"it has no parameter '{name}'"
            diagnostics.error(
                "PC217", fallback.span, fallback=fallback.name, step=step, detail=detail
            )
            return
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.default is None and param.name.value not in given:
            detail = f"its parameter '{param.name.value}' is no parameter of the step"
            diagnostics.error(
                "PC217", fallback.span, fallback=fallback.name, step=step, detail=detail
            )
            return
