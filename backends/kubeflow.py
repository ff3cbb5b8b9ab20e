"""Kubeflow Pipelines v2: one PipelineSpec YAML (schemaVersion 2.1.0) per
pipeline, written with pyyaml from data.

Shape (that of the KFP SDK's own output, which `kfp.local` and the KFP
backend both run):

- context keys → root pipeline parameters, typed (an int stays an int);
- each step → a lightweight Python component whose input `pipec-spec`
  defaults to the step's code and options, as JSON text that holds no KFP
  placeholder (KFP resolves `{{$...}}` in commands and string parameters:
  code reaches the task byte for byte).  All components run one executor
  per image and resources: `sh -ec <fixed launcher> <program> <kfp
  requirement>` then `--executor_input {{$}} --function_to_execute
  pipec_task`, the program being pipec's runtime, once per pipeline (see
  `kubeflow_program`), so a spec stays smaller than the KFP SDK's.  No
  value from the source is in the shell text or the program;
- context values → typed parameters (lists, dicts and None as JSON text in
  STRING parameters: KFP's LIST/STRUCT values are protobuf, every number a
  double and a run-time dict's keys sorted);
- step outputs → artifacts (the runtime writes JSON when exact, else a
  pickle), except the one output of a non-foreach step annotated `-> int`,
  `-> float`, `-> str` or `-> bool`: that one is an output parameter
  (NUMBER_INTEGER, NUMBER_DOUBLE, STRING, BOOLEAN) read by consumers
  through `taskOutputParameter`, plus a companion artifact
  `<output>_pipec_raw`.  The annotation is a promise Python does not keep,
  and the local run passes whatever the step returns: so the runtime checks
  the value, and when KFP cannot carry it exactly as that type (an int from
  `-> float`, a bool from `-> int`, an int beyond 2**53, NaN, a str
  subclass, a non-UTF-8 or > 64 KiB string, anything else) the value goes
  into the raw artifact (JSON or pickle) and the parameter holds the type's
  zero value; otherwise the raw artifact is empty.  Readers take the raw
  artifact when it is not empty, else the parameter with its declared type
  restored (`int(3.0)`).  Every value thus arrives as the local run
  passes it.  `-> list` / `-> dict` outputs stay artifacts: KFP's
  LIST/STRUCT parameters turn every number into a float, the annotation
  says nothing about the elements' types, and a JSON-in-STRING parameter
  would be exact but unbounded in size in the metadata store;
- `when` → a `<step>-when` component whose BOOLEAN output drives the
  step's `triggerPolicy.condition`; skips propagate because every step's
  condition also names the gates of the steps it consumes;
- `foreach` → a `<step>-items` component listing element indices, and a
  `parameterIterator` loop over them whose iterations read element i;
  the outputs are collected artifact lists, in element order.  A gated
  foreach step (own `when` or a gated upstream) has both tasks inside a
  condition DAG `<step>-if` carrying the trigger condition (as the SDK
  nests `dsl.ParallelFor` in `dsl.If`; a loop task cannot carry one), so
  a false gate skips the loop and its consumers and the run succeeds.  A
  foreach step that reads an output parameter has them inside a plain DAG
  `<step>-group` (kfp.local 2.17 replaces every task output parameter a
  loop task reads with the loop item);
- retries → `retryPolicy` (in the component for steps with a fallback,
  which must run after the last attempt); timeout → enforced in the
  component (KFP core has no per-task timeout); resources → resource
  limits and accelerator; cache → `cachingOptions`.

Settings (`[tool.pipec.kubeflow]`): `kfp_version` (the kfp the containers
install when they have none; default below) and `base_image`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources


from pipec import ir
from pipec.backends import kubeflow_anyway as anyway
from pipec.backends import kubeflow_limits
from pipec.backends import kubeflow_program as prog
from pipec.backends import yamlfmt
from pipec.backends.base import Backend, Emit, register
from pipec.backends.pyfmt import comment_lines, header_value

KFP_VERSION = "2.17.0"
BASE_IMAGE = "python:3.11"
ARTIFACT = {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}


def _artifact(kind: str) -> dict:
    """The artifact type of a typed output: `system.Model`, `system.Metrics`..."""
    return {"schemaTitle": f"system.{kind}", "schemaVersion": "0.0.1"}
CHANNEL = "pipelinechannel--"
# The KFP v2 backend keeps a run's spec in an Argo workflow annotation of at
# most this many bytes (kubeflow/pipelines#10968).
ANNOTATION_CAP = 262_144


@functools.lru_cache(maxsize=None)
def _launcher() -> str:
    return resources.files("pipec.templates").joinpath("kubeflow_launch.txt").read_text(encoding="utf-8")


def _kfp_name(name: str) -> str:
    """KFP-style name: lower case, dashes, no double dash."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text or "step"


