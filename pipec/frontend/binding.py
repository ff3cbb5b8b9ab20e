"""From declarations to IR: binding parameters, ordering steps, checking
the graph (CONTRACT §1).

Binding of a step parameter, in order: a declared input (`inputs` as a
dict maps a parameter to an output of any name; as a list, to the output of
its own name; when `inputs` is omitted, an output of another step of the
parameter's name) → `OutputRef`; a context key →
`ContextRef`; the parameter's default → `DefaultValue`; else PC203.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass

from pipec import ir
from pipec.diagnostics import Diagnostics, did_you_mean
from pipec.frontend.declarations import Param, StepDecl
from pipec.frontend.literals import LiteralEvaluator, NotLiteral
from pipec.frontend.pipelines import PipelineDecl, StepUse
from pipec.options import MAX_SECONDS, RETRY_OPTIONS, STEP_OPTIONS

# The order in which option spans are recorded (the order of STEP_OPTIONS,
# then the decorators).
_DECORATOR_OPTIONS = ("when", "on_failure", "retry")
_OPTION_ORDER = {name: i for i, name in enumerate([*STEP_OPTIONS, *_DECORATOR_OPTIONS])}


@dataclass
class Graph:
    """The steps of one pipeline and who produces which output."""

    pipeline: PipelineDecl
    uses: list[StepUse]
    producers: dict[str, StepUse]  # output name -> first producer, add order

    def outputs(self) -> list[str]:
        return list(self.producers)


def step_name(decl: StepDecl) -> str:
    return decl.option("name", decl.function)


def step_outputs(decl: StepDecl) -> list[str]:
    return list(decl.option("outputs", []))


def check_graph(pipeline: PipelineDecl, diagnostics: Diagnostics) -> Graph:
    """PC104 (duplicate step names) and PC102 (an output produced twice)."""
    uses: list[StepUse] = []
    names: set[str] = set()
    producers: dict[str, StepUse] = {}
    for use in pipeline.steps:
        name = step_name(use.decl)
        if name in names:
            diagnostics.error("PC104", use.span, pipeline=pipeline.name, step=name)
            continue
        names.add(name)
        uses.append(use)
        for output in step_outputs(use.decl):
            first = producers.get(output)
            if first is None:
                producers[output] = use
            elif first is not use:
                # An instance that keeps the decorator's outputs: at add_step.
                span = (
                    use.decl.options["outputs"].span
                    if "outputs" in use.overridden or not use.overridden
                    else use.span
                )
                diagnostics.error(
                    "PC102",
                    span,
                    output=output,
                    first=step_name(first.decl),
                    second=name,
                )
    return Graph(pipeline, uses, producers)


class Binder:
    """Binds the parameters of one step (and of its predicate)."""

    def __init__(
        self, graph: Graph, evaluator: LiteralEvaluator, diagnostics: Diagnostics
    ) -> None:
        self.graph = graph
        self.evaluator = evaluator
        self.diagnostics = diagnostics
        self.context = {param.name: param for param in graph.pipeline.context}

    def inputs(self, use: StepUse) -> dict[str, str]:
        """Parameter -> the output it takes (declared, or inferred: the
        parameters that name an output of another step)."""
        decl = use.decl
        declared = decl.option("inputs")
        if declared is None:
            producers = self.graph.producers
            return {
                p.name: p.name
                for p in decl.params
                if p.name in producers and producers[p.name].decl is not decl
            }
        if isinstance(declared, dict):
            return dict(declared)
        return {name: name for name in declared}

    def params(self, use: StepUse) -> tuple[ir.Binding, ...]:
        decl = use.decl
        inputs = self.inputs(use)
        constants = self._constants(decl, inputs)
        self._check_declared(decl, inputs, constants)
        bindings = []
        for param in decl.params:
            ref = self._ref(decl, param, inputs, constants)
            if ref is None:
                # An instance's unbound parameter is located where it is added.
                span = use.span if use.overridden else param.span
                if not use.invalid:
                    self.diagnostics.error(
                        "PC203", span, param=param.name, step=step_name(decl)
                    )
                continue
            bindings.append(
                ir.Binding(
                    param.name, ref, param.span, param.annotation, param.positional
                )
            )
        return tuple(bindings)

    def _constants(self, decl: StepDecl, inputs: dict[str, str]) -> dict:
        """`params`: parameter -> literal (PC223 for a name that is no
        parameter, PC224 for one the `inputs` dict wires too)."""
        option = decl.options.get("params")
        if option is None or not option.value:
            return {}
        params = [p.name for p in decl.params]
        wiring = decl.option("inputs")
        constants = {}
        for name, value in option.value.items():
            if name not in params:
                self.diagnostics.error(
                    "PC223",
                    option.span,
                    step=step_name(decl),
                    name=name,
                    function=decl.function,
                    hint=did_you_mean(name, params),
                )
            elif isinstance(wiring, dict) and name in wiring:
                self.diagnostics.error(
                    "PC224", option.span, step=step_name(decl), name=name
                )
            else:
                constants[name] = value
        return constants

    def _check_declared(
        self, decl: StepDecl, inputs: dict[str, str], constants: dict
    ) -> None:
        if decl.option("inputs") is None:
            return
        params = [p.name for p in decl.params]
        span = decl.options["inputs"].span
        for param, name in inputs.items():
            if param in constants:  # a list-form input given a literal instead
                continue
            if param not in params:
                self.diagnostics.error(
                    "PC207", span, name=param, function=decl.function
                )
            if name not in self.graph.producers:
                hint = did_you_mean(name, self.graph.outputs())
                self.diagnostics.error(
                    "PC103",
                    span,
                    step=step_name(decl),
                    name=name,
                    pipeline=self.graph.pipeline.name,
                    hint=hint,
                )

    def _ref(
        self, decl: StepDecl, param: Param, inputs: dict[str, str], constants: dict
    ) -> ir.Ref | None:
        """In order: an `inputs` dict entry, a `params` literal, a list-form
        (or inferred) input, a context key, the default."""
        name = param.name
        if name in inputs and name not in constants:
            output = inputs[name]
            producer = self.graph.producers.get(output)
            return ir.OutputRef(step_name(producer.decl) if producer else "", output)
        if name in constants:
            return ir.ConstantValue(constants[name])
        if name == "statuses" and decl.option("final"):
            return ir.StatusesRef()
        if name in self.context:
            if param.default is not None:  # the context wins: say so
                self.diagnostics.add("PC240", param.span, param=name, step=step_name(decl),
                                     default=decl.module.code(param.default))
            return ir.ContextRef(name)
        return self._default(decl, param)

    def _default(self, decl: StepDecl, param: Param) -> ir.DefaultValue | None:
        if param.default is None:
            return None
        try:
            return ir.DefaultValue(self.evaluator.evaluate(decl.module, param.default))
        except NotLiteral:
            return ir.DefaultValue(
                None, is_literal=False, source=decl.module.code(param.default)
            )

    def predicate(self, use: StepUse, source: str) -> ir.Predicate | None:
        callee = use.decl.when
        if callee is None:
            return None
        own = step_outputs(use.decl)
        bindings = []
        for param in callee.params:
            producer = self.graph.producers.get(param.name)
            if producer is not None and param.name not in own:
                ref = ir.OutputRef(step_name(producer.decl), param.name)
            elif param.name in self.context:
                ref = ir.ContextRef(param.name)
            else:
                known = [o for o in self.graph.outputs() if o not in own] + list(
                    self.context
                )
                hint = did_you_mean(param.name, known)
                self.diagnostics.error(
                    "PC204",
                    param.span,
                    step=step_name(use.decl),
                    name=param.name,
                    hint=hint,
                )
                continue
            bindings.append(
                ir.Binding(
                    param.name, ref, param.span, param.annotation, param.positional
                )
            )
        return ir.Predicate(tuple(bindings), source, callee.span)

    def check_foreach(self, use: StepUse, params: tuple[ir.Binding, ...]) -> str | None:
        decl = use.decl
        name = decl.option("foreach")
        if name is None:
            key = decl.options.get("foreach_key")
            if key is not None and key.value is not None:
                self.diagnostics.error(
                    "PC225", key.span, key=key.value, step=step_name(decl)
                )
            return None
        span = decl.options["foreach"].span
        if not isinstance(name, str):
            # Several parameters: a fan-out inside a fan-out.
            self.diagnostics.error(
                "PC601",
                span,
                step=step_name(decl),
                feature=f"nested fan-out (foreach over {', '.join(name)})",
                target="any",
            )
            return None
        if name not in [p.name for p in decl.params]:
            self.diagnostics.error(
                "PC205", span, name=name, step=step_name(decl), function=decl.function
            )
            return name
        binding = next((b for b in params if b.param == name), None)
        what = _non_list(binding.ref, self.context) if binding else None
        if what:
            self.diagnostics.error(
                "PC206", span, name=name, step=step_name(decl), what=what
            )
        return name


def _non_list(ref: ir.Ref, context: dict[str, ir.ContextParam]) -> str | None:
    """A description of what `ref` is bound to when that is not a list."""
    if isinstance(ref, ir.ContextRef) and context[ref.key].type != "list":
        return f"context key '{ref.key}' whose default is {context[ref.key].default!r}"
    if isinstance(ref, ir.ConstantValue) and not isinstance(ref.value, list):
        return f"{ref.value!r} (given in `params`)"
    if isinstance(ref, ir.DefaultValue) and not (
        ref.is_literal and isinstance(ref.value, list)
    ):
        return f"its default {ref.source or repr(ref.value)}"
    return None


def option_spans(decl: StepDecl) -> tuple[tuple[str, ir.Span], ...]:
    spans = [(name, option.span) for name, option in decl.options.items()]
    if decl.when is not None:
        spans.append(("when", decl.when.span))
    if decl.fallback is not None:
        spans.append(("on_failure", decl.fallback.span))
    if decl.retry_span is not None:
        spans.append(("retry", decl.retry_span))
    return tuple(sorted(spans, key=lambda item: _OPTION_ORDER[item[0]]))


def retry_policy(
    decl: StepDecl, diagnostics: Diagnostics | None = None
) -> ir.RetryPolicy:
    """The step's retry policy.  The longest wait (before the last retry)
    must be a duration every target can write (PC202 at the backoff
    option, and the policy without backoff, when it is not)."""
    if decl.retry is not None:
        values = {
            k: (decl.retry[k].value if k in decl.retry else v)
            for k, v in RETRY_OPTIONS.items()
        }
        policy = ir.RetryPolicy(
            values["max_attempts"], float(values["delay"]), float(values["backoff"])
        )
        option, where, name = decl.retry.get("backoff"), "retry", "backoff"
    else:
        policy = ir.RetryPolicy(
            decl.option("retries", 0) + 1,
            float(decl.option("retry_delay", 1.0)),
            float(decl.option("retry_backoff", 1.0)),
        )
        option, where, name = decl.options.get("retry_backoff"), "step", "retry_backoff"
    if policy.backoff != 1.0 and policy.retries > 1:
        try:
            longest = policy.delay_before(policy.retries)
        except OverflowError:
            longest = math.inf
        if not longest <= MAX_SECONDS:
            if diagnostics is not None:
                diagnostics.error(
                    "PC202",
                    option.span if option is not None else decl.span,
                    option=name,
                    decorator=where,
                    expected=f"small enough that the wait before the last retry "
                    f"(delay * backoff ** {policy.retries - 1}) is at most 1e9 seconds",
                    got=f"{policy.backoff:g}",
                )
            policy = dataclasses.replace(policy, backoff=1.0)
    return policy


def ordering_edges(
    graph: Graph, edges: dict[str, list[str]], diagnostics: Diagnostics
) -> dict[str, tuple[str, ...]]:
    """Adds to `edges` (step -> the steps it consumes outputs of) the
    ordering-only dependencies: each step's `after=` names (PC230 for a name
    that is no step, PC233 for the final step) and, for the final step,
    every other step (PC231 for a second final step, PC232 for `after` or
    `trigger` on it).  Returns each step's `after` names, checked."""
    names = [step_name(use.decl) for use in graph.uses]
    finals = [use for use in graph.uses if use.decl.option("final")]
    for use in finals[1:]:
        diagnostics.error(
            "PC231",
            use.decl.options["final"].span,
            pipeline=graph.pipeline.name,
            first=step_name(finals[0].decl),
            second=step_name(use.decl),
        )
    final = step_name(finals[0].decl) if finals else None
    after: dict[str, tuple[str, ...]] = {}
    for use in graph.uses:
        decl, name = use.decl, step_name(use.decl)
        if decl.option("final"):
            for option in ("after", "trigger"):
                if option in decl.options:
                    diagnostics.error(
                        "PC232", decl.options[option].span, step=name, option=option
                    )
        checked = []
        for other in decl.option("after", ()):
            span = decl.options["after"].span
            if other not in names:
                hint = did_you_mean(other, [n for n in names if n != name])
                diagnostics.error(
                    "PC230",
                    span,
                    step=name,
                    name=other,
                    pipeline=graph.pipeline.name,
                    hint=hint,
                )
            elif other == final and name != final:
                diagnostics.error("PC233", span, step=name, name=other)
            elif other not in checked:
                checked.append(other)
        after[name] = tuple(checked)
        edges[name] = [*edges[name], *(o for o in checked if o not in edges[name])]
    if final is not None:
        edges[final] = [n for n in names if n != final]
    return after


