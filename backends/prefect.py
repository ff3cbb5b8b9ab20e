"""The Prefect 3 target: one flow file per pipeline, plus its deployment.

`<pipeline>.py` holds one Prefect task per step and a flow named after the
pipeline whose parameters are the context keys (typed, with their defaults).
Each task carries its step's code as a string and runs it with the embedded
task runtime (`templates/task_runtime.py`, `templates/prefect_runtime.py`,
`templates/prefect_environment.py`): no pipec, no pipeline module.  Helper
modules of the source tree are carried too (unless the `helper_modules`
setting is `import`), a step's `packages` are installed at task start, and
the flow keeps its steps' statuses and outputs on the server as an artifact.
`<pipeline>.prefect.yaml` is the deployment (entrypoint, parameters, the
cron schedule, the pull step, the work pool: see `prefect_deploy.py`); one
file per pipeline, so that pipelines compiled into one folder never
overwrite each other's deployment.

How pipec's semantics map onto Prefect (see the runtime's docstring for the
data passing): retries → `retries` and `retry_delay_seconds` (a list when
the delay grows), timeout → `timeout_seconds` (tasks are async so the
timeout stops waiting for the step), cache → `cache_policy` keyed on the
task's inputs, its source and the step's code, `when` → a
`Completed(name="Skipped")` state, `on_failure` → a second task
`<step>.on_failure` that calls the fallback when the step's task ended
Failed, `foreach` → `.map`.  Independent steps are submitted without
waiting; only a `.map` over an upstream output waits for that output, and
it is submitted after every step that does not need it.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
from dataclasses import dataclass, field


from pipec import ir
from pipec.backends.base import Backend, Emit, register, template_code
from pipec.backends.prefect_code import Arg, Names, arg, call, identifier, lit
from pipec.backends.pylayout import Call, Dict, Lit, Raw, statement
from pipec.backends import runtime_code
from pipec.backends.prefect_deploy import (
    PrefectSettings, check_names, deployment_yaml, pipeline_image, templated,  # noqa: F401 (templated: tests)
)
from pipec.backends.pyfmt import comment_lines, header_value, py_block_str, py_literal, py_str

# Parameters of Task.submit / Task.map: a step parameter of that name would
# be taken by Prefect.
PREFECT_CALL_KEYWORDS = ("wait_for", "return_state", "deferred")
TEMPLATES = ("task_runtime.py", "prefect_environment.py", "prefect_runtime.py")
TYPES = {"str": "str", "int": "int", "float": "float", "bool": "bool", "list": "list", "dict": "dict", "null": "Any"}
MAX_RETRY_DELAYS = 50  # Prefect refuses more
BUILTINS = frozenset(dir(builtins))


@functools.lru_cache(maxsize=None)
def runtime_names() -> tuple[str, ...]:
    """Module-level names the flow file must not define for a step: what the
    runtime templates define or read as globals (builtins such as
    `isinstance` and `len` included), and what the generated code imports or
    uses."""
    names = {"flow", "task", "allow_failure", "unmapped", "NO_CACHE", "Any", *TYPES.values()}
    for template in TEMPLATES:
        names |= template_names(template)
    return tuple(sorted(names))


@functools.lru_cache(maxsize=None)
def template_names(template: str) -> frozenset[str]:
    """The module-level names template `template` binds or reads: its
    imports and definitions, and the builtins it calls (its functions'
    locals are no business of the module)."""
    tree = ast.parse(template_code(template))
    names = {a.asname or a.name.split(".")[0] for n in ast.walk(tree)
             if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    names |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    return frozenset(names | (template_reads(template) & BUILTINS))


@functools.lru_cache(maxsize=None)
def template_reads(template: str) -> frozenset[str]:
    """Every name template `template` reads or binds."""
    return frozenset(n.id for n in ast.walk(ast.parse(template_code(template))) if isinstance(n, ast.Name))


@dataclass
class StepNames:
    """The generated names and bindings of one step."""

    step: ir.Step
    task: str
    spec: str
    code: str
    run: str
    attempt: str = ""
    fallback_task: str = ""
    items: str = ""
    # A gated foreach step: its `when` task, that task's run, what its
    # element tasks wait for.
    gate_task: str = ""
    gate: str = ""
    wait: str = ""
    # Task parameters in order: (name, ref).
    params: list[tuple[str, ir.Ref]] = field(default_factory=list)
    when: dict[str, str] = field(default_factory=dict)
    # A step that decides when it runs (`controlled`): the flow's local for
    # its upstream steps' states, and its task's parameter saying whether
    # it runs.
    upstream_states: str = ""
    go: str = ""

    def upstream(self) -> dict[str, str]:
        return {name: ref.output for name, ref in self.params if isinstance(ref, ir.OutputRef)}


def task_params(step: ir.Step) -> tuple[list[tuple[str, ir.Ref]], dict[str, str]]:
    """The task's parameters: the step's bound parameters (defaults stay the
    function's own, except a foreach list), then the predicate's values that
    no step parameter carries already."""
    params = [(b.param, b.ref) for b in passed(step)]
    when: dict[str, str] = {}
    for binding in step.when.params if step.when else ():
        same = next((name for name, ref in params if ref == binding.ref), None)
        if same is None:
            local = Names([name for name, _ in params])
            same = local.take(binding.param)
            params.append((same, binding.ref))
        when[binding.param] = same
    return params, when


def passed(step: ir.Step) -> list[ir.Binding]:
    """The step's bindings the task passes: defaults stay the function's own,
    except the list a foreach step maps over."""
    return [b for b in step.params if not isinstance(b.ref, ir.DefaultValue) or b.param == step.foreach]


def submission_order(pipeline: ir.Pipeline) -> list[ir.Step]:
    """Pipeline order, except that a `.map` over an upstream output (which
    waits for that output) comes after every step that does not need it.

    In rounds: each round submits every ready step that does not map over an
    upstream output (in pipeline order), or else the first ready one."""
    index = {step.name: i for i, step in enumerate(pipeline.steps)}
    waiting = {step.name: set(step.upstream) for step in pipeline.steps}
    consumers: dict[str, list[ir.Step]] = {}
    for step in pipeline.steps:
        for name in waiting[step.name]:
            consumers.setdefault(name, []).append(step)
    ready = [step for step in pipeline.steps if not waiting[step.name]]
    order: list[ir.Step] = []
    while ready:
        chosen = [step for step in ready if not (maps_upstream(step) or controlled(step))] or ready[:1]
        taken = {step.name for step in chosen}
        ready = [step for step in ready if step.name not in taken]
        for step in chosen:
            order.append(step)
            for consumer in consumers.get(step.name, []):
                waiting[consumer.name].discard(step.name)
                if not waiting[consumer.name]:
                    ready.append(consumer)
        ready.sort(key=lambda step: index[step.name])
    return order


def controlled(step: ir.Step) -> bool:
    """Whether the flow decides when the step runs from its upstream steps'
    states: a trigger rule, `after` steps, or the final step."""
    return step.trigger != "all_succeeded" or bool(step.after) or step.final


def maps_upstream(step: ir.Step) -> bool:
    """Whether the flow waits for an upstream output before it maps the
    step: the list it maps over, or what its `when` reads (see `gated`)."""
    binding = step.param(step.foreach) if step.foreach else None
    if binding is not None and isinstance(binding.ref, ir.OutputRef):
        return True
    return gated(step) and any(isinstance(b.ref, ir.OutputRef) for b in step.when.params)


def fanout_upstream(step: ir.Step) -> list[str]:
    """The upstream steps of a foreach step (not the one whose output it
    maps over) that its elements depend on: over an empty list it still
    takes its status from them (`_pipec_fanout`)."""
    if not step.foreach or controlled(step):
        return []
    binding = step.param(step.foreach)
    producer = binding.ref.step if binding is not None and isinstance(binding.ref, ir.OutputRef) else None
    return [name for name in step.upstream if name != producer]


def gated(step: ir.Step) -> bool:
    """A foreach step with a `when`: the predicate is evaluated once, on
    whole values, by a task of its own before the elements are mapped (as
    the local run does); the flow waits for it."""
    return bool(step.foreach and step.when)


def module_name(path: str) -> str:
    parts = path[: -len(".py")].split("/") if path.endswith(".py") else path.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@register
class PrefectBackend(Backend):
    name = "prefect"
    extension = ".py"
    SETTINGS = {key: str for key in PrefectSettings.__dataclass_fields__}
    # Resources, images and packages are checked below, with what to use
    # instead where Prefect has no place for them.
    SUPPORTS_RESOURCES = True

    def check_capabilities(self, pipeline: ir.Pipeline) -> None:
        super().check_capabilities(pipeline)
        self.settings = PrefectSettings.read(self)
        self.image = pipeline_image(self, pipeline, self.settings)
        check_names(self, pipeline)
        for step in pipeline.steps:
            if not step.resources.is_empty():
                self.unsupported(step, "resources (cpu/memory/gpu) per step (a Prefect flow run is one work-pool "
                                 "job: set them in the work pool's base job template, or use the kubeflow "
                                 "target)", "cpu")
            if step.packages and self.settings.packages == "error":
                self.unsupported(step, "packages (the prefect setting 'packages' is 'error')", "packages")
        for step in pipeline.steps:
            if step.foreach and controlled(step):
                option = "final" if step.final else "trigger" if step.trigger != "all_succeeded" else "after"
                self.unsupported(step, f"{option}= on a foreach step", option)
            if step.retry.backoff != 1.0 and step.retry.retries > MAX_RETRY_DELAYS:
                self.unsupported(step, f"more than {MAX_RETRY_DELAYS} retries with backoff", "retries",
                                 f"retries after the {MAX_RETRY_DELAYS}th wait as long as the {MAX_RETRY_DELAYS}th")
            for name, _ in task_params(step)[0]:
                if name in PREFECT_CALL_KEYWORDS:
                    self.unsupported(step, f"a parameter named {name!r} (a keyword of Prefect's Task.submit)", "name")
        if pipeline.owner:
            self.note_metadata(pipeline, f"the pipeline's owner {pipeline.owner!r}")

    def emit(self, pipeline: ir.Pipeline) -> Emit:
        flow_file = FlowFile(pipeline, self.options.pipec_version, self.settings)
        deployment = deployment_yaml(self, pipeline, flow_file.flow, self.settings, self.image)
        return Emit(self.filename(pipeline), flow_file.render(), [(f"{pipeline.name}.prefect.yaml", deployment)])


class FlowFile:
    """The text of one flow file."""

    def __init__(self, pipeline: ir.Pipeline, version: str = "", settings: PrefectSettings | None = None) -> None:
        self.pipeline = pipeline
        self.version = version
        self.settings = settings or PrefectSettings()
        # Step and predicate parameters are locals of the task functions,
        # whose bodies read `_<STEP>_STEP`: no such name may be a parameter.
        params = [b.param for s in pipeline.steps for b in s.params + (s.when.params if s.when else ())
                  if b.param.startswith("_")]
        self.names = Names([p.name for p in pipeline.context] + list(runtime_names()) + params)
        self.flow = self.names.take(identifier(pipeline.name))
        self.steps = [self._step_names(step) for step in pipeline.steps]
        self.by_name = {s.step.name: s for s in self.steps}
        # A local of the flow function, beside its parameters and step runs.
        self.runs = Names([p.name for p in pipeline.context] + [s.run for s in self.steps]).take("runs")

    def _step_names(self, step: ir.Step) -> StepNames:
        ident = identifier(step.name)
        names = StepNames(
            step,
            task=self.names.take(ident),
            spec=self.names.take(f"_{ident.upper().lstrip('_')}_STEP"),
            code=self.names.take(f"_{ident.upper().lstrip('_')}_CODE"),
            run=self.names.take(f"{ident}_run"),
        )
        names.params, names.when = task_params(step)
        if step.fallback:
            names.fallback_task = self.names.take(f"{ident}_on_failure")
            names.attempt = self.names.take(f"{ident}_attempt")
        if maps_upstream(step) or gated(step) or fanout_upstream(step):
            names.items = self.names.take(f"{ident}_items")
        if controlled(step):
            names.upstream_states = self.names.take(f"{ident}_upstream")
            names.go = Names([n for n, _ in names.params]).take("pipec_go")
        if gated(step):
            names.gate_task = self.names.take(f"{ident}_when")
            names.gate = self.names.take(f"{ident}_gate")
            names.wait = self.names.take(f"{ident}_wait")
        return names

    # -- the file -----------------------------------------------------------
    def render(self) -> str:
        sections = ["# pipec Prefect runtime\n" + template_code("prefect_runtime.py")]
        helpers = self.helper_sources()
        if helpers:
            sections.append("\n".join(self.helpers_table(helpers)))
        for names in self.steps:
            sections.append("\n".join(self.spec(names)))
            sections.append("\n".join(self.task(names)))
            if names.fallback_task:
                sections.append("\n".join(self.fallback_task(names)))
            if names.gate_task:
                sections.append("\n".join(self.gate_task(names)))
        sections.append("\n".join(self.flow_def()))
        sections.append(f'if __name__ == "__main__":\n    {self.flow}()')
        rest = "\n\n\n".join(sections)
        # The shared task runtime and the task environment, reduced to what
        # the flow uses (known here: words of the values in `rest` must not
        # change what is embedded).
        used = set(template_reads("prefect_runtime.py")) | {"_pipec_load", "_pipec_publish"}
        if self.helper_sources():
            used.add("_pipec_helpers")
        if any(step.packages for step in self.pipeline.steps):
            used.add("_pipec_packages")
        runtime, environment = runtime_code.select(TEMPLATES[:2], used)
        head = "\n".join(self.header() + [""] + self.imports() + ["", "# pipec task runtime"])
        environment = "# pipec task environment\n" + environment
        return head + "\n" + runtime + "\n\n\n" + environment + "\n\n\n" + rest + "\n"

    def helper_sources(self) -> list[tuple[str, str]]:
        """The helper modules the flow carries, in first-use order."""
        if self.settings.helper_modules != "embed":
            return []
        sources: dict[str, str] = {}
        for step in self.pipeline.steps:
            for name, text in step.code.helper_sources:
                sources.setdefault(name, text)
        return list(sources.items())

    def helpers_table(self, helpers: list[tuple[str, str]]) -> list[str]:
        lines = ["# The helper modules of the source tree that the steps import.", "_PIPEC_HELPERS = {"]
        for name, text in helpers:
            lines.append(f"    {py_str(name)}: {py_block_str(text)},")
        return lines + ["}"]

    def prepare(self, step: ir.Step) -> list[str]:
        """What a step's task does before it runs the step: carried helper
        modules made importable, declared packages installed."""
        lines = []
        if step.code.helper_sources and self.settings.helper_modules == "embed":
            lines.append("    _pipec_helpers(_PIPEC_HELPERS)")
        if step.packages:
            lines += call("_pipec_packages", [lit("", list(step.packages))], 1)
        return lines

    def header(self) -> list[str]:
        p = self.pipeline
        by = f"pipec {self.version}" if self.version else "pipec"
        lines = [f"Generated by {by} from {p.source_path}: do not edit by hand.",
                 f"Prefect 3 flow for pipeline {p.name!r}; run it with `python {p.name}.py`."]
        if p.owner:
            lines.append(f"owner: {header_value(p.owner)}")
        if p.schedule:
            lines.append(f"schedule: {p.schedule} (deployment: {p.name}.prefect.yaml)")
        return [line for text in lines for line in comment_lines(text)]

    def imports(self) -> list[str]:
        steps = self.pipeline.steps
        prefect = ["flow", "task"]
        if any(s.fallback for s in steps):
            prefect.insert(0, "allow_failure")
        if any(s.foreach and len(task_params(s)[0]) > 1 for s in steps):
            prefect.append("unmapped")
        lines = []
        if any(s.cache and s.cache_ttl is not None for s in steps):
            lines.append("from datetime import timedelta")
        if any(p.type == "null" for p in self.pipeline.context):
            lines.append("from typing import Any")
        if lines:
            lines.append("")
        lines.append(f"from prefect import {', '.join(prefect)}")
        if any(s.fallback or not s.cache or gated(s) for s in steps):
            lines.append("from prefect.cache_policies import NO_CACHE")
        if self.pipeline.max_parallel is not None:
            lines.append("from prefect.task_runners import ThreadPoolTaskRunner")
        return lines

    def spec(self, names: StepNames) -> list[str]:
        step, code = names.step, names.step.code
        args = [
            lit("name", step.name),
            arg("code", names.code),
            lit("location", f"<pipec step {step.name} from {step.span.path}>"),
            lit("module", module_name(step.span.path)),
            lit("function", code.function),
            lit("outputs", list(step.outputs)),
            lit("params", [b.param for b in passed(step)]),
        ]
        optional = [("upstream", names.upstream()), ("foreach", step.foreach), ("foreach_key", step.foreach_key),
                    ("fallback", code.fallback),
                    ("predicate", code.predicate), ("when", names.when), ("max_parallel", step.max_parallel),
                    ("go", names.go), ("anyway", step.trigger != "all_succeeded"),
                    ("files", list(step.file_outputs)), ("metrics", list(step.metrics))]
        args += [lit(key, value) for key, value in optional if value]
        return [f"{names.code} = {py_block_str(code.source)}"] + call(f"{names.spec} = _PipecStep", args)

    def task(self, names: StepNames) -> list[str]:
        step = names.step
        options = [lit("name", step.name)]
        retry = step.retry
        if retry.retries:
            options.append(lit("retries", retry.retries))
            if retry.backoff == 1.0:
                options.append(lit("retry_delay_seconds", retry.delay))
            else:
                count = min(retry.retries, MAX_RETRY_DELAYS)
                options.append(lit("retry_delay_seconds", [retry.delay_before(k) for k in range(1, count + 1)]))
        if step.timeout is not None:
            options.append(lit("timeout_seconds", float(step.timeout)))
        options.append(arg("cache_policy", f"_pipec_cache({names.spec})" if step.cache else "NO_CACHE"))
        if step.cache and step.cache_ttl is not None:
            options.append(arg("cache_expiration", f"timedelta(seconds={step.cache_ttl!r})"))
        given = [name for name, _ in names.params] + ([names.go] if names.go else [])
        params = [Arg(value=name) for name in given]
        body = call(f"return await {names.spec}.run", [arg(n, n) for n in given], 1)
        head = call(f"async def {names.task}", params, 0, ":")
        return call("@task", options) + head + self.prepare(step) + body

    def fallback_task(self, names: StepNames) -> list[str]:
        attempt = Names([n for n, _ in names.params]).take("attempt")
        options = [lit("name", f"{names.step.name}.on_failure"), arg("cache_policy", "NO_CACHE")]
        params = [Arg(value=attempt)] + [Arg(value=n) for n, _ in names.params]
        body = call(f"return await {names.spec}.recover", [Arg(value=attempt)] + [arg(n, n) for n, _ in names.params], 1)
        head = call(f"async def {names.fallback_task}", params, 0, ":")
        return call("@task", options) + head + self.prepare(names.step) + body

    def gate_task(self, names: StepNames) -> list[str]:
        params = list(dict.fromkeys(names.when.values()))
        options = [lit("name", f"{names.step.name}.when"), arg("cache_policy", "NO_CACHE")]
        head = call(f"async def {names.gate_task}", [Arg(value=n) for n in params], 0, ":")
        body = call(f"return await {names.spec}.gate", [arg(n, n) for n in params], 1)
        return call("@task", options) + head + self.prepare(names.step) + body

    # -- the flow -----------------------------------------------------------
    def flow_def(self) -> list[str]:
        p = self.pipeline
        options = [lit("name", p.name), arg("persist_result", "True")]
        if p.max_parallel is not None:  # the flow's tasks run at most this many at once
            options.append(arg("task_runner", f"ThreadPoolTaskRunner(max_workers={p.max_parallel})"))
        if p.description:
            options.append(lit("description", p.description))
        if p.version:
            options.append(lit("version", p.version))
        params = [Arg(f"{c.name}: {TYPES[c.type]} = ", literal=c.default, is_literal=True) for c in p.context]
        lines = call("@flow", options) + call(f"def {self.flow}", params, 0, " -> dict:")
        for step in submission_order(p):
            lines += self.submit(self.by_name[step.name])
        pairs = [f"({s.spec}, {s.run})" for s in self.steps]
        lines += self.runs_list(pairs)
        key = "pipec-" + (re.sub("[^a-z0-9]+", "-", p.name.lower()).strip("-") or "flow")
        lines += call("return _pipec_publish", [lit("", key[:64].rstrip("-")), arg("", f"_pipec_finish({self.runs})")], 1)
        return lines

    def runs_list(self, pairs: list[str]) -> list[str]:
        flat = f"    {self.runs} = [{', '.join(pairs)}]"
        if len(flat) <= 88:
            return [flat]
        return [f"    {self.runs} = ["] + [f"        {pair}," for pair in pairs] + ["    ]"]

    def value(self, ref: ir.Ref) -> str:
        if isinstance(ref, ir.ContextRef):
            return ref.key
        if isinstance(ref, ir.OutputRef):
            return self.by_name[ref.step].run
        return py_literal(ref.value)

    def controlled_value(self, names: StepNames, ref: ir.Ref) -> str:
        """What a controlled step's task gets: upstream results as they
        ended (None when not produced), the statuses of the final step."""
        if isinstance(ref, ir.OutputRef):
            return f"{names.upstream_states}.given({py_str(ref.step)})"
        if isinstance(ref, ir.StatusesRef):
            return f"{names.upstream_states}.statuses"
        return self.value(ref)

    def submit(self, names: StepNames) -> list[str]:
        step = names.step
        target = names.attempt or names.run
        lines: list[str] = []
        if names.go:
            runs = Dict(tuple((u, Raw(self.by_name[u].run)) for u in step.upstream))
            expr = Call("_PipecUpstream", ((None, Lit(step.trigger)), (None, runs)))
            lines += statement(1, f"{names.upstream_states} = ", expr).split("\n")
            args = [arg(n, self.controlled_value(names, ref)) for n, ref in names.params]
            wait_for = arg("wait_for", f"{names.upstream_states}.wait_for")
            lines += call(f"{target} = {names.task}.submit",
                          args + [arg(names.go, f"{names.upstream_states}.go"), wait_for], 1)
            if names.fallback_task:
                args.insert(0, Arg(value=f"allow_failure({names.attempt})"))
                lines += call(f"{names.run} = {names.fallback_task}.submit", args + [wait_for], 1)
            return lines
        if not step.foreach:
            args = [arg(n, self.value(ref)) for n, ref in names.params]
            lines += call(f"{target} = {names.task}.submit", args, 1)
            if names.fallback_task:
                args.insert(0, Arg(value=f"allow_failure({names.attempt})"))
                lines += call(f"{names.run} = {names.fallback_task}.submit", args, 1)
            return lines
        args, wait_for, elements, upstream = [], [], None, []
        for name, ref in names.params:
            if name != step.foreach:
                args.append(arg(name, f"unmapped({self.value(ref)})"))
            elif isinstance(ref, ir.OutputRef):
                producer = self.by_name[ref.step].run
                lines += call(f"{names.items} = _pipec_elements", [Arg(value=producer), lit("", ref.output)], 1)
                args.insert(0, arg(name, names.items))
                wait_for = [arg("wait_for", f"[{producer}]")]
                elements, upstream = Arg(value=names.items), [Arg(value=producer)]
            elif isinstance(ref, ir.ContextRef):
                args.insert(0, arg(name, ref.key))
                elements = Arg(value=ref.key)
            else:
                args.insert(0, lit(name, ref.value))
                elements = lit("", ref.value)
        if names.gate_task:
            gate_args = [arg(n, self.value(dict(names.params)[n])) for n in dict.fromkeys(names.when.values())]
            lines += call(f"{names.gate} = {names.gate_task}.submit", gate_args, 1)
            lines += call(f"{names.items}, {names.wait} = _pipec_gated",
                          [Arg(value=names.gate), elements] + upstream, 1)
            args[0] = arg(step.foreach, names.items)
            wait_for = [arg("wait_for", names.wait)]
            elements = Arg(value=names.items)
        others = fanout_upstream(step)
        if others:
            runs = Arg(value=f"[{', '.join(self.by_name[u].run for u in others)}]")
            lines += call(f"{names.items} = _pipec_fanout", [elements, runs], 1)
            args[0] = arg(step.foreach, names.items)
        lines += call(f"{target} = {names.task}.map", args + wait_for, 1)
        if names.fallback_task:
            lines += call(f"{names.run} = {names.fallback_task}.map",
                          [arg("", f"allow_failure({names.attempt})")] + args + wait_for, 1)
        return lines