# The tasks a step may need: itself, its gate, its element list, the DAG
# around a foreach step (a condition, or a plain group).
_SUFFIXES = ("", "-when", "-items", "-if", "-group")


class _Names:
    """Task names, unique within the pipeline, allocated in step order."""

    def __init__(self, pipeline: ir.Pipeline) -> None:
        self.task: dict[str, str] = {}
        # The exit handler's group, when the pipeline has a final step.
        taken: set[str] = {anyway.EXIT_HANDLER} if any(s.final for s in pipeline.steps) else set()
        for step in pipeline.steps:
            base = _kfp_name(step.name)
            name, n = base, 2
            while any(name + suffix in taken for suffix in _SUFFIXES):
                name, n = f"{base}-{n}", n + 1
            taken.update(name + suffix for suffix in _SUFFIXES)
            self.task[step.name] = name


@dataclass(frozen=True)
class _In:
    """One input of a component: its `key`, `section` ("parameters" or
    "artifacts"), its definition, and where its value comes from in the root
    DAG."""

    key: str
    section: str
    definition: dict
    source: dict


def _fresh(base: str, taken: set[str]) -> str:
    """`base`, or `base` with underscores appended, not in `taken` (added)."""
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _channelled(ins: list[_In]) -> list[_In]:
    """`ins` as a nested DAG reads them: from the enclosing DAG's input
    `pipelinechannel--<key>`."""
    out = []
    for i in ins:
        kind = "componentInputParameter" if i.section == "parameters" else "componentInputArtifact"
        out.append(_In(i.key, i.section, i.definition, {kind: CHANNEL + i.key}))
    return out


def _channels(ins: list[_In], sources: list[_In]) -> list[_In]:
    """The `pipelinechannel--<key>` inputs of a nested DAG carrying `ins`,
    fed from `sources` (the same inputs as the enclosing DAG reads them)."""
    return [_In(CHANNEL + i.key, i.section, i.definition, s.source) for i, s in zip(ins, sources)]


