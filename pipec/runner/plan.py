"""From a live `Pipeline` to a checked execution plan.

`build_plan()` binds every parameter of every step (and of its `when`
predicate) to where its value comes from, orders the steps, and reports every
problem at once in one `PipelineError`.  Binding follows CONTRACT §1: a
declared input → the upstream output of that name; else a context key → its
value; else the parameter's default; else an error.  When `inputs` is
omitted, the parameters named like outputs of *other* steps are the inputs.

Fan-out: `foreach="item"` names a parameter, bound by the rules above like
any other; its value must be a list, and each run gets one element of it.
"""

from __future__ import annotations

import heapq
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

from pipec.diagnostics import did_you_mean
from pipec.language import Pipeline, Step


class PipelineError(ValueError):
    """The pipeline cannot run as defined; `problems` lists every reason."""

    def __init__(self, pipeline: str, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"pipeline {pipeline!r} cannot run:\n{lines}")


@dataclass(frozen=True)
class FromOutput:
    step: str
    output: str


@dataclass(frozen=True)
class FromContext:
    key: str


@dataclass(frozen=True)
class FromDefault:
    value: Any


Source = Union[FromOutput, FromContext, FromDefault]


@dataclass
class StepPlan:
    """One step, ready to run: where each argument comes from."""

    step: Step
    index: int  # position in add_step order
    params: dict[str, Source]  # in signature order
    positional: tuple[str, ...]  # positional-only parameters (passed by position)
    predicate: dict[str, Source] | None
    upstream: tuple[str, ...]  # producer steps, add_step order
    cache: bool

    @property
    def name(self) -> str:
        return self.step.name


@dataclass
class Plan:
    pipeline: Pipeline
    steps: list[StepPlan]  # execution order
    context: dict[str, Any]
    producers: dict[str, str] = field(default_factory=dict)  # output -> step


