"""Reading `@step` functions and the pipec decorators below them.

`StepReader.read(module, funcdef)` turns one decorated function into a
`StepDecl`: its options (statically evaluated, type-checked, with the span
where each was written), its `when` predicate, its fallback and its `@retry`.
Every problem is a diagnostic; a `StepDecl` is returned even when some
options were invalid, so later checks still run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import libcst as cst

from pipec import ir
from pipec.diagnostics import Diagnostics, did_you_mean
from pipec.frontend.literals import LiteralEvaluator, NotLiteral
from pipec.options import RETRY_SPECS, STEP_SPECS, OptionSpec
from pipec.frontend.scan import is_single_arg_call
from pipec.frontend.sources import SourceModule, dotted, pipec_attr
from pipec.frontend.stepchecks import check_step
from pipec.frontend.symbols import Resolved, Resolver

PIPEC_DECORATORS = ("step", "when", "retry", "on_failure")


@dataclass(frozen=True)
class Option:
    value: Any
    span: ir.Span


@dataclass(frozen=True)
class Param:
    """A parameter of a step function or predicate."""

    name: str
    span: ir.Span
    annotation: str = ""
    default: cst.BaseExpression | None = None
    positional: bool = False  # positional-only (`def f(x, /)`)


@dataclass
class Callee:
    """A function given to @when / @on_failure: a lambda, or a name that
    resolves to a module-level function (`definition`)."""

    expression: cst.BaseExpression
    span: ir.Span
    name: str | None = None  # the name as written (None for a lambda)
    definition: Resolved | None = None
    params: list[Param] = field(default_factory=list)


@dataclass
class StepDecl:
    module: SourceModule
    node: cst.FunctionDef
    options: dict[str, Option]
    params: list[Param]
    decorators: list[cst.Decorator]  # pipec's, to strip from the code
    when: Callee | None = None
    fallback: Callee | None = None
    retry: dict[str, Option] | None = None
    retry_span: ir.Span | None = None

    @property
    def function(self) -> str:
        return self.node.name.value

    @cached_property
    def span(self) -> ir.Span:
        return self.module.span(self.node.name)

    def option(self, name: str, default: Any = None) -> Any:
        option = self.options.get(name)
        return default if option is None or option.value is None else option.value


_RETRY_OPTIONS = ("retries", "retry_delay", "retry_backoff")


def instance(decl: StepDecl, overrides: dict[str, Option]) -> StepDecl:
    """`add_step(fn, **overrides)`: the step with the given options in place
    of the decorator's.  `params` adds to the decorator's (an instance's
    entry wins; a decorator's entry for a parameter the instance wires with
    `inputs` is dropped); retry options set here replace an `@retry`."""
    options = {**decl.options, **overrides}
    if "params" in decl.options and ("params" in overrides or "inputs" in overrides):
        merged = dict(decl.options["params"].value or {})
        wired = overrides.get("inputs")
        for name in list(wired.value or ()) if wired is not None else ():
            merged.pop(name, None)
        own = overrides.get("params")
        merged.update(own.value or {} if own is not None else {})
        span = (own or decl.options["params"]).span
        options["params"] = Option(merged, span)
    replaced = any(option in overrides for option in _RETRY_OPTIONS)
    return dataclasses.replace(
        decl,
        options=options,
        retry=None if replaced else decl.retry,
        retry_span=None if replaced else decl.retry_span,
    )


def decorator_kinds(
    module: SourceModule, function: cst.FunctionDef
) -> list[str | None]:
    """The pipec decorator each decorator of top-level `function` is (None
    for any other), read as of the function's statement; computed once per
    function (the step reader and the code extractor both ask)."""
    memo = module.cache.setdefault("decorator_kinds", {})
    key = id(function)
    if key not in memo:
        at = module.statement_index(function)
        kinds = [module.pipec_name(_callee_of(d), at) for d in function.decorators]
        memo[key] = [kind if kind in PIPEC_DECORATORS else None for kind in kinds]
    return memo[key]


def decorator_kind_in(
    module: SourceModule, decorator: cst.Decorator, scopes: tuple
) -> str | None:
    """The pipec decorator `decorator` is (as `decorator_kinds`), for a
    function nested in `scopes` (scan.Site)."""
    kind = pipec_attr(qualified_in(module, _callee_of(decorator), scopes))
    return kind if kind in PIPEC_DECORATORS else None


def qualified_in(
    module: SourceModule, node: cst.CSTNode, scopes: tuple, at: int | None = None
) -> tuple:
    """Qualified names of Name / Attribute chain `node` read by code in
    `scopes` (innermost last): a local binding if there is one, else the
    module's last binding (the code runs after the module has loaded).
    Module-level code (no scopes) sees the bindings before its top-level
    statement, number `at` (default: found from `node`'s position)."""
    path = dotted(node)
    if not path:
        return ()
    head, _, rest = path.partition(".")
    local = module.scopes.lookup(head, scopes) if scopes else None
    if local is not None:
        names = (local,) if local else ()
    elif scopes:
        names = module.module_qualified(head)
    else:
        if at is None:
            at = module.layout.statement_of(node)
        names = module.module_qualified(head, at)
    return tuple(sorted(f"{q}.{rest}" if rest else q for q in names))


def _callee_of(decorator: cst.Decorator) -> cst.BaseExpression:
    expression = decorator.decorator
    return expression.func if isinstance(expression, cst.Call) else expression


def function_params(module: SourceModule, parameters: cst.Parameters) -> list[Param]:
    params = []
    positional = len(parameters.posonly_params)
    for index, param in enumerate(
        [
            *parameters.posonly_params,
            *parameters.params,
            *parameters.kwonly_params,
        ]
    ):
        annotation = (
            module.code(param.annotation.annotation) if param.annotation else ""
        )
        params.append(
            Param(
                param.name.value,
                module.span(param.name),
                annotation,
                param.default,
                index < positional,
            )
        )
    return params


class StepReader:
    def __init__(
        self, resolver: Resolver, evaluator: LiteralEvaluator, diagnostics: Diagnostics
    ) -> None:
        self.resolver = resolver
        self.evaluator = evaluator
        self.diagnostics = diagnostics
        self._cache: dict[int, StepDecl | None] = {}

    def read(self, module: SourceModule, node: cst.FunctionDef) -> StepDecl | None:
        """The step declared by `node`, or None when it has no @step."""
        key = id(node)
        if key not in self._cache:
            self._cache[key] = self._read(module, node)
        return self._cache[key]

    def _read(self, module: SourceModule, node: cst.FunctionDef) -> StepDecl | None:
        kinds = decorator_kinds(module, node)
        if "step" not in kinds:
            return None
        step_at = kinds.index("step")
        decorators = [d for d, kind in zip(node.decorators, kinds) if kind]
        decl = StepDecl(
            module, node, {}, function_params(module, node.params), decorators
        )
        self._check_variadic(decl)
        for index, (decorator, kind) in enumerate(zip(node.decorators, kinds)):
            if kind is None:
                continue
            if index < step_at:
                self.diagnostics.error("PC209", module.span(decorator), decorator=kind)
            elif kind == "step" and index != step_at:
                self.diagnostics.error(
                    "PC201",
                    module.span(decorator),
                    option="step",
                    decorator="step",
                    hint="; @step is applied twice",
                )
            elif kind == "step":
                decl.options = self._keywords(module, decorator, "step", STEP_SPECS)
            elif kind == "retry":
                decl.retry = self._keywords(
                    module, decorator, "retry", RETRY_SPECS, positional=True
                )
                decl.retry_span = module.span(decorator)
            else:
                callee = self._callee(module, decorator, kind)
                setattr(decl, "when" if kind == "when" else "fallback", callee)
        check_step(decl, self.diagnostics)
        return decl

    def _check_variadic(self, decl: StepDecl) -> None:
        params = decl.node.params
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                self.diagnostics.error(
                    "PC401",
                    decl.module.span(star),
                    what=f"parameter '{star.name.value}' of step '{decl.function}'",
                    detail="variadic parameters cannot be bound to named inputs or context keys",
                )

    def _keywords(
        self, module, decorator, name, specs: dict[str, OptionSpec], positional=False
    ) -> dict[str, Option]:
        """The literal keyword options of `@name(...)`, type-checked."""
        expression = decorator.decorator
        if not isinstance(expression, cst.Call):
            return {}
        options: dict[str, Option] = {}
        order = list(specs)
        seen: set[str] = set()
        for index, arg in enumerate(expression.args):
            if arg.star:
                self._not_static(
                    module, arg, name, "options", "unpacking is evaluated at run time"
                )
                continue
            if arg.keyword is None and not (positional and index < len(order)):
                self._not_static(
                    module,
                    arg,
                    name,
                    "a positional argument",
                    f"give @{name}'s options by keyword",
                )
                continue
            option = arg.keyword.value if arg.keyword else order[index]
            if option in seen:
                self.diagnostics.error(
                    "PC308", module.span(arg), call=f"@{name}(...)", option=option
                )
                continue
            seen.add(option)
            if option not in specs:
                hint = did_you_mean(option, specs)
                self.diagnostics.error(
                    "PC201", module.span(arg), option=option, decorator=name, hint=hint
                )
                continue
            value = self._literal(module, arg, name, option)
            if value is _INVALID:
                continue
            if not specs[option].check(value):
                self.diagnostics.error(
                    "PC202",
                    module.span(arg.value),
                    option=option,
                    decorator=name,
                    expected=specs[option].expected,
                    got=repr(value),
                )
                continue
            options[option] = Option(value, module.span(arg))
        return options

    def _literal(
        self, module: SourceModule, arg: cst.Arg, decorator: str, option: str
    ) -> Any:
        try:
            return self.evaluator.evaluate(module, arg.value)
        except NotLiteral as error:
            self._not_static(
                module, arg.value, decorator, f"option '{option}'", error.detail
            )
            return _INVALID

    def _not_static(self, module, node, decorator: str, what: str, detail: str) -> None:
        self.diagnostics.error(
            "PC210", module.span(node), what=what, decorator=decorator, detail=detail
        )

    def _callee(
        self, module: SourceModule, decorator: cst.Decorator, kind: str
    ) -> Callee | None:
        expression = decorator.decorator
        if not is_single_arg_call(expression):
            self._not_static(
                module,
                decorator,
                kind,
                "the argument",
                f"@{kind} takes exactly one function",
            )
            return None
        target = expression.args[0].value
        span = module.span(decorator)
        if isinstance(target, cst.Lambda):
            return Callee(target, span, params=function_params(module, target.params))
        resolved = self.resolver.resolve_expression(module, target)
        binding = resolved.binding
        if (
            binding is None
            or binding.is_import
            or not isinstance(binding.node, cst.FunctionDef)
        ):
            detail = "it must be a lambda or the name of a module-level function of the source tree"
            self._not_static(module, target, kind, "the function", detail)
            return None
        name = target.value if isinstance(target, cst.Name) else None
        if name is None:
            self._not_static(
                module,
                target,
                kind,
                "the function",
                "name it directly, not through a module",
            )
            return None
        params = function_params(binding.module, binding.node.params)
        return Callee(target, span, name, resolved, params)


_INVALID = object()
