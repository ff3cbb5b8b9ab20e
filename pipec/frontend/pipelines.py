"""Finding the pipelines of a module: `Pipeline(...)`, `context(...)` and
`add_step` chains, read from the module's top-level statements.

Recognised forms (names resolved to pipec, never spelled):

    p = Pipeline("name", context=ctx, ...)      # ctx = context(...) at module level
    p.add_step(a).add_step(b)                   # chains and separate statements
    q = Pipeline("other").add_step(a)           # a chain on the constructor
    Pipeline("anonymous").add_step(a)           # an expression statement
    for s in (a, b): p.add_step(s)              # a loop over a literal tuple/list
                                                # of step names, unrolled

`Pipeline(...)` or `add_step` anywhere else (in a function, another loop, a
condition) is built at run time: PC401 at that call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from pipec import ir
from pipec.diagnostics import Diagnostics, did_you_mean
from pipec.frontend.declarations import Option, StepDecl, StepReader, qualified_in
from pipec.frontend.literals import LiteralEvaluator, NotLiteral, Uncarriable
from pipec.options import PIPELINE_SPECS, is_identifier
from pipec.frontend.scan import is_add_step_call, is_single_arg_call
from pipec.frontend.sources import SourceModule, pipec_attr
from pipec.frontend.symbols import Resolver
from pipec.options import SCHEDULE_ALIASES

PIPELINE_POSITIONAL = (
    "name",
    "context",
    "schedule",
    "description",
    "owner",
    "tags",
    "enable_cache",
    "version",
    "timezone",
    "max_parallel",
)


@dataclass(frozen=True)
class StepUse:
    """One `add_step(x)`: the step, and `x` as written in `module`."""

    decl: StepDecl
    module: SourceModule
    target: cst.BaseExpression

    @property
    def span(self) -> ir.Span:
        """Where `x` was written: for diagnostics only, so located only
        when one asks (the add_step lines need not be generated)."""
        return self.module.span(self.target)


@dataclass
class PipelineDecl:
    module: SourceModule
    call: cst.Call
    span: ir.Span
    name: str | None = None
    options: dict[str, Option] = field(default_factory=dict)
    context: list[ir.ContextParam] = field(default_factory=list)
    steps: list[StepUse] = field(default_factory=list)
    # An add_step that could not be read (reported): "no steps" is then noise.
    unresolved_steps: bool = False

    def option(self, name: str, default: Any = None) -> Any:
        option = self.options.get(name)
        return default if option is None or option.value is None else option.value


@dataclass
class ReadContext:
    """What the reader needs, passed as one object."""

    module: SourceModule
    resolver: Resolver
    evaluator: LiteralEvaluator
    steps: StepReader
    diagnostics: Diagnostics


class PipelineReader:
    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.pipelines: list[PipelineDecl] = []
        self._variables: dict[str, PipelineDecl] = {}
        self._handled: set[int] = set()  # ids of the calls read here; membership only

    def read(self) -> list[PipelineDecl]:
        for statement in self.ctx.module.tree.body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    self._statement(small)
            elif isinstance(statement, cst.For):
                self._loop(statement)
        for call, what, variable in self._leftovers():
            if variable is not None:
                self._variables[variable].unresolved_steps = True
            self.ctx.diagnostics.error(
                "PC401",
                self.ctx.module.span(call),
                what=what,
                detail=(
                    "pipelines and their steps must be declared by module-level"
                    " statements (a module-level `for` over a literal tuple or"
                    " list of step names is unrolled)"
                ),
            )
        return self.pipelines

    def _leftovers(self) -> list[tuple[cst.Call, str, str | None]]:
        """`Pipeline(...)` and `<pipeline>.add_step(...)` calls not read by
        `read` (in functions, loops, conditions...)."""
        module = self.ctx.module
        found: list[tuple[cst.Call, str, str | None]] = []
        for site in module.scan.calls:
            node = site.node
            if id(node) in self._handled:
                continue
            names = qualified_in(module, node.func, site.scopes, site.index)
            if pipec_attr(names) == "Pipeline":
                found.append((node, "the pipeline", None))
            elif is_add_step_call(node):
                root = node.func.value
                while isinstance(root, (cst.Call, cst.Attribute)):
                    root = root.func if isinstance(root, cst.Call) else root.value
                if isinstance(root, cst.Name) and root.value in self._variables:
                    found.append((node, "the step added here", root.value))
        return found

    def _statement(self, small: cst.BaseSmallStatement) -> None:
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Name)
        ):
            pipeline = self._chain(small.value)
            if pipeline is not None:
                self._variables[small.targets[0].target.value] = pipeline
        elif (
            isinstance(small, cst.AnnAssign)
            and isinstance(small.target, cst.Name)
            and small.value is not None
        ):
            pipeline = self._chain(small.value)
            if pipeline is not None:
                self._variables[small.target.value] = pipeline
        elif isinstance(small, cst.Expr):
            self._chain(small.value)

    def _loop(self, loop: cst.For) -> None:
        """`for s in (a, b): p.add_step(s)`: unrolled, one `add_step` per
        element in order, when the loop is plainly static (a literal tuple
        or list of names, a body of `add_step` chains on known pipelines);
        anything else is left to `read`'s PC401."""
        if (
            loop.asynchronous is not None
            or loop.orelse is not None
            or not isinstance(loop.target, cst.Name)
            or not isinstance(loop.iter, (cst.Tuple, cst.List))
            or not isinstance(loop.body, cst.IndentedBlock)
        ):
            return
        variable = loop.target.value
        elements = [element.value for element in loop.iter.elements]
        if not all(
            isinstance(element, (cst.Name, cst.Attribute)) for element in elements
        ):
            return
        chains: list[tuple[PipelineDecl, list[cst.Call]]] = []
        for statement in loop.body.body:
            if not isinstance(statement, cst.SimpleStatementLine):
                return
            for small in statement.body:
                if not isinstance(small, cst.Expr):
                    return
                adds: list[cst.Call] = []
                node = small.value
                while is_add_step_call(node):
                    adds.append(node)
                    node = node.func.value
                if not adds or not (
                    isinstance(node, cst.Name) and node.value in self._variables
                ):
                    return
                chains.append((self._variables[node.value], list(reversed(adds))))
        for element in elements:
            for pipeline, adds in chains:
                for call in adds:
                    self._handled.add(id(call))
                    self._add_step(pipeline, call, {variable: element})

    def _chain(self, node: cst.BaseExpression) -> PipelineDecl | None:
        """The pipeline a `<root>.add_step(a).add_step(b)...` chain adds to."""
        adds: list[cst.Call] = []
        while is_add_step_call(node):
            adds.append(node)
            node = node.func.value
        if isinstance(node, cst.Name) and node.value in self._variables:
            pipeline = self._variables[node.value]
        elif (
            isinstance(node, cst.Call)
            and self.ctx.module.pipec_name(node.func) == "Pipeline"
        ):
            pipeline = self._pipeline(node)
        else:
            return None
        for call in reversed(adds):
            self._handled.add(id(call))
            self._add_step(pipeline, call)
        return pipeline

    def _pipeline(self, call: cst.Call) -> PipelineDecl:
        self._handled.add(id(call))
        module = self.ctx.module
        pipeline = PipelineDecl(module, call, module.span(call))
        seen: set[str] = set()
        for index, arg in enumerate(call.args):
            if arg.star:
                self._error_401(
                    arg, "Pipeline options", "unpacking is evaluated at run time"
                )
                continue
            option = arg.keyword.value if arg.keyword else _positional(index)
            if option in seen:
                self.ctx.diagnostics.error(
                    "PC308", module.span(arg), call="Pipeline(...)", option=option
                )
                continue
            if option is not None:
                seen.add(option)
            if option is None:
                self._error_401(
                    arg, "a Pipeline argument", "too many positional arguments"
                )
            elif option == "context":
                pipeline.context = ContextReader(self.ctx).read(arg.value)
            elif option not in PIPELINE_SPECS:
                hint = did_you_mean(option, [*PIPELINE_SPECS, "context"])
                self.ctx.diagnostics.error(
                    "PC303", module.span(arg), option=option, hint=hint
                )
            else:
                self._option(pipeline, option, arg)
        if "name" in pipeline.options:
            pipeline.name = pipeline.options["name"].value
        elif not any(a.keyword is None and not a.star for a in call.args):
            self._error_401(call, "the pipeline", "Pipeline(...) needs a name")
        self.pipelines.append(pipeline)
        return pipeline

    def _option(self, pipeline: PipelineDecl, option: str, arg: cst.Arg) -> None:
        module = self.ctx.module
        try:
            value = self.ctx.evaluator.evaluate(module, arg.value)
        except NotLiteral as error:
            what = (
                "the pipeline name"
                if option == "name"
                else f"Pipeline option '{option}'"
            )
            self._error_401(arg.value, what, error.detail)
            return
        spec = PIPELINE_SPECS[option]
        if not spec.check(value):
            self.ctx.diagnostics.error(
                "PC304",
                module.span(arg.value),
                option=option,
                expected=spec.expected,
                got=repr(value),
            )
            return
        if option == "schedule" and value is not None:
            problem = schedule_problem(value)
            if problem:
                self.ctx.diagnostics.error(
                    "PC302", module.span(arg.value), schedule=value, detail=problem
                )
                return
        if option == "timezone" and value is not None:
            problem = timezone_problem(value)
            if problem:
                self.ctx.diagnostics.error(
                    "PC310", module.span(arg.value), timezone=value, detail=problem
                )
                return
        if option == "version" and value is not None:
            value = str(value)
        pipeline.options[option] = Option(value, module.span(arg))

    def _add_step(
        self,
        pipeline: PipelineDecl,
        call: cst.Call,
        loop: dict[str, cst.BaseExpression] | None = None,
    ) -> None:
        """`loop` maps an unrolled loop's variable to this round's element."""
        if not is_single_arg_call(call):
            self._error_401(
                call, "the step added here", "add_step takes one step function"
            )
            pipeline.unresolved_steps = True
            return
        target = call.args[0].value
        if loop and isinstance(target, cst.Name) and target.value in loop:
            target = loop[target.value]
        decl = self._step_of(target)
        if decl is None:
            pipeline.unresolved_steps = True
        else:
            pipeline.steps.append(StepUse(decl, self.ctx.module, target))

    def _step_of(self, target: cst.BaseExpression) -> StepDecl | None:
        """The step `add_step(target)` adds, or None (reported)."""
        module = self.ctx.module
        binding = self.ctx.resolver.resolve_expression(module, target).binding
        if binding is not None and binding.is_import and self._unfollowable(binding):
            self.ctx.diagnostics.error(
                "PC003", module.span(target), module=binding.written_module
            )
            return None
        if (
            binding is not None
            and binding.is_import
            and not self.ctx.resolver.tree.contains(binding.target)
        ):
            # A step must be defined in the source tree: an import from
            # anywhere else is a module pipec did not find there.
            self.ctx.diagnostics.error(
                "PC004", module.span(target), step=module.code(target),
                module=binding.target, looked=looked_for(binding.target),
            )
            return None
        if (
            binding is None
            or binding.is_import
            or not isinstance(binding.node, cst.FunctionDef)
        ):
            detail = "add_step needs a function decorated with @step, named directly"
            self._error_401(target, f"step '{module.code(target)}'", detail)
            return None
        decl = self.ctx.steps.read(binding.module, binding.node)
        if decl is None:
            self.ctx.diagnostics.error(
                "PC211", module.span(target), step=module.code(target)
            )
        return decl

    def _unfollowable(self, binding) -> bool:
        tree = self.ctx.resolver.tree
        relative = isinstance(binding.node, cst.ImportFrom) and bool(
            binding.node.relative
        )
        return (relative and not tree.contains(binding.target)) or tree.missing(
            binding.target
        )

    def _error_401(self, node: cst.CSTNode, what: str, detail: str) -> None:
        self.ctx.diagnostics.error(
            "PC401", self.ctx.module.span(node), what=what, detail=detail
        )