def resolve_context(pipeline: Pipeline, overrides: Mapping[str, Any] | None,
                    base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The pipeline's context defaults (or `base`, e.g. a resumed run's
    context), with `overrides` applied.  Unknown keys are a ValueError."""
    values = dict(pipeline.context or {})
    if base:
        values.update({k: v for k, v in base.items() if k in values})
    unknown = [k for k in (overrides or {}) if k not in values]
    if unknown:
        known = ", ".join(values) or "(no keys)"
        names = ", ".join(repr(k) for k in unknown)
        raise ValueError(
            f"unknown context key(s) {names} for pipeline {pipeline.name!r}; the context has: {known}"
        )
    values.update(overrides or {})
    return values


def build_plan(pipeline: Pipeline, context: Mapping[str, Any]) -> Plan:
    problems: list[str] = []
    if not pipeline.steps:
        problems.append(f"pipeline {pipeline.name!r} has no steps")
    producers = _producers(pipeline, problems)
    index_of = {s.name: i for i, s in enumerate(pipeline.steps)}  # computed once: planning is linear
    plans = [_plan_step(pipeline, s, i, producers, index_of, context, problems)
             for i, s in enumerate(pipeline.steps)]
    ordered = _order(plans, problems)
    if problems:
        raise PipelineError(pipeline.name, problems)
    return Plan(pipeline, ordered, dict(context), producers)


def _producers(pipeline: Pipeline, problems: list[str]) -> dict[str, str]:
    producers: dict[str, str] = {}
    for s in pipeline.steps:
        for output in s.outputs:
            if output in producers:
                problems.append(
                    f"output '{output}' is produced by both step '{producers[output]}' and step "
                    f"'{s.name}'; each output must come from exactly one step"
                )
            else:
                producers[output] = s.name
    return producers


def _signature(fn: Callable, what: str, problems: list[str]) -> list[inspect.Parameter] | None:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        problems.append(f"cannot read the parameters of {what}: {exc}")
        return None


def _other_producer(producers: dict[str, str], s: Step, name: str) -> str | None:
    """The step producing `name` when it is another step than `s`, else None."""
    producer = producers.get(name)
    return producer if producer is not None and producer != s.name else None


def _plan_step(pipeline: Pipeline, s: Step, index: int, producers: dict[str, str],
               index_of: dict[str, int], context: Mapping[str, Any],
               problems: list[str]) -> StepPlan:
    """Plan one step; its cost depends on the step's own parameters only
    (the maps `producers` and `index_of` are built once per pipeline)."""
    params = _signature(s.fn, f"step '{s.name}'", problems) or []
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = [p.name for p in named]
    if s.inputs is None:
        inputs = [n for n in names if _other_producer(producers, s, n) is not None]
    else:
        inputs = list(s.inputs)
    bindings: dict[str, Source] = {}
    for p in named:
        source = _bind_param(pipeline, s, p, inputs, producers, context, problems)
        if source is not None:
            bindings[p.name] = source
    if s.foreach is not None and s.foreach not in names:
        problems.append(f"foreach='{s.foreach}' of step '{s.name}' names no parameter of '{s.fn.__name__}'")
    for name in inputs:
        if name not in names:
            problems.append(f"declared input '{name}' is not a parameter of step function '{s.fn.__name__}'")
            if name not in producers:
                problems.append(f"step '{s.name}' takes input '{name}', which no step of pipeline "
                                f"'{pipeline.name}' produces{did_you_mean(name, producers)}")
    predicate = _plan_predicate(s, producers, context, problems)
    sources = list(bindings.values()) + list((predicate or {}).values())
    upstream = {src.step for src in sources if isinstance(src, FromOutput)}
    order = sorted(upstream, key=index_of.__getitem__)  # add_step order
    positional = tuple(p.name for p in named if p.kind == p.POSITIONAL_ONLY)
    cache = pipeline.enable_cache if s.cache is None else bool(s.cache)
    return StepPlan(s, index, bindings, positional, predicate, tuple(order), cache)


def _bind_param(pipeline: Pipeline, s: Step, p: inspect.Parameter, inputs: list[str],
                producers: dict[str, str], context: Mapping[str, Any],
                problems: list[str]) -> Source | None:
    name = p.name
    if name in inputs:
        if name in producers:
            return FromOutput(producers[name], name)
        hint = did_you_mean(name, producers)
        problems.append(
            f"step '{s.name}' takes input '{name}', which no step of pipeline '{pipeline.name}' produces{hint}"
        )
        return None
    if name in context:
        return FromContext(name)
    if p.default is not p.empty:
        return FromDefault(p.default)
    problems.append(
        f"parameter '{p.name}' of step '{s.name}' is bound to nothing: it is no input, "
        f"no context key and has no default"
    )
    return None


def _plan_predicate(s: Step, producers: dict[str, str], context: Mapping[str, Any],
                    problems: list[str]) -> dict[str, Source] | None:
    if s.when is None:
        return None
    bindings: dict[str, Source] = {}
    for p in _signature(s.when, f"the `when` predicate of step '{s.name}'", problems) or []:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        producer = _other_producer(producers, s, p.name)
        if producer is not None:
            bindings[p.name] = FromOutput(producer, p.name)
        elif p.name in context:
            bindings[p.name] = FromContext(p.name)
        else:
            others = [out for out, prod in producers.items() if prod != s.name]  # error path only
            hint = did_you_mean(p.name, others + list(context))
            problems.append(
                f"`when` predicate of step '{s.name}' names '{p.name}', which is no upstream "
                f"output and no context key{hint}"
            )
    return bindings


def _order(plans: list[StepPlan], problems: list[str]) -> list[StepPlan]:
    """Dependency order, ties in add_step order.

    Kahn's algorithm with a heap keyed by add_step position: at every point
    the earliest-added step whose upstream steps have all run comes next.
    This is the stable topological order (the add_step order itself when it
    is already a valid order), deterministic by construction.  graphlib would
    also do, but its ready batches are level by level, which moves a step
    added early behind unrelated steps added later."""
    by_name = {p.name: p for p in plans}
    waiting = {p.name: len(p.upstream) for p in plans}
    downstream: dict[str, list[str]] = {p.name: [] for p in plans}
    for p in plans:
        for up in p.upstream:
            downstream[up].append(p.name)
    ready = [(p.index, p.name) for p in plans if not p.upstream]
    heapq.heapify(ready)
    ordered: list[StepPlan] = []
    while ready:
        _, name = heapq.heappop(ready)
        ordered.append(by_name[name])
        for down in downstream[name]:
            waiting[down] -= 1
            if waiting[down] == 0:
                heapq.heappush(ready, (by_name[down].index, down))
    if len(ordered) < len(plans):
        problems.append(f"steps form a cycle: {_cycle(by_name, {p.name for p in ordered})}")
    return ordered


def _cycle(by_name: dict[str, StepPlan], done: set[str]) -> str:
    """One cycle among the steps that could not be ordered, as 'a -> b -> a',
    starting at its earliest-added step.
    Every such step has an upstream step that could not be ordered either, so
    walking upstream must come back to a step already seen."""
    start = next(name for name in by_name if name not in done)
    path = [start]
    while True:
        up = next(u for u in by_name[path[-1]].upstream if u not in done)
        if up in path:
            cycle = list(reversed(path[path.index(up):]))  # producers first
            break
        path.append(up)
    first = cycle.index(min(cycle, key=lambda name: by_name[name].index))  # as the frontend prints it
    cycle = cycle[first:] + cycle[:first]
    return " -> ".join(cycle + [cycle[0]])