class _Builder:
    """Builds the PipelineSpec data of one pipeline."""

    def __init__(self, backend: "KubeflowBackend", pipeline: ir.Pipeline) -> None:
        self.backend = backend
        self.pipeline = pipeline
        self.names = _Names(pipeline)
        self.steps = {step.name: step for step in pipeline.steps}
        self.components: dict = {}
        self.executors: dict = {}
        self.tasks: dict = {}
        self.own_gates: dict[str, list[str]] = {}
        # The root task that carries each step's outputs (`<t>`, or `<t>-if`
        # for a foreach step nested in a condition), and the raw artifact
        # key of each step whose output travels as a parameter.
        self.output_task: dict[str, str] = {}
        self.raw_output: dict[str, str] = {}
        self.launcher = _launcher()
        self.executor_labels: dict[str, str] = {}
        self.used: set[str] = set()  # optional runtime features the program needs
        self.kfp_requirement = "kfp==" + str(backend.options.setting("kfp_version", KFP_VERSION))
        self.base_image = str(backend.options.setting("base_image", BASE_IMAGE))
        self.runtime = backend.runtime

    # -- gates (skip propagation) -------------------------------------------
    def gates(self, step: ir.Step) -> list[str]:
        """Gate tasks whose false (or skipped) value skips the upstream of
        `step`, in pipeline order."""
        gates: list[str] = []
        for upstream in step.upstream:
            for gate in self.own_gates[upstream]:
                if gate not in gates:
                    gates.append(gate)
        return gates

    @staticmethod
    def condition(gates: list[str]) -> dict:
        terms = [f"inputs.parameter_values['{CHANNEL}{g}--Output'] == true" for g in gates]
        return {"triggerPolicy": {"condition": " && ".join(terms)}} if terms else {}

    # -- arguments and their wiring ---------------------------------------------
    def wire(self, bindings: tuple[ir.Binding, ...], taken: set[str]) -> tuple[list[prog.Arg], list[_In]]:
        """The wrapper arguments for `bindings` and the component inputs
        that feed them (wired at the root DAG).  `taken`: the names of the
        component's wrapper parameters, to which new names are added."""
        args: list[prog.Arg] = []
        ins: list[_In] = []
        for binding in bindings:
            ref, name = binding.ref, binding.param
            if isinstance(ref, ir.ContextRef):
                param = self.pipeline.context_param(ref.key)
                ctype = prog.context_type(param)
                args.append(prog.Arg(name, "context", ctype))
                definition = {"parameterType": prog.PARAM_TYPES[ctype][1]}
                ins.append(_In(name, "parameters", definition, {"componentInputParameter": ref.key}))
            elif isinstance(ref, ir.OutputRef):
                producer = self.steps[ref.step]
                task = self.output_task[ref.step]
                kind = prog.parameter_kind(producer)
                if kind is not None:
                    raw = _fresh(name + "_pipec_raw", taken)
                    args.append(prog.Arg(name, "param", kind, raw=raw))
                    source = {"producerTask": task, "outputParameterKey": ref.output}
                    definition = {"parameterType": prog.PARAM_TYPES[kind][1]}
                    ins.append(_In(name, "parameters", definition, {"taskOutputParameter": source}))
                    source = {"producerTask": task, "outputArtifactKey": self.raw_output[ref.step]}
                    ins.append(_In(raw, "artifacts", {"artifactType": ARTIFACT}, {"taskOutputArtifact": source}))
                elif ref.output in dict(producer.files):
                    kind = dict(producer.files)[ref.output]
                    args.append(prog.Arg(name, "file", kind))
                    self.used.add("artifacts")
                    source = {"producerTask": task, "outputArtifactKey": ref.output}
                    ins.append(_In(name, "artifacts", {"artifactType": _artifact(kind)}, {"taskOutputArtifact": source}))
                else:
                    many = producer.foreach is not None
                    args.append(prog.Arg(name, "artifacts" if many else "artifact"))
                    definition = {"artifactType": ARTIFACT, "isArtifactList": True} if many else {"artifactType": ARTIFACT}
                    source = {"producerTask": task, "outputArtifactKey": ref.output}
                    ins.append(_In(name, "artifacts", definition, {"taskOutputArtifact": source}))
        return args, ins

    def producers(self, bindings: tuple[ir.Binding, ...]) -> list[str]:
        tasks = []
        for binding in bindings:
            if isinstance(binding.ref, ir.OutputRef):
                task = self.output_task[binding.ref.step]
                if task not in tasks:
                    tasks.append(task)
        return tasks

    def step_producers(self, step: ir.Step) -> list[str]:
        """The tasks of the steps whose outputs `step` takes, then of its
        `after` steps (ordering only)."""
        tasks = self.producers(step.params)
        for name in step.after:
            task = self.output_task[name]
            if task not in tasks:
                tasks.append(task)
        return tasks

    @staticmethod
    def input_definitions(ins: list[_In], gates: list[str], extra: dict | None = None) -> dict:
        out: dict = {}
        if extra:
            out["parameters"] = dict(extra)
        for i in ins:
            out.setdefault(i.section, {})[i.key] = i.definition
        for gate in gates:
            out.setdefault("parameters", {})[f"{CHANNEL}{gate}--Output"] = {"parameterType": "BOOLEAN"}
        return {"inputDefinitions": out} if out else {}

    @staticmethod
    def task_inputs(ins: list[_In], gates: list[str]) -> dict:
        inputs: dict = {}
        for i in ins:
            inputs.setdefault(i.section, {})[i.key] = i.source
        for gate in gates:
            source = {"producerTask": gate, "outputParameterKey": "Output"}
            inputs.setdefault("parameters", {})[f"{CHANNEL}{gate}--Output"] = {"taskOutputParameter": source}
        return {"inputs": inputs} if inputs else {}

    # -- components and executors ---------------------------------------------
    def executor(self, step: ir.Step) -> str:
        """The label of the executor that runs `step`'s components: one per
        distinct image and resources, all running the pipeline's program."""
        container: dict = {"image": step.image or self.base_image}
        limits = {}
        if step.resources.cpu is not None:
            limits["resourceCpuLimit"] = str(step.resources.cpu)
        if step.resources.memory is not None:
            limits["resourceMemoryLimit"] = str(step.resources.memory)
        if step.resources.gpu:
            count, kind = str(step.resources.gpu), "nvidia.com/gpu"
            limits["accelerator"] = {"count": count, "type": kind, "resourceCount": count, "resourceType": kind}
        if limits:
            container["resources"] = limits
        key = repr(container)
        if key not in self.executor_labels:
            n = len(self.executor_labels)
            self.executor_labels[key] = label = "exec-pipec" + (f"-{n + 1}" if n else "")
            self.executors[label] = {"container": container}
        self.used.update(prog.features(step))
        return self.executor_labels[key]

    def component(self, name: str, step: ir.Step, definitions: dict, spec: dict) -> str:
        """Component `comp-<name>`: `definitions`, plus the input
        `pipec-spec` whose default is `spec` (the step's code and options)
        as JSON text that KFP passes through unchanged."""
        comp = f"comp-{name}"
        inputs = definitions.setdefault("inputDefinitions", {})
        inputs.setdefault("parameters", {})[prog.SPEC_INPUT] = {
            "parameterType": "STRING",
            "defaultValue": prog.safe_json(spec),
            "isOptional": True,
        }
        self.components[comp] = {"executorLabel": self.executor(step), **definitions}
        return comp

    def task(self, name: str, comp: str, step: ir.Step, inputs: dict, depends: list[str], gates: list[str]) -> dict:
        spec = {"taskInfo": {"name": name}, "componentRef": {"name": comp}, **inputs}
        # KFP's cache never expires: a step whose cache does is not cached
        # (re-running is always right; see check_capabilities' note).
        spec["cachingOptions"] = {"enableCache": bool(step.cache and step.cache_ttl is None)}
        if depends:
            spec["dependentTasks"] = depends
        spec.update(self.condition(gates))
        return spec

    @staticmethod
    def retry_policy(step: ir.Step) -> dict:
        retry = step.retry
        if retry.max_attempts <= 1 or step.fallback is not None:
            return {}
        longest = kubeflow_limits.longest_delay(retry)
        policy = {
            "maxRetryCount": retry.retries,
            "backoffDuration": kubeflow_limits.duration(retry.delay),
            "backoffFactor": float(retry.backoff),
            "backoffMaxDuration": f"{max(3600, longest + 1)}s",
        }
        return {"retryPolicy": policy}

    # -- steps -----------------------------------------------------------------------
    def add_gate(self, step: ir.Step, gates: list[str]) -> str:
        name = self.names.task[step.name] + "-when"
        args, ins = self.wire(step.when.params, {b.param for b in step.when.params})
        spec = prog.spec_literal(step, "predicate", args)
        outputs = {"outputDefinitions": {"parameters": {"Output": {"parameterType": "BOOLEAN"}}}}
        comp = self.component(name, step, {**self.input_definitions(ins, gates), **outputs}, spec)
        inputs = self.task_inputs(ins, gates)
        depends = self.producers(step.when.params) + gates
        self.tasks[name] = self.task(name, comp, step, inputs, depends, gates)
        return name

    @staticmethod
    def taken(step: ir.Step) -> set[str]:
        """The wrapper parameter names a step's component starts with."""
        return {b.param for b in step.params} | set(step.outputs) | {"pipec_index"}

    def outputs(self, step: ir.Step, taken: set[str]) -> tuple[list[prog.Arg], dict]:
        """The wrapper's output arguments and the component's outputDefinitions."""
        kind = prog.parameter_kind(step)
        if kind is None:
            files = dict(step.files)
            args = [prog.Arg(o, "file_output", files[o]) if o in files else prog.Arg(o, "output") for o in step.outputs]
            artifacts = {o: {"artifactType": _artifact(files.get(o, "Artifact"))} for o in step.outputs}
            for output in step.metrics:  # shown in the KFP UI: a system.Metrics artifact
                key = _fresh(output + "_metrics", taken)
                args.append(prog.Arg(key, "metrics", raw=output))
                artifacts[key] = {"artifactType": _artifact("Metrics")}
            if step.files or step.metrics:
                self.used.add("artifacts")
            return args, ({"outputDefinitions": {"artifacts": artifacts}} if artifacts else {})
        (output,) = step.outputs
        raw = self.raw_output[step.name] = _fresh(output + "_pipec_raw", taken)
        definitions = {
            "parameters": {output: {"parameterType": prog.PARAM_TYPES[kind][1]}},
            "artifacts": {raw: {"artifactType": ARTIFACT}},
        }
        return [prog.Arg(output, "param_output", kind, raw=raw)], {"outputDefinitions": definitions}

    def add_step(self, step: ir.Step) -> None:
        # A step that runs anyway runs whatever its upstream steps did.
        runs_anyway = anyway.runs_anyway(self.pipeline, step)
        gates = [] if runs_anyway else self.gates(step)
        if step.when is not None:
            gates = gates + [self.add_gate(step, gates)]
        self.own_gates[step.name] = gates
        if step.foreach is not None:
            self.add_foreach(step, gates)
            return
        name = self.output_task[step.name] = self.names.task[step.name]
        taken = self.taken(step)
        args, ins = self.wire(step.params, taken)
        outputs, output_definitions = self.outputs(step, taken)
        spec = prog.spec_literal(step, "step", args + outputs)
        comp = self.component(name, step, {**self.input_definitions(ins, gates), **output_definitions}, spec)
        depends = self.step_producers(step) + gates
        spec = self.task(name, comp, step, self.task_inputs(ins, gates), depends, gates)
        spec.update(self.retry_policy(step))
        if runs_anyway and not step.final:  # as the KFP SDK writes ignore_upstream_failure()
            spec["triggerPolicy"] = dict(anyway.ALL_COMPLETED)
        self.tasks[name] = spec

    def add_foreach(self, step: ir.Step, gates: list[str]) -> None:
        """`<t>-items` lists the element indices; the loop task `<t>` runs
        the step's component once per index (a DAG with a parameterIterator);
        its outputs are the collected artifact lists.  When the step is
        gated (its own `when`, or upstream), both sit in a condition DAG
        `<t>-if` that carries the trigger condition, as the KFP SDK nests
        `dsl.ParallelFor` in `dsl.If`: a loop task cannot carry one.  When
        the step reads an output parameter of another task, both sit in a
        plain DAG `<t>-group`: kfp.local (2.17) hands a loop task the loop
        item in place of every task output parameter it reads, so the loop
        must read those from its enclosing DAG's inputs."""
        name = self.names.task[step.name]
        taken = self.taken(step)
        args, ins = self.wire(step.params, taken)
        # No element argument: the list is a literal of the spec's constants.
        element = next((a for a in args if a.name == step.foreach), None)
        element_keys = {element.name, element.raw} if element else set()
        element_ins = [i for i in ins if i.key in element_keys]
        nested = bool(gates) or any("taskOutputParameter" in i.source for i in ins)
        # Inputs as the DAG holding the items and loop tasks reads them.
        scope_ins = _channelled(ins) if nested else ins
        scope_element = [s for s, i in zip(scope_ins, ins) if i.key in element_keys]
        scope_tasks: dict = {}

        # <t>-items: the element indices.
        items = name + "-items"
        spec = prog.spec_literal(step, "items", [element] if element else [])
        outputs = {"outputDefinitions": {"parameters": {"Output": {"parameterType": "LIST"}}}}
        comp = self.component(items, step, {**self.input_definitions(element_ins, []), **outputs}, spec)
        depends = [] if nested else self.producers((step.param(step.foreach),))
        scope_tasks[items] = self.task(items, comp, step, self.task_inputs(scope_element, []), depends, [])

        # The component run once per element.
        output_args = [prog.Arg(o, "output") for o in step.outputs]
        index = prog.Arg("pipec_index", "index")
        spec = prog.spec_literal(step, "step", args + [index] + output_args)
        extra = {"pipec_index": {"parameterType": "NUMBER_INTEGER"}}
        definitions = self.input_definitions(ins, [], extra)
        if step.outputs:
            definitions["outputDefinitions"] = {"artifacts": {o: {"artifactType": ARTIFACT} for o in step.outputs}}
        comp = self.component(name, step, definitions, spec)

        # The loop: a DAG over the indices whose one task reads element i.
        channel = f"{CHANNEL}{items}-Output"
        inner_ins = [_In("pipec_index", "parameters", {}, {"componentInputParameter": channel + "-loop-item"})]
        inner = self.task(name, comp, step, self.task_inputs(inner_ins + _channelled(ins), []), [], [])
        inner.update(self.retry_policy(step))
        loop_channels = _channels(ins, scope_ins)
        loop_definitions = self.input_definitions(loop_channels, []).get("inputDefinitions", {})
        loop_definitions.setdefault("parameters", {}).update(
            {channel: {"parameterType": "LIST"}, channel + "-loop-item": {"parameterType": "STRING"}}
        )
        dag: dict = {"tasks": {name: inner}}
        loop: dict = {"dag": dag, "inputDefinitions": loop_definitions}
        if step.outputs:
            dag["outputs"] = {"artifacts": self.selectors(name, step.outputs)}
            loop["outputDefinitions"] = {"artifacts": self.artifact_lists(step.outputs)}
        self.components[f"comp-{name}-loop"] = loop
        loop_inputs = self.task_inputs(loop_channels, [])
        loop_inputs.setdefault("inputs", {}).setdefault("parameters", {})[channel] = {
            "taskOutputParameter": {"producerTask": items, "outputParameterKey": "Output"}
        }
        scope_tasks[name] = {
            "taskInfo": {"name": name},
            "componentRef": {"name": f"comp-{name}-loop"},
            **loop_inputs,
            "dependentTasks": [items] + ([] if nested else [t for t in self.step_producers(step) if t != items]),
            "parameterIterator": {"itemInput": channel + "-loop-item", "items": {"inputParameter": channel}},
        }
        limit = self.pipeline.element_limit(step)
        if limit is not None:  # as the KFP SDK writes `dsl.ParallelFor(..., parallelism=n)`
            scope_tasks[name]["iteratorPolicy"] = {"parallelismLimit": limit}
        if not nested:
            self.tasks.update(scope_tasks)
            self.output_task[step.name] = name
            return

        # <t>-if (a condition) or <t>-group: the DAG around both.
        wrapper = self.output_task[step.name] = name + ("-if" if gates else "-group")
        outer = _channels(ins, ins)
        dag = {"tasks": scope_tasks}
        cond: dict = {"dag": dag, **self.input_definitions(outer, gates)}
        if step.outputs:
            dag["outputs"] = {"artifacts": self.selectors(name, step.outputs)}
            cond["outputDefinitions"] = {"artifacts": self.artifact_lists(step.outputs)}
        self.components[f"comp-{wrapper}"] = cond
        self.tasks[wrapper] = {
            "taskInfo": {"name": wrapper},
            "componentRef": {"name": f"comp-{wrapper}"},
            **self.task_inputs(outer, gates),
            "dependentTasks": self.step_producers(step) + gates,
            **self.condition(gates),
        }

    @staticmethod
    def selectors(task: str, outputs: tuple[str, ...]) -> dict:
        return {o: {"artifactSelectors": [{"producerSubtask": task, "outputArtifactKey": o}]} for o in outputs}

    @staticmethod
    def artifact_lists(outputs: tuple[str, ...]) -> dict:
        return {o: {"artifactType": ARTIFACT, "isArtifactList": True} for o in outputs}

    # -- the whole spec --------------------------------------------------------------
    def root_inputs(self) -> dict:
        parameters = {}
        for param in self.pipeline.context:
            parameters[param.name] = {
                "parameterType": prog.PARAM_TYPES[prog.context_type(param)][1],
                "defaultValue": prog.context_default(param),
                "isOptional": True,
            }
        return {"inputDefinitions": {"parameters": parameters}} if parameters else {}

    def build(self) -> dict:
        for step in self.pipeline.steps:
            self.add_step(step)
        root_inputs = self.root_inputs()
        final = anyway.exit_handler(self.pipeline)
        if final is not None:  # as the KFP SDK writes dsl.ExitHandler
            parameters = root_inputs["inputDefinitions"]["parameters"] if root_inputs else {}
            self.tasks, group = anyway.wrap(self.tasks, self.names.task[final.name], parameters)
            self.components[f"comp-{anyway.EXIT_HANDLER}"] = group
        program = prog.program(self.used, image=self.runtime == "image")
        command = ["sh", "-ec", self.launcher, program, self.kfp_requirement]
        args = ["--executor_input", "{{$}}", "--function_to_execute", prog.ENTRY]
        for executor in self.executors.values():
            executor["container"].update(command=command, args=args)
        info = {"name": _kfp_name(self.pipeline.name), "displayName": self.pipeline.name}
        if self.pipeline.description:
            info["description"] = self.pipeline.description
        return {
            "pipelineInfo": info,
            "schemaVersion": "2.1.0",
            "root": {"dag": {"tasks": self.tasks}, **root_inputs},
            "components": self.components,
            "deploymentSpec": {"executors": self.executors},
        }


