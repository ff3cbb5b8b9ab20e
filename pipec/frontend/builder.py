"""`build_module(path)`: the frontend's pipeline, one pass per concern.

    parse (sources) → read steps and pipelines (declarations, pipelines)
    → bind and order (binding) → carry code (closure) → ir.Module

Every stage reports into one `Diagnostics`; the IR is returned only when
there is no error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import libcst as cst

from pipec import ir
from pipec.diagnostics import Diagnostics
from pipec.frontend.result import FrontendResult, source_root
from pipec.frontend.binding import (
    Binder,
    check_graph,
    execution_order,
    option_spans,
    ordering_edges,
    retry_policy,
    step_name,
    step_outputs,
)
from pipec.frontend.artifacts import typed_outputs
from pipec.frontend.closure import CodeExtractor
from pipec.frontend.declarations import StepDecl, StepReader
from pipec.frontend.literals import LiteralEvaluator
from pipec.frontend.pipelines import PipelineDecl, PipelineReader, ReadContext, StepUse
from pipec.frontend.sources import SourceModule, SourceTree
from pipec.frontend.symbols import Resolver
from pipec.frontend.validation import check_decorator_placement


class Builder:
    def __init__(self, root: Path) -> None:
        self.diagnostics = Diagnostics()
        self.tree = SourceTree(root, self.diagnostics)
        self.resolver = Resolver(self.tree)
        self.evaluator = LiteralEvaluator(self.resolver)
        self.steps = StepReader(self.resolver, self.evaluator, self.diagnostics)
        self.code = CodeExtractor(self.tree, self.resolver, self.diagnostics)
        self._code_cache: dict[int, ir.CodeBlock] = {}

    def build(self, file: Path) -> ir.Module | None:
        module = self.tree.parse(file)
        if module is None:
            return None
        check_decorator_placement(module, self.diagnostics)
        self._read_local_steps(module)
        context = ReadContext(
            module, self.resolver, self.evaluator, self.steps, self.diagnostics
        )
        declared = PipelineReader(context).read()
        pipelines = [self._pipeline(decl) for decl in declared]
        self._check_names(declared)
        if self.diagnostics.has_errors:
            return None
        return ir.Module(module.path, module.name, tuple(pipelines))

    def _read_local_steps(self, module: SourceModule) -> None:
        """Read every @step of the module, added to a pipeline or not, so
        that `pipec check` reports their mistakes too."""
        for statement in module.tree.body:
            if isinstance(statement, cst.FunctionDef):
                self.steps.read(module, statement)

    def _check_names(self, declared: list[PipelineDecl]) -> None:
        names: list[str] = []
        for decl in declared:
            if decl.name is not None and decl.name in names:
                self.diagnostics.error("PC305", decl.span, pipeline=decl.name)
            names.append(decl.name)

    def _pipeline(self, decl: PipelineDecl) -> ir.Pipeline:
        graph = check_graph(decl, self.diagnostics)
        binder = Binder(graph, self.evaluator, self.diagnostics)
        enable_cache = decl.option("enable_cache", True)
        built = {
            step_name(use.decl): self._step(use, binder, enable_cache)
            for use in graph.uses
        }
        edges = {name: producers for name, (_, producers) in built.items()}
        after = ordering_edges(graph, edges, self.diagnostics)
        ordered = [
            step_name(use.decl)
            for use in execution_order(graph, edges, self.diagnostics)
        ]
        position = {name: i for i, name in enumerate(ordered)}
        steps = []
        for name in ordered:
            step, producers = built[name]
            upstream = tuple(sorted(edges[name], key=position.__getitem__))
            steps.append(
                dataclasses.replace(step, upstream=upstream, after=after.get(name, ()))
            )
        if not decl.steps and not decl.unresolved_steps and decl.name is not None:
            self.diagnostics.error("PC105", decl.span, pipeline=decl.name)
        return ir.Pipeline(
            name=decl.name or "",
            steps=tuple(steps),
            context=tuple(decl.context),
            span=decl.span,
            source_path=decl.module.path,
            module=decl.module.name,
            schedule=decl.option("schedule"),
            description=decl.option("description"),
            owner=decl.option("owner"),
            tags=tuple(decl.option("tags", ())),
            enable_cache=enable_cache,
            version=decl.option("version"),
            timezone=decl.option("timezone"),
            max_parallel=decl.option("max_parallel"),
        )

    def _step(
        self, use: StepUse, binder: Binder, enable_cache: bool
    ) -> tuple[ir.Step, list[str]]:
        """The step without its `upstream`, and the steps it consumes
        outputs of, unordered (the caller orders them into `upstream`)."""
        decl = use.decl
        name = step_name(decl)
        params = binder.params(use)
        code = self._code(decl, name)
        when = binder.predicate(use, code.predicate or "")
        foreach = binder.check_foreach(use, params)
        if decl.option("max_parallel") is not None and foreach is None:
            self.diagnostics.error("PC218", decl.options["max_parallel"].span, step=name)
        fallback = (
            ir.Fallback(code.fallback, decl.fallback.span)
            if decl.fallback and code.fallback
            else None
        )
        outputs = tuple(step_outputs(decl))
        files, metrics = typed_outputs(decl, name, outputs, foreach, self.diagnostics)
        step = ir.Step(
            name=name,
            function=decl.function,
            params=params,
            outputs=outputs,
            code=code,
            span=decl.span,
            retry=retry_policy(decl, self.diagnostics),
            timeout=_float_or_none(decl.option("timeout")),
            cache=step_cache(decl, params, enable_cache),
            cache_ttl=_float_or_none(decl.option("cache_ttl")),
            image=decl.option("image"),
            packages=tuple(decl.option("packages", ())),
            resources=_resources(decl),
            foreach=foreach,
            foreach_key=decl.option("foreach_key") if foreach else None,
            when=when,
            fallback=fallback,
            max_parallel=decl.option("max_parallel"),
            returns=decl.module.code(decl.node.returns.annotation) if decl.node.returns else "",
            option_spans=option_spans(decl),
            trigger="all_done" if decl.option("final") else decl.option("trigger", "all_succeeded"),
            final=bool(decl.option("final", False)),
            files=files,
            metrics=metrics,
        )
        producers = []
        for ref in step.input_refs():
            if ref.step and ref.step not in producers:
                producers.append(ref.step)
        return step, producers

    def _code(self, decl: StepDecl, name: str) -> ir.CodeBlock:
        key = id(decl.node)
        if key not in self._code_cache:
            self._code_cache[key] = self.code.extract(decl, name)
        return self._code_cache[key]


def step_cache(decl: StepDecl, params: tuple[ir.Binding, ...], enable_cache: bool) -> bool:
    """Whether the step's outputs are cached: its `cache` option, else the
    pipeline's `enable_cache` — except that a step with no inputs (it reads
    nothing the run passes it, so what it returns may change with the world:
    the time, a table) is cached only when it says `cache=True`, as Airflow
    and Dagster, which cache nothing, behave."""
    explicit = decl.option("cache")
    if explicit is not None:
        return explicit
    # Literals given with `params` are fixed like defaults: no input either.
    if all(isinstance(b.ref, (ir.DefaultValue, ir.ConstantValue)) for b in params):
        return False
    return enable_cache


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)


def _resources(decl: StepDecl) -> ir.Resources:
    cpu = decl.option("cpu")
    return ir.Resources(
        cpu=None if cpu is None else str(cpu),
        memory=decl.option("memory"),
        gpu=decl.option("gpu"),
    )


# When a list (see `pipec.frontend.keep_sources`): the source trees of every
# build, kept so that freeing them (a large share of a build's time) is left
# to the end of the process.
KEPT: list[SourceTree] | None = None


def build(path: Path) -> tuple[FrontendResult, dict[str, str]]:
    """The result for the module at `path`, and what it was built from
    (`SourceTree.inputs`)."""
    root = source_root(path)
    builder = Builder(root)
    file = path.resolve()
    module = builder.build(file)
    if KEPT is not None:
        KEPT.append(builder.tree)
    return FrontendResult(module, list(builder.diagnostics), root), builder.tree.inputs


def build_module(path: Path) -> FrontendResult:
    """`build`, without the cache's bookkeeping."""
    return build(path)[0]
