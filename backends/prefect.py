"""The Prefect 3 target: one flow file per pipeline, plus its deployment.

`<pipeline>.py` holds one Prefect task per step and a flow named after the
pipeline whose parameters are the context keys (typed, with their defaults).
Each task carries its step's code as a string and runs it with the embedded
task runtime (`templates/task_runtime.py`, `templates/prefect_runtime.py`):
no pipec, no pipeline module.  `<pipeline>.prefect.yaml` is the deployment
(entrypoint, parameters, the cron schedule when there is one) for
`prefect deploy --prefect-file <pipeline>.prefect.yaml --all`; one file per
pipeline, so that pipelines compiled into one folder never overwrite each
other's deployment.

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

import re
from dataclasses import dataclass, field


from pipec import ir
from pipec.backends.base import Backend, Emit, register, template_code
from pipec.backends.prefect_code import Arg, Names, arg, call, identifier, lit
from pipec.backends import runtime_code, yamlfmt
from pipec.backends.pyfmt import comment_lines, header_value, py_block_str, py_literal

# Parameters of Task.submit / Task.map: a step parameter of that name would
# be taken by Prefect.
PREFECT_CALL_KEYWORDS = ("wait_for", "return_state", "deferred")
RUNTIME_NAMES = (
    "linecache", "types", "asyncio", "hashlib", "INPUTS", "TASK_SOURCE", "CacheKeyFnPolicy",
    "wait", "Completed", "Failed", "flow", "task", "allow_failure", "unmapped", "NO_CACHE",
    "Any", "_PipecStep", "_PipecNoElements", "_PIPEC_SKIPPED",
)
TYPES = {"str": "str", "int": "int", "float": "float", "bool": "bool", "list": "list", "dict": "dict", "null": "Any"}
CRON_ALIASES = {
    "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}
MAX_RETRY_DELAYS = 50  # Prefect refuses more


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
    # Task parameters in order: (name, ref).
    params: list[tuple[str, ir.Ref]] = field(default_factory=list)
    when: dict[str, str] = field(default_factory=dict)

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
        chosen = [step for step in ready if not maps_upstream(step)] or ready[:1]
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


def maps_upstream(step: ir.Step) -> bool:
    binding = step.param(step.foreach) if step.foreach else None
    return binding is not None and isinstance(binding.ref, ir.OutputRef)


def module_name(path: str) -> str:
    parts = path[: -len(".py")].split("/") if path.endswith(".py") else path.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@register
class PrefectBackend(Backend):
    name = "prefect"
    extension = ".py"
    SUPPORTS_RESOURCES = False
    SUPPORTS_IMAGE = False
    SUPPORTS_PACKAGES = False

    def check_capabilities(self, pipeline: ir.Pipeline) -> None:
        super().check_capabilities(pipeline)
        for step in pipeline.steps:
            if step.retry.backoff != 1.0 and step.retry.retries > MAX_RETRY_DELAYS:
                self.unsupported(step, f"more than {MAX_RETRY_DELAYS} retries with backoff", "retries",
                                 f"retries after the {MAX_RETRY_DELAYS}th wait as long as the {MAX_RETRY_DELAYS}th")
            for name, _ in task_params(step)[0]:
                if name in PREFECT_CALL_KEYWORDS:
                    self.unsupported(step, f"a parameter named {name!r} (a keyword of Prefect's Task.submit)", "name")
        if pipeline.owner:
            self.note_metadata(pipeline, f"the pipeline's owner {pipeline.owner!r}")

    def emit(self, pipeline: ir.Pipeline) -> Emit:
        flow_file = FlowFile(pipeline, self.options.pipec_version)
        deployment = deployment_yaml(self, pipeline, flow_file.flow)
        return Emit(self.filename(pipeline), flow_file.render(), [(f"{pipeline.name}.prefect.yaml", deployment)])


class FlowFile:
    """The text of one flow file."""

    def __init__(self, pipeline: ir.Pipeline, version: str = "") -> None:
        self.pipeline = pipeline
        self.version = version
        self.names = Names([p.name for p in pipeline.context] + list(RUNTIME_NAMES))
        self.flow = self.names.take(identifier(pipeline.name))
        self.steps = [self._step_names(step) for step in pipeline.steps]
        self.by_name = {s.step.name: s for s in self.steps}
        self.runs = self.names.take("runs")

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
        if maps_upstream(step):
            names.items = self.names.take(f"{ident}_items")
        return names

    # -- the file -----------------------------------------------------------
    def render(self) -> str:
        sections = ["# pipec Prefect runtime\n" + template_code("prefect_runtime.py")]
        for names in self.steps:
            sections.append("\n".join(self.spec(names)))
            sections.append("\n".join(self.task(names)))
            if names.fallback_task:
                sections.append("\n".join(self.fallback_task(names)))
        sections.append("\n".join(self.flow_def()))
        sections.append(f'if __name__ == "__main__":\n    {self.flow}()')
        rest = "\n\n\n".join(sections)
        # The shared task runtime, reduced to what the flow uses.
        (runtime,) = runtime_code.select(("task_runtime.py",), runtime_code.identifiers(rest))
        head = "\n".join(self.header() + [""] + self.imports() + ["", "# pipec task runtime"])
        return head + "\n" + runtime + "\n\n\n" + rest + "\n"

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
        if any(p.type == "null" for p in self.pipeline.context):
            lines += ["from typing import Any", ""]
        lines.append(f"from prefect import {', '.join(prefect)}")
        if any(s.fallback or not s.cache for s in steps):
            lines.append("from prefect.cache_policies import NO_CACHE")
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
        optional = [("upstream", names.upstream()), ("foreach", step.foreach), ("fallback", code.fallback),
                    ("predicate", code.predicate), ("when", names.when)]
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
        params = [Arg(value=name) for name, _ in names.params]
        body = call(f"return await {names.spec}.run", [arg(n, n) for n, _ in names.params], 1)
        return call("@task", options) + call(f"async def {names.task}", params, 0, ":") + body

    def fallback_task(self, names: StepNames) -> list[str]:
        attempt = Names([n for n, _ in names.params]).take("attempt")
        options = [lit("name", f"{names.step.name}.on_failure"), arg("cache_policy", "NO_CACHE")]
        params = [Arg(value=attempt)] + [Arg(value=n) for n, _ in names.params]
        body = call(f"return await {names.spec}.recover", [Arg(value=attempt)] + [arg(n, n) for n, _ in names.params], 1)
        return call("@task", options) + call(f"async def {names.fallback_task}", params, 0, ":") + body

    # -- the flow -----------------------------------------------------------
    def flow_def(self) -> list[str]:
        p = self.pipeline
        options = [lit("name", p.name)]
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
        lines.append(f"    return _pipec_finish({self.runs})")
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

    def submit(self, names: StepNames) -> list[str]:
        step = names.step
        target = names.attempt or names.run
        lines: list[str] = []
        if not step.foreach:
            args = [arg(n, self.value(ref)) for n, ref in names.params]
            lines += call(f"{target} = {names.task}.submit", args, 1)
            if names.fallback_task:
                args.insert(0, Arg(value=f"allow_failure({names.attempt})"))
                lines += call(f"{names.run} = {names.fallback_task}.submit", args, 1)
            return lines
        args, wait_for = [], []
        for name, ref in names.params:
            if name != step.foreach:
                args.append(arg(name, f"unmapped({self.value(ref)})"))
            elif isinstance(ref, ir.OutputRef):
                producer = self.by_name[ref.step].run
                lines += call(f"{names.items} = _pipec_elements", [Arg(value=producer), lit("", ref.output)], 1)
                args.insert(0, arg(name, names.items))
                wait_for = [arg("wait_for", f"[{producer}]")]
            elif isinstance(ref, ir.ContextRef):
                args.insert(0, arg(name, ref.key))
            else:
                args.insert(0, lit(name, ref.value))
        lines += call(f"{target} = {names.task}.map", args + wait_for, 1)
        if names.fallback_task:
            lines += call(f"{names.run} = {names.fallback_task}.map",
                          [arg("", f"allow_failure({names.attempt})")] + args + wait_for, 1)
        return lines


# `prefect deploy` replaces every `{{ name }}` in prefect.yaml (its
# templating has no escape): values that contain one cannot be written there.
PREFECT_PLACEHOLDER = re.compile(r"({{\s*([\w\.\-\[\]$]+)\s*}})")


def templated(value: object) -> bool:
    if isinstance(value, str):
        return PREFECT_PLACEHOLDER.search(value) is not None
    if isinstance(value, dict):
        return any(templated(k) or templated(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(templated(v) for v in value)
    return False


def deployment_yaml(backend: PrefectBackend, pipeline: ir.Pipeline, flow: str) -> str:
    """`<pipeline>.prefect.yaml`: the deployment of the flow.  Parameters and
    a description that `prefect deploy` would template are left out (the
    flow's own defaults and description are the same values); a tag it would
    template has no other place, so it is kept in the header comment."""
    entry: dict = {"name": pipeline.name, "entrypoint": f"{pipeline.name}.py:{flow}"}
    notes = []
    if pipeline.description and not templated(pipeline.description):
        entry["description"] = pipeline.description
    if pipeline.version and not templated(pipeline.version):
        entry["version"] = pipeline.version
    tags = [tag for tag in pipeline.tags if not templated(tag)]
    for tag in pipeline.tags:
        if templated(tag):
            backend.note_metadata(pipeline, f"the tag {tag!r} (prefect deploy would template it)")
            notes.append(f"tag: {header_value(tag)}")
    if tags:
        entry["tags"] = tags
    entry["parameters"] = {p.name: p.default for p in pipeline.context if not templated(p.default)}
    kept = [p.name for p in pipeline.context if templated(p.default)]
    if kept:
        notes.append(f"parameters with the flow's defaults (not written here): {', '.join(kept)}")
    if pipeline.schedule:
        cron = CRON_ALIASES.get(pipeline.schedule, pipeline.schedule)
        entry["schedules"] = [{"cron": cron, "timezone": "UTC"}]
    entry["work_pool"] = {"name": str(backend.options.setting("work_pool", "default"))}
    header = [f"Generated by pipec from {pipeline.source_path}: do not edit by hand.",
              f"Prefect deployment of flow {pipeline.name!r} ({pipeline.name}.py); deploy it with",
              f"prefect deploy --prefect-file {pipeline.name}.prefect.yaml --all"]
    if pipeline.owner:
        header.append(f"owner: {header_value(pipeline.owner)}")
    body = yamlfmt.dump({"deployments": [entry]}, sort_keys=False, width=88)
    return "\n".join(line for text in header + notes for line in comment_lines(text)) + "\n" + body