def dump(spec: dict) -> str:
    return yamlfmt.dump(spec, sort_keys=True)


@register
class KubeflowBackend(Backend):
    name = "kubeflow"
    aliases = ("kfp",)
    extension = ".yaml"
    SETTINGS = {"kfp_version": str, "base_image": str, "runtime": str}
    # Where the component programs get pipec's task runtime: carried in the
    # spec (self-contained), or imported from pipec installed in the image.
    RUNTIMES = ("embedded", "image")
    SUPPORTS_SCHEDULE = False
    # all_done and the final step where KFP runs them faithfully, the rest
    # PC601 (see kubeflow_anyway).

    def check_capabilities(self, pipeline: ir.Pipeline) -> None:
        super().check_capabilities(pipeline)
        for step in pipeline.steps:
            if step.final:
                problems, exit_task = anyway.final_problems(step)
                consequence = "it gets None" if exit_task else "it runs as an ordinary step"
                for feature in problems:
                    self.unsupported(step, feature, "final", consequence)
            else:
                for feature in anyway.trigger_problems(pipeline, step):
                    self.unsupported(step, feature, "trigger", "the step runs only after its upstream steps succeeded")

    def header(self, pipeline: ir.Pipeline) -> list[str]:
        lines = [
            f"Generated by pipec from {pipeline.source_path} (pipeline {pipeline.name}).",
            "Do not edit: edit the source and recompile.",
        ]
        metadata = [
            ("schedule", pipeline.schedule),
            ("owner", pipeline.owner),
            ("tags", list(pipeline.tags) if pipeline.tags else None),
            ("version", pipeline.version),
            ("timezone", pipeline.timezone),
            ("max_parallel", pipeline.max_parallel),
        ]
        for key, value in metadata:
            if value is not None:
                self.note_metadata(pipeline, f"the pipeline's {key} ({header_value(value)})")
                lines.append(f"{key}: {header_value(value)}")
        expiring = [s.name for s in pipeline.steps if s.cache and s.cache_ttl is not None]
        if expiring:
            what = "cache expiry (cache_ttl) of step(s) " + ", ".join(expiring)
            self.note_metadata(pipeline, what + ": KFP's cache never expires, so they are not cached")
            lines.append(f"not cached (KFP's cache never expires): {', '.join(expiring)}")
        out = []
        for line in lines:
            out += comment_lines(line)
        return out

    def __init__(self, options, diagnostics) -> None:
        super().__init__(options, diagnostics)
        self.runtime = str(self.options.setting("runtime", self.RUNTIMES[0]))
        if self.runtime not in self.RUNTIMES:
            expected = " or ".join(repr(c) for c in self.RUNTIMES)
            self.diagnostics.add("PC614", None, key="runtime", target=self.name, expected=expected, got=repr(self.runtime))
            self.runtime = self.RUNTIMES[0]

    def emit(self, pipeline: ir.Pipeline) -> Emit:
        from pipec.backends.kubeflow_check import check_references

        kubeflow_limits.check(pipeline, _kfp_name(pipeline.name), self.diagnostics)
        spec = _Builder(self, pipeline).build()
        problems = check_references(spec)
        if problems:
            raise AssertionError("pipec wrote an inconsistent PipelineSpec: " + "; ".join(problems))
        text = "\n".join(self.header(pipeline)) + "\n" + dump(spec)
        size = len(text.encode("utf-8"))
        if size > ANNOTATION_CAP:
            self.diagnostics.add("PC611", pipeline.span, pipeline=pipeline.name, size=size, limit=ANNOTATION_CAP)
        return Emit(self.filename(pipeline), text)
