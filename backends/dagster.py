"""The Dagster target: one definitions module per pipeline.

`<pipeline>.py` defines `defs = Definitions(jobs=[...], schedules=[...],
resources=...)`, which `dagster dev -f FILE` and `dagster job execute -f
FILE` load.  Each op carries its step's code as a string and runs it with
the embedded runtime (`templates/task_runtime.py`,
`templates/dagster_runtime.py`): no pipec, no pipeline module.

How pipec's semantics map onto Dagster:

- the job is named after the pipeline (characters Dagster refuses become
  `_`); the context is a `ConfigurableResource` class per pipeline (typed
  fields with their defaults; list, dict and None values are `Any`), the
  resource `context`, overridable per run in the run config
  (`resources: context: config:`); Dagster rejects unknown keys;
- one op per step (a foreach step: `<step>__items`, `<step>` mapped over its
  `DynamicOut`, `<step>__collect`); outputs are `Out(is_required=False)`: a
  step whose `when` is false yields none and Dagster skips what consumes them;
- retries → `RetryRequested` with pipec's exact delays (Dagster's own
  `Backoff` only doubles); timeout → enforced in the op; `on_failure` → the
  fallback runs inside the last attempt;
- values between ops → `_PipecIOManager` (JSON when exact, else pickle)
  under the setting `artifact_root` (default `$DAGSTER_HOME/storage/pipec`;
  the environment variable PIPEC_ARTIFACT_ROOT overrides it at run time);
- `schedule` → a `ScheduleDefinition` (UTC); `image` and resources → the
  `dagster-k8s/config` op tag; the pipeline's tags → the job tag
  `pipec/tags` (a list); step cache, packages, owner and version → the
  header comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipec import ir
from pipec.backends import runtime_code
from pipec.backends.base import Backend, Emit, register, template_code
from pipec.backends.prefect_code import Arg, Names, arg, call, identifier, lit
from pipec.backends.pyfmt import INDENT, LINE_LENGTH, comment_lines, header_value, py_block_str, py_literal, width

TYPES = {"str": "str", "int": "int", "float": "float", "bool": "bool", "list": "Any", "dict": "Any", "null": "Any"}
CRON_ALIASES = {
    "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}
DAGSTER_IMPORTS = (
    "ConfigurableResource", "Definitions", "DynamicOut", "In", "Nothing", "Out", "ScheduleDefinition", "job", "op",
)
RUNTIME_NAMES = tuple(sorted(runtime_code.defined_names(("task_runtime.py", "dagster_runtime.py")))) + (
    "inspect", "json", "os", "pickle", "tempfile", "threading", "linecache", "types", "Any",
    "ConfigurableIOManager", "DynamicOutput", "Output", "RetryRequested", "defs",
) + DAGSTER_IMPORTS


# Names a field of a Dagster `Config` class cannot have: the members of
# Dagster 1.13's ConfigurableResource (besides pydantic's `model_*` and
# private `_*` names).
RESERVED_FIELDS = frozenset((
    "configure_at_launch", "construct", "copy", "create_resource", "dict", "from_orm", "from_resource_context",
    "from_resource_context_cm", "get_resource_context", "get_resource_definition", "json", "nested_resources",
    "parse_file", "parse_obj", "parse_raw", "process_config_and_initialize", "process_config_and_initialize_cm",
    "schema", "schema_json", "setup_for_execution", "teardown_after_execution", "to_config_schema",
    "to_fields_dict", "update_forward_refs", "validate", "with_replaced_resource_context", "with_resource_context",
    "yield_for_execution",
))


def reserved(key: str) -> bool:
    return key in RESERVED_FIELDS or key.startswith(("_", "model_"))


def asked_cache(pipeline: ir.Pipeline) -> list[str]:
    """The steps whose cache the user asked for (the default is no news)."""
    return [s.name for s in pipeline.steps if s.cache and any(name == "cache" for name, _ in s.option_spans)]


def passed(step: ir.Step) -> list[ir.Binding]:
    """The bindings an op passes: defaults stay the function's own, except
    the list a foreach step maps over."""
    return [b for b in step.params if not isinstance(b.ref, ir.DefaultValue) or b.param == step.foreach]


@dataclass
class OpNames:
    """The generated names of one step."""

    step: ir.Step
    op: str
    spec: str
    code: str
    items: str = ""
    collect: str = ""
    # Dagster output name of each declared output, in order.
    outs: list[str] = field(default_factory=list)
    # Op input name of each upstream output the step reads, in order.
    ins: dict[str, str] = field(default_factory=dict)
    element: str = ""
    # A step named in another step's `after`: its Nothing output saying it
    # succeeded (not yielded when it was skipped or failed).
    done: str = ""
    # Op input name of each `after` step's Nothing output, by step.
    after_ins: dict[str, str] = field(default_factory=dict)


@register
class DagsterBackend(Backend):
    name = "dagster"
    extension = ".py"
    SETTINGS = {"artifact_root": str}
    SUPPORTS_CACHE = False
    # An op runs when all its inputs arrived (`after` steps: Nothing
    # inputs): Dagster has no trigger rules and no op that runs anyway.
    # Its executors' `step_dependency_config` (require_upstream_step_
    # success: false) starts an op once its inputs are there, but still
    # abandons an op whose upstream op failed or was abandoned before
    # yielding them; hooks and run-status sensors run outside the graph.
    SUPPORTED_TRIGGERS = ("all_succeeded",)
    SUPPORTS_FINAL = False
    ANYWAY_REASON = (
        "Dagster starts an op only once its upstream ops yielded its inputs, and abandons it when one of them "
        "failed or was abandoned, also with require_upstream_step_success: false; failure hooks and "
        "run-failure sensors run outside the job's graph and give no step outputs"
    )

    def check_capabilities(self, pipeline: ir.Pipeline) -> None:
        super().check_capabilities(pipeline)
        for step in pipeline.steps:
            refs = [b.ref for b in step.params] + [b.ref for b in (step.when.params if step.when else ())]
            for key in dict.fromkeys(r.key for r in refs if isinstance(r, ir.ContextRef) and reserved(r.key)):
                self.unsupported(step, f"the context key {key!r} (a name Dagster's Config classes reserve)", "name",
                                 "the op fails when it reads it")
        for param in pipeline.context:
            if reserved(param.name):
                self.note_metadata(pipeline, f"the context key {param.name!r} (a name Dagster's Config classes reserve)")
        cached = asked_cache(pipeline)
        if cached:
            steps = ("step " if len(cached) == 1 else "steps ") + ", ".join(repr(name) for name in cached)
            self.note_metadata(pipeline, "the step cache of " + steps)
        for step in pipeline.steps:
            if step.packages:
                self.note_metadata(pipeline, f"the packages of step {step.name!r}")
        if pipeline.owner:
            self.note_metadata(pipeline, f"the pipeline's owner {pipeline.owner!r}")
        if pipeline.version:
            self.note_metadata(pipeline, "the pipeline version")

    def emit(self, pipeline: ir.Pipeline) -> Emit:
        root = self.options.setting("artifact_root")
        return Emit(self.filename(pipeline), DefinitionsFile(pipeline, self.options.pipec_version, root).render())


class DefinitionsFile:
    """The text of one definitions module."""

    def __init__(self, pipeline: ir.Pipeline, version: str = "", artifact_root: object = None) -> None:
        self.pipeline = pipeline
        self.version = version
        self.artifact_root = "" if artifact_root is None else str(artifact_root)
        self.names = Names(list(RUNTIME_NAMES))
        self.job = self.names.take(identifier(pipeline.name))
        # Dagster names are [A-Za-z0-9_]+: the pipeline's name when it is one.
        self.job_name = pipeline.name if re.fullmatch(r"[A-Za-z0-9_]+", pipeline.name) else identifier(pipeline.name)
        self.context_class = self.names.take(camel(identifier(pipeline.name)) + "Context")
        self.outs = self._output_names()
        self.ops = [self._op_names(step) for step in pipeline.steps]
        self.by_name = {names.step.name: names for names in self.ops}

    def _output_names(self) -> dict[str, str]:
        """The Dagster name of every output of the pipeline (ASCII)."""
        taken = Names([])
        outs = {out: taken.take(identifier(out)) for step in self.pipeline.steps for out in step.outputs}
        self.done = taken.take("pipec_done")
        return outs

    def _op_names(self, step: ir.Step) -> OpNames:
        ident = identifier(step.name)
        shout = ident.upper().lstrip("_")
        names = OpNames(step, op=self.names.take(ident), spec=self.names.take(f"_{shout}_STEP"),
                        code=self.names.take(f"_{shout}_CODE"))
        names.outs = [self.outs[out] for out in step.outputs]
        local = Names(["context", "inputs"])
        if step.foreach:
            names.items = self.names.take(f"{names.op}__items")
            names.collect = self.names.take(f"{names.op}__collect")
            names.element = local.take("element")
        for ref in step.input_refs():
            names.ins[ref.output] = local.take(self.outs[ref.output])
        for name in step.after:
            names.after_ins[name] = local.take("after_" + identifier(name))
        if any(step.name in other.after for other in self.pipeline.steps):
            names.done = self.done
        return names

    # -- the file -----------------------------------------------------------
    def render(self) -> str:
        sections = ["# pipec Dagster runtime\n" + template_code("dagster_runtime.py"), self.context_def()]
        for names in self.ops:
            sections.append("\n".join(self.spec(names)))
            sections += ["\n".join(lines) for lines in self.op_defs(names)]
        sections.append("\n".join(self.job_def()))
        sections.append("\n".join(self.definitions()))
        rest = "\n\n\n".join(sections)
        # The shared task runtime, reduced to what the module uses.
        (runtime,) = runtime_code.select(
            ("task_runtime.py",), runtime_code.identifiers(rest), after=("dagster_runtime.py",)
        )
        head = "\n".join(self.header() + [""] + self.imports() + ["", "# pipec task runtime"])
        return head + "\n" + runtime + "\n\n\n" + rest + "\n"

    def header(self) -> list[str]:
        p = self.pipeline
        by = f"pipec {self.version}" if self.version else "pipec"
        job = "" if self.job_name == p.name else f" (job {self.job_name!r})"
        lines = [f"Generated by {by} from {p.source_path}: do not edit by hand.",
                 f"Dagster definitions of pipeline {p.name!r}{job}; load them with",
                 f"`dagster dev -f {p.name}.py`, run with `dagster job execute -f {p.name}.py`."]
        kept = []
        cached = asked_cache(p)
        if cached:
            kept.append("step cache (Dagster has no op cache; not applied): " + ", ".join(cached))
        for step in p.steps:
            if step.packages:
                kept.append(f"packages of step {step.name} (install them in its image): " + ", ".join(step.packages))
        if p.owner:
            kept.append(f"owner: {header_value(p.owner)}")
        if p.version:
            kept.append(f"version: {header_value(p.version)}")
        kept += [f"context key {c.name}: {header_value(c.default)}" for c in p.context if reserved(c.name)]
        if kept:
            lines += ["", "Kept here because Dagster has no place for it:"] + [f"  {line}" for line in kept]
        helpers = list(dict.fromkeys(m for step in p.steps for m in step.code.helper_modules))
        if helpers:
            lines += ["", "Ops import these modules of the source tree; put its root on the",
                      "workers' path: " + ", ".join(helpers)]
        return [line for text in lines for line in comment_lines(text)]

    def imports(self) -> list[str]:
        steps = self.pipeline.steps
        used = ["ConfigurableResource", "Definitions", "In", "Out", "job", "op"]
        if any(names.done for names in self.ops):
            used.append("Nothing")
        if any(step.foreach for step in steps):
            used.append("DynamicOut")
        if self.pipeline.schedule:
            used.append("ScheduleDefinition")
        if self.executor_config():
            used.append("multiprocess_executor")
        used.sort(key=lambda name: (name[0].islower(), name))
        lines = []
        if any(TYPES[c.type] == "Any" for c in self.pipeline.context):
            lines += ["from typing import Any", ""]
        flat = f"from dagster import {', '.join(used)}"
        if len(flat) <= 88:
            return lines + [flat]
        return lines + ["from dagster import ("] + [f"    {name}," for name in used] + [")"]

    def context_def(self) -> str:
        p = self.pipeline
        lines = [f"class {self.context_class}(ConfigurableResource):",
                 f'    """The context of pipeline {p.name!r}, overridable per run in the run',
                 '    config under `resources: context: config:`."""']
        if p.context:
            lines.append("")
        for param in p.context:
            if reserved(param.name):
                continue
            prefix = f"{param.name}: {TYPES[param.type]} = "
            lines.append(field_line(prefix, param.default))
        return "\n".join(lines)

    def spec(self, names: OpNames) -> list[str]:
        step, code = names.step, names.step.code
        refs = {b.param: self.ref(names, b.ref) for b in passed(step)}
        args = [
            lit("name", step.name),
            arg("code", names.code),
            lit("location", f"<pipec step {step.name} from {step.span.path}>"),
            lit("module", module_name(step.span.path)),
            lit("function", code.function),
            lit("outputs", list(step.outputs)),
        ]
        if names.outs != list(step.outputs):
            args.append(lit("outs", names.outs))
        if names.done:
            args.append(lit("done", names.done))
        optional = [("refs", refs), ("foreach", step.foreach), ("foreach_key", step.foreach_key),
                    ("fallback", code.fallback),
                    ("predicate", code.predicate)]
        if step.when:
            optional.append(("when", {b.param: self.ref(names, b.ref) for b in step.when.params}))
        retry = step.retry
        if retry.retries:
            optional += [("retries", retry.retries), ("delay", float(retry.delay))]
            if retry.backoff != 1.0:
                optional.append(("backoff", float(retry.backoff)))
        if step.timeout is not None:
            optional.append(("timeout", float(step.timeout)))
        optional += [("files", list(step.file_outputs)), ("metrics", list(step.metrics))]
        args += [lit(key, value) for key, value in optional if value]
        return [f"{names.code} = {py_block_str(code.source)}"] + call(f"{names.spec} = _PipecStep", args)

    def ref(self, names: OpNames, ref: ir.Ref) -> list:
        if isinstance(ref, ir.OutputRef):
            return ["output", names.ins[ref.output]]
        if isinstance(ref, ir.ContextRef):
            return ["context", ref.key]
        if isinstance(ref, ir.StatusesRef):  # a final step: PC601 (or warned about)
            return ["default", None]
        return ["default", ref.value]

    def op_options(self, names: OpNames, ins: list[str], outs: list[tuple[str, str]],
                   after: bool = False) -> list[Arg]:
        options = []
        inputs = [(name, "In()") for name in ins]
        if after:
            inputs += [(name, "In(Nothing)") for name in names.after_ins.values()]
        if inputs:
            options.append(Arg("ins=", mapping(inputs)))
        # No outputs: `out={}`, or Dagster expects a "result".
        options.append(Arg("out=", mapping(outs)))
        step = names.step
        refs = [b.ref for b in step.params] + [b.ref for b in (step.when.params if step.when else ())]
        if any(isinstance(ref, ir.ContextRef) for ref in refs):
            options.append(arg("required_resource_keys", '{"context"}'))
        options.append(lit("tags", self.tags(step)))
        return options

    def tags(self, step: ir.Step) -> dict:
        tags: dict = {"pipec/step": step.name}
        container: dict = {}
        if step.image is not None:
            container["image"] = step.image
        limits: dict = {}
        if step.resources.cpu is not None:
            limits["cpu"] = step.resources.cpu
        if step.resources.memory is not None:
            limits["memory"] = step.resources.memory
        if step.resources.gpu:
            limits["nvidia.com/gpu"] = str(step.resources.gpu)
        if limits:
            container["resources"] = {"requests": dict(limits), "limits": limits}
        if container:
            tags["dagster-k8s/config"] = {"container_config": container}
        return tags

    def op_defs(self, names: OpNames) -> list[list[str]]:
        step, spec = names.step, names.spec
        optional = [(out, "Out(is_required=False)") for out in names.outs]
        if names.done:
            optional.append((names.done, "Out(Nothing, is_required=False)"))
        ins = list(names.ins.values())
        if not step.foreach:
            head = call("@op", self.op_options(names, ins, optional, after=True))
            return [head + [f"def {names.op}(context, **inputs):", f"    yield from {spec}.run(context, inputs)"]]
        items = call("@op", self.op_options(names, ins, [("items", "DynamicOut()"), ("count", "Out(is_required=False)")],
                                            after=True))
        items += [f"def {names.items}(context, **inputs):", f"    yield from {spec}.fan_out(context, inputs)"]
        each = call("@op", self.op_options(names, [names.element] + self.element_ins(names), [("result", "Out()")]))
        each += call(f"def {names.op}", [Arg(value="context"), Arg(value=names.element), Arg(value="**inputs")], 0, ":")
        each += [f"    return {spec}.run_element(context, {names.element}, inputs)"]
        collect = call("@op", [Arg("ins=", mapping([("results", "In()"), ("count", "In()")])),
                               Arg("out=", mapping(optional)), lit("tags", {"pipec/step": step.name})])
        collect += [f"def {names.collect}(results, count):", f"    yield from {spec}.collect(results)"]
        return [items, each, collect]

    def element_ins(self, names: OpNames) -> list[str]:
        """The inputs of a foreach step's mapped op besides the element."""
        step = names.step
        refs = [b.ref for b in passed(step) if b.param != step.foreach and isinstance(b.ref, ir.OutputRef)]
        return list(dict.fromkeys(names.ins[ref.output] for ref in refs))

    # -- the job --------------------------------------------------------------
    def executor_config(self) -> dict:
        """The run's concurrency limits, as Dagster's multiprocess executor
        takes them: `max_concurrent` ops of the run, and per foreach step
        (its ops tagged `pipec/step`) a tag concurrency limit."""
        config: dict = {}
        if self.pipeline.max_parallel is not None:
            config["max_concurrent"] = self.pipeline.max_parallel
        limits = [{"key": "pipec/step", "value": s.name, "limit": s.max_parallel}
                  for s in self.pipeline.steps if s.max_parallel is not None]
        if limits:
            config["tag_concurrency_limits"] = limits
        return config

    def job_def(self) -> list[str]:
        p = self.pipeline
        options = []
        if self.job_name != self.job:
            options.append(lit("name", self.job_name))
        if p.description:
            options.append(lit("description", p.description))
        # The pipeline's tags as one list: Dagster tag keys allow few
        # characters, and a tag must reach the output exactly.
        tags: dict = {"pipec/pipeline": p.name}
        if p.tags:
            tags["pipec/tags"] = list(p.tags)
        options.append(lit("tags", tags))
        executor = self.executor_config()
        if executor:
            flat = f"multiprocess_executor.configured({py_literal(executor)})"
            if width(f"{INDENT}executor_def={flat},") > LINE_LENGTH:  # as black splits it
                flat = f"multiprocess_executor.configured(\n{INDENT * 2}{py_literal(executor, 2)}\n{INDENT})"
            options.append(arg("executor_def", flat))
        lines = call("@job", options) + [f"def {self.job}():"]
        local = Names(sorted(self.names.taken) + ["element"])
        variables: dict[str, str] = {}
        for names in self.ops:
            lines += self.invoke(names, local, variables)
        return lines

    def invoke(self, names: OpNames, local: Names, variables: dict[str, str]) -> list[str]:
        """The lines of the job body that wire one step's ops."""
        step = names.step
        ins = [arg(names.ins[ref.output], variables[ref.output]) for ref in step.input_refs()]
        ins += [arg(name, variables[("done", upstream)]) for upstream, name in names.after_ins.items()]
        outs = [variables.setdefault(out, local.take(self.outs[out])) for out in step.outputs]
        if names.done:
            outs.append(variables.setdefault(("done", step.name), local.take(f"{names.op}_done")))
        target = f"{', '.join(outs)} = " if outs else ""
        if not step.foreach:
            return call(f"{target}{names.op}", ins, 1)
        items, count = local.take(f"{names.op}_items"), local.take(f"{names.op}_count")
        each, results = local.take(f"{names.op}_element"), local.take(f"{names.op}_results")
        by_input = {names.ins[ref.output]: variables[ref.output] for ref in step.input_refs()}
        element_args = [arg(names.element, "element")] + [arg(name, by_input[name]) for name in self.element_ins(names)]
        lines = call(f"{items}, {count} = {names.items}", ins, 1)
        lines += ["", f"    def {each}(element):"] + call(f"return {names.op}", element_args, 2) + [""]
        lines += [f"    {results} = {items}.map({each}).collect()"]
        lines += call(f"{target}{names.collect}", [arg("results", results), arg("count", count)], 1)
        return lines

    def definitions(self) -> list[str]:
        p = self.pipeline
        lines = ["defs = Definitions(", f"    jobs=[{self.job}],"]
        if p.schedule:
            cron = CRON_ALIASES.get(p.schedule, p.schedule)
            lines += ["    schedules=[", "        ScheduleDefinition("]
            lines += [f"            name={py_literal(self.job + '_schedule')},",
                      f"            cron_schedule={py_literal(cron)},",
                      f"            job={self.job},", f"            execution_timezone={py_literal(p.timezone or 'UTC')},", "        ),", "    ],"]
        store = f"_PipecIOManager(base_path={py_literal(self.artifact_root, 2, 'base_path=')})"
        lines += ["    resources={", f'        "context": {self.context_class}(),',
                  f'        "io_manager": {store},', "    },", ")"]
        return lines


def mapping(items: list[tuple[str, str]]) -> str:
    """A dict display of string keys and expressions, as black lays it out
    as an argument on its own line (flat, or one item per line)."""
    flat = "{" + ", ".join(f"{py_literal(key)}: {value}" for key, value in items) + "}"
    if len(flat) <= 79:
        return flat
    return "{\n" + "".join(f"        {py_literal(key)}: {value},\n" for key, value in items) + "    }"


def field_line(prefix: str, value: object) -> str:
    """`    name: type = value` in a class body, as black lays it out: a
    collection one item per line when too long; a too long scalar in
    parentheses on its own line (even when it does not fit there: black
    wraps the value of an annotated assignment in any case)."""
    text = py_literal(value, 1, prefix)
    line = INDENT + prefix + text
    if isinstance(value, (list, dict)) or width(line) <= LINE_LENGTH:
        return line
    return f"{INDENT}{prefix}(\n{INDENT * 2}{text}\n{INDENT})"


def camel(name: str) -> str:
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    return camel if camel[:1].isalpha() else "Pipeline" + camel


def module_name(path: str) -> str:
    parts = path[: -len(".py")].split("/") if path.endswith(".py") else path.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)