def looked_for(module: str) -> str:
    """Where a module of the source tree would be, for messages."""
    path = module.replace(".", "/")
    return f"'{path}.py' and '{path}/__init__.py' under the source root"


def _positional(index: int) -> str | None:
    return PIPELINE_POSITIONAL[index] if index < len(PIPELINE_POSITIONAL) else None


class ContextReader:
    """`context(key=literal, ...)`: inline, or a module-level name bound to it."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx

    def read(self, node: cst.BaseExpression) -> list[ir.ContextParam]:
        module = self.ctx.module
        if isinstance(node, cst.Name) and node.value == "None":
            return []
        if isinstance(node, cst.Name):
            binding = self.ctx.resolver.resolve(module, node.value).binding
            if (
                binding is not None
                and isinstance(binding.node, cst.Assign)
                and len(binding.node.targets) == 1
            ):
                module, node = binding.module, binding.node.value
        if isinstance(node, cst.Call) and module.pipec_name(node.func) == "context":
            return self._call(module, node)
        if isinstance(node, cst.Dict):
            return self._dict(module, node)
        self.ctx.diagnostics.error(
            "PC401",
            self.ctx.module.span(node),
            what="the pipeline context",
            detail="pass context(...) or a module-level name bound to context(...)",
        )
        return []

    def _call(self, module: SourceModule, call: cst.Call) -> list[ir.ContextParam]:
        params = []
        seen: set[str] = set()
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value in seen:
                self.ctx.diagnostics.error(
                    "PC308",
                    module.span(arg),
                    call="context(...)",
                    option=arg.keyword.value,
                )
                continue
            if arg.keyword is not None:
                seen.add(arg.keyword.value)
            if arg.keyword is None:
                self.ctx.diagnostics.error(
                    "PC401",
                    module.span(arg),
                    what="a context value",
                    detail="context(...) takes keyword arguments only",
                )
                continue
            param = self._param(module, arg.keyword.value, arg.value, module.span(arg))
            if param is not None:
                params.append(param)
        return params

    def _dict(self, module: SourceModule, node: cst.Dict) -> list[ir.ContextParam]:
        params = []
        for element in node.elements:
            key = element.key if isinstance(element, cst.DictElement) else None
            if not isinstance(key, cst.SimpleString) or not isinstance(
                key.evaluated_value, str
            ):
                self.ctx.diagnostics.error(
                    "PC401",
                    module.span(element),
                    what="a context key",
                    detail="keys must be string literals",
                )
                continue
            if not is_identifier(key.evaluated_value):
                self.ctx.diagnostics.error(
                    "PC307", module.span(key), key=key.evaluated_value
                )
                continue
            param = self._param(
                module, key.evaluated_value, element.value, module.span(element)
            )
            if param is not None:
                params.append(param)
        return params

    def _param(
        self, module, key: str, value_node, span: ir.Span
    ) -> ir.ContextParam | None:
        try:
            value = self.ctx.evaluator.evaluate(module, value_node)
        except Uncarriable as error:
            self.ctx.diagnostics.error(
                "PC309", error.module.span(error.node), key=key, detail=error.detail
            )
            return None
        except NotLiteral:
            self.ctx.diagnostics.error("PC301", module.span(value_node), key=key)
            # The key still exists (with no usable value): the one error above
            # is the root cause, so parameters named after it bind to it
            # rather than each reporting "bound to nothing".  The module has
            # an error, so no output is built from this placeholder.
            return ir.ContextParam(key, None, "null", span)
        return ir.ContextParam(key, value, ir.literal_type(value), span)


def timezone_problem(name: str) -> str | None:
    """Why `name` is no IANA time zone name; None when it is one.  The
    time zone database comes from `tzdata` (a dependency), so the answer is
    the same on every machine."""
    import zoneinfo

    known = zoneinfo.available_timezones()
    if name in known:
        return None
    close = did_you_mean(name, known)
    return "not an IANA time zone name such as 'Europe/Paris' or 'UTC'" + close


def schedule_problem(schedule: str) -> str | None:
    """Why `schedule` is no valid five-field cron or alias; None when valid."""
    if schedule in SCHEDULE_ALIASES:
        return None
    expected = (
        "expected five cron fields (minute hour day month weekday) or one of "
        + ", ".join(SCHEDULE_ALIASES)
    )
    if schedule.startswith("@") or len(schedule.split()) != 5:
        return expected
    from croniter import croniter  # only for modules with a cron schedule

    if not croniter.is_valid(schedule):
        return "a field is out of range or malformed"
    return None