def execution_order(
    graph: Graph, edges: dict[str, list[str]], diagnostics: Diagnostics
) -> list[StepUse]:
    """Kahn's algorithm, always taking the earliest-added ready step.

    `graphlib.TopologicalSorter` releases ready nodes in batches, so its
    order depends on when nodes became ready, not on `add_step` order; the
    contract wants dependency order with ties in `add_step` order, which is
    exactly "the earliest-added step whose producers have all run".
    A heap of the ready steps by `add_step` position makes that linear
    (times log).  On a cycle, PC101 names its steps and the remaining steps
    keep `add_step` order.
    """
    names = [step_name(use.decl) for use in graph.uses]
    position = {name: i for i, name in enumerate(names)}
    waiting = {n: len(set(edges[n])) for n in names}  # producers not yet run
    consumers: dict[str, list[str]] = {n: [] for n in names}
    for name in names:
        for producer in set(edges[name]):
            if producer in consumers:
                consumers[producer].append(name)
    # A producer that is no step of the graph never runs: never ready.
    unknown = {n for n in names if any(u not in position for u in edges[n])}
    ready = [position[n] for n in names if waiting[n] == 0 and n not in unknown]
    heapq.heapify(ready)
    done: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        done.append(name)
        for consumer in consumers[name]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0 and consumer not in unknown:
                heapq.heappush(ready, position[consumer])
    if len(done) < len(names):
        finished = set(done)
        remaining = [n for n in names if n not in finished]
        _report_cycle(graph, edges, remaining, diagnostics)
        done.extend(remaining)
    by_name = dict(zip(names, graph.uses))
    return [by_name[n] for n in done]


def _report_cycle(
    graph: Graph,
    edges: dict[str, list[str]],
    remaining: list[str],
    diagnostics: Diagnostics,
) -> None:
    # Walk upstream from the first remaining step until a step repeats.
    path = [remaining[0]]
    while True:
        following = next(u for u in edges[path[-1]] if u in remaining)
        if following in path:
            cycle = path[path.index(following) :]
            break
        path.append(following)
    cycle.reverse()  # producers first
    order = [step_name(u.decl) for u in graph.uses]
    start = cycle.index(min(cycle, key=order.index))
    cycle = cycle[start:] + cycle[:start]
    use = graph.uses[order.index(cycle[0])]
    diagnostics.error("PC101", use.span, cycle=" -> ".join([*cycle, cycle[0]]))
