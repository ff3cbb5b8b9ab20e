"""Kubeflow Pipelines v2: one PipelineSpec YAML (schemaVersion 2.1.0) per
pipeline, written with pyyaml from data.

Shape (that of the KFP SDK's own output, which `kfp.local` and the KFP
backend both run):

- context keys → root pipeline parameters, typed (an int stays an int);
- each step → a lightweight Python component: `sh -ec <fixed launcher>
  <program> <kfp requirement>` then `--executor_input {{$}}
  --function_to_execute pipec_task`; the program embeds the step's code
  (see `kubeflow_program`).  No value from the source is in the shell text;
- step outputs → artifacts (the runtime writes JSON when exact, else a
  pickle); context values → typed parameters, restored on the way in;
- `when` → a `<step>-when` component whose BOOLEAN output drives the
  step's `triggerPolicy.condition`; skips propagate because every step's
  condition also names the gates of the steps it consumes;
- `foreach` → a `<step>-items` component listing element indices, and a
  `parameterIterator` loop over them whose iterations read element i;
  the outputs are collected artifact lists, in element order;
- retries → `retryPolicy` (in the component for steps with a fallback,
  which must run after the last attempt); timeout → enforced in the
  component (KFP core has no per-task timeout); resources → resource
  limits and accelerator; cache → `cachingOptions`.

Settings (`[tool.pipec.kubeflow]`): `kfp_version` (the kfp the containers
install when they have none; default below) and `base_image`.
"""

from __future__ import annotations

import re
from importlib import resources


from pipec import ir
from pipec.backends import kubeflow_program as prog
from pipec.backends import yamlfmt
from pipec.backends.base import Backend, Emit, register
from pipec.backends.pyfmt import comment_lines, header_value

KFP_VERSION = "2.17.0"
BASE_IMAGE = "python:3.11"
ARTIFACT = {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}
CHANNEL = "pipelinechannel--"


def _launcher() -> str:
    return resources.files("pipec.templates").joinpath("kubeflow_launch.txt").read_text(encoding="utf-8")


def _kfp_name(name: str) -> str:
    """KFP-style name: lower case, dashes, no double dash."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text or "step"


class _Names:
    """Task names, unique within the pipeline, allocated in step order."""

    def __init__(self, pipeline: ir.Pipeline) -> None:
        self.task: dict[str, str] = {}
        taken: set[str] = set()
        for step in pipeline.steps:
            base = _kfp_name(step.name)
            name, n = base, 2
            while any(n_ in taken for n_ in (name, name + "-when", name + "-items")):
                name, n = f"{base}-{n}", n + 1
            taken.update((name, name + "-when", name + "-items"))
            self.task[step.name] = name


class _Builder:
    """Builds the PipelineSpec data of one pipeline."""

    def __init__(self, backend: "KubeflowBackend", pipeline: ir.Pipeline) -> None:
        self.backend = backend
        self.pipeline = pipeline
        self.names = _Names(pipeline)
        self.components: dict = {}
        self.executors: dict = {}
        self.tasks: dict = {}
        self.own_gates: dict[str, list[str]] = {}

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
    def args(self, bindings: tuple[ir.Binding, ...]) -> list[prog.Arg]:
        args = []
        for binding in bindings:
            ref = binding.ref
            if isinstance(ref, ir.ContextRef):
                param = self.pipeline.context_param(ref.key)
                args.append(prog.Arg(binding.param, "context", prog.context_type(param), param.default))
            elif isinstance(ref, ir.OutputRef):
                kind = "artifacts" if self.pipeline.step(ref.step).foreach else "artifact"
                args.append(prog.Arg(binding.param, kind))
        return args

    def sources(self, bindings: tuple[ir.Binding, ...]) -> dict[str, dict]:
        """Where each argument comes from, at the root DAG."""
        wiring = {}
        for binding in bindings:
            ref = binding.ref
            if isinstance(ref, ir.ContextRef):
                wiring[binding.param] = ("parameters", {"componentInputParameter": ref.key})
            elif isinstance(ref, ir.OutputRef):
                source = {"producerTask": self.names.task[ref.step], "outputArtifactKey": ref.output}
                wiring[binding.param] = ("artifacts", {"taskOutputArtifact": source})
        return wiring

    def producers(self, bindings: tuple[ir.Binding, ...]) -> list[str]:
        tasks = []
        for binding in bindings:
            if isinstance(binding.ref, ir.OutputRef):
                task = self.names.task[binding.ref.step]
                if task not in tasks:
                    tasks.append(task)
        return tasks

    @staticmethod
    def input_definitions(args: list[prog.Arg], gates: list[str], extra: dict | None = None) -> dict:
        parameters: dict = dict(extra or {})
        artifacts: dict = {}
        for arg in args:
            if arg.kind == "context":
                parameters[arg.name] = {"parameterType": prog.PARAM_TYPES[arg.context_type][1]}
            elif arg.kind in ("artifact", "artifacts"):
                spec = {"artifactType": ARTIFACT}
                if arg.kind == "artifacts":
                    spec["isArtifactList"] = True
                artifacts[arg.name] = spec
        for gate in gates:
            parameters[f"{CHANNEL}{gate}--Output"] = {"parameterType": "BOOLEAN"}
        out = {}
        if parameters:
            out["parameters"] = parameters
        if artifacts:
            out["artifacts"] = artifacts
        return {"inputDefinitions": out} if out else {}

    @staticmethod
    def task_inputs(wiring: dict[str, tuple[str, dict]], gates: list[str]) -> dict:
        inputs: dict = {}
        for name, (section, source) in wiring.items():
            inputs.setdefault(section, {})[name] = source
        for gate in gates:
            source = {"producerTask": gate, "outputParameterKey": "Output"}
            inputs.setdefault("parameters", {})[f"{CHANNEL}{gate}--Output"] = {"taskOutputParameter": source}
        return {"inputs": inputs} if inputs else {}

    # -- components and executors ---------------------------------------------
    def executor(self, label: str, step: ir.Step, title: str, text: str) -> None:
        kfp_version = str(self.backend.options.setting("kfp_version", KFP_VERSION))
        container = {
            "image": step.image or str(self.backend.options.setting("base_image", BASE_IMAGE)),
            "command": ["sh", "-ec", _launcher(), text, f"kfp=={kfp_version}"],
            "args": ["--executor_input", "{{$}}", "--function_to_execute", prog.ENTRY],
        }
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
        self.executors[label] = {"container": container}

    def component(self, name: str, step: ir.Step, definitions: dict, title: str, text: str) -> str:
        comp, label = f"comp-{name}", f"exec-{name}"
        self.components[comp] = {"executorLabel": label, **definitions}
        self.executor(label, step, title, text)
        return comp

    def task(self, name: str, comp: str, step: ir.Step, inputs: dict, depends: list[str], gates: list[str]) -> dict:
        spec = {"taskInfo": {"name": name}, "componentRef": {"name": comp}, **inputs}
        spec["cachingOptions"] = {"enableCache": bool(step.cache)}
        if depends:
            spec["dependentTasks"] = depends
        spec.update(self.condition(gates))
        return spec

    @staticmethod
    def retry_policy(step: ir.Step) -> dict:
        retry = step.retry
        if retry.max_attempts <= 1 or step.fallback is not None:
            return {}
        longest = retry.delay_before(retry.retries)
        policy = {
            "maxRetryCount": retry.retries,
            "backoffDuration": f"{retry.delay:g}s",
            "backoffFactor": float(retry.backoff),
            "backoffMaxDuration": f"{max(3600, int(longest) + 1)}s",
        }
        return {"retryPolicy": policy}

    # -- steps -----------------------------------------------------------------------
    def add_gate(self, step: ir.Step, gates: list[str]) -> str:
        name = self.names.task[step.name] + "-when"
        args = self.args(step.when.params)
        spec = prog.spec_literal(step, (), args)
        title = f"pipec: `when` predicate of step {step.name}"
        text = prog.program(title, spec, prog.predicate_body(args))
        outputs = {"outputDefinitions": {"parameters": {"Output": {"parameterType": "BOOLEAN"}}}}
        comp = self.component(name, step, {**self.input_definitions(args, gates), **outputs}, title, text)
        inputs = self.task_inputs(self.sources(step.when.params), gates)
        depends = self.producers(step.when.params) + gates
        self.tasks[name] = self.task(name, comp, step, inputs, depends, gates)
        return name

    def step_definitions(self, step: ir.Step, args: list[prog.Arg], gates: list[str], extra: dict | None) -> dict:
        outputs = {o: {"artifactType": ARTIFACT} for o in step.outputs}
        definitions = self.input_definitions(args, gates, extra)
        if outputs:
            definitions["outputDefinitions"] = {"artifacts": outputs}
        return definitions

    def add_step(self, step: ir.Step) -> None:
        gates = self.gates(step)
        if step.when is not None:
            gates = gates + [self.add_gate(step, gates)]
        self.own_gates[step.name] = gates
        if step.foreach is not None:
            self.add_foreach(step, gates)
            return
        name = self.names.task[step.name]
        args = self.args(step.params) + [prog.Arg(o, "output") for o in step.outputs]
        title = f"pipec: step {step.name}"
        text = prog.program(title, prog.spec_literal(step, step.outputs, args), prog.step_body(args, None))
        comp = self.component(name, step, self.step_definitions(step, args, gates, None), title, text)
        inputs = self.task_inputs(self.sources(step.params), gates)
        depends = self.producers(step.params) + gates
        spec = self.task(name, comp, step, inputs, depends, gates)
        spec.update(self.retry_policy(step))
        self.tasks[name] = spec

    def add_foreach(self, step: ir.Step, gates: list[str]) -> None:
        """`<t>-items` lists the element indices; the loop task `<t>` runs
        the step's component once per index (a DAG with a parameterIterator);
        its outputs are the collected artifact lists."""
        name = self.names.task[step.name]
        element = step.param(step.foreach)
        items = self.add_items(step, element, gates)
        args = self.args(step.params)
        outputs = [prog.Arg(o, "output") for o in step.outputs]
        index = prog.Arg("pipec_index", "index")
        title = f"pipec: step {step.name} (one element)"
        body = prog.step_body(args + [index] + outputs, step.foreach)
        text = prog.program(title, prog.spec_literal(step, step.outputs, args), body)
        extra = {"pipec_index": {"parameterType": "NUMBER_INTEGER"}}
        comp = self.component(name, step, self.step_definitions(step, args + outputs, [], extra), title, text)

        channel = f"{CHANNEL}{items}-Output"
        inner_inputs: dict = {"parameters": {"pipec_index": {"componentInputParameter": channel + "-loop-item"}}}
        loop_params = {channel: {"parameterType": "LIST"}, channel + "-loop-item": {"parameterType": "STRING"}}
        loop_inputs: dict = {
            "parameters": {channel: {"taskOutputParameter": {"producerTask": items, "outputParameterKey": "Output"}}}
        }
        loop_artifacts: dict = {}
        for arg, (section, source) in zip(args, self.sources(step.params).values()):
            outer = CHANNEL + arg.name
            key = "componentInputParameter" if section == "parameters" else "componentInputArtifact"
            inner_inputs.setdefault(section, {})[arg.name] = {key: outer}
            loop_inputs.setdefault(section, {})[outer] = source
            definition = self.input_definitions([arg], [])["inputDefinitions"]
            (loop_params if section == "parameters" else loop_artifacts)[outer] = definition[section][arg.name]
        inner = self.task(name, comp, step, {"inputs": inner_inputs}, [], [])
        inner.update(self.retry_policy(step))
        selectors = {
            o: {"artifactSelectors": [{"producerSubtask": name, "outputArtifactKey": o}]} for o in step.outputs
        }
        dag: dict = {"tasks": {name: inner}}
        if selectors:
            dag["outputs"] = {"artifacts": selectors}
        loop = {"dag": dag, "inputDefinitions": {"parameters": loop_params}}
        if loop_artifacts:
            loop["inputDefinitions"]["artifacts"] = loop_artifacts
        if step.outputs:
            lists = {o: {"artifactType": ARTIFACT, "isArtifactList": True} for o in step.outputs}
            loop["outputDefinitions"] = {"artifacts": lists}
        self.components[f"comp-{name}-loop"] = loop
        depends = [items] + [t for t in self.producers(step.params) if t != items]
        self.tasks[name] = {
            "taskInfo": {"name": name},
            "componentRef": {"name": f"comp-{name}-loop"},
            "inputs": loop_inputs,
            "dependentTasks": depends,
            "parameterIterator": {"itemInput": channel + "-loop-item", "items": {"inputParameter": channel}},
        }

    def add_items(self, step: ir.Step, element: ir.Binding, gates: list[str]) -> str:
        name = self.names.task[step.name] + "-items"
        args = self.args((element,))
        title = f"pipec: element indices of foreach step {step.name}"
        spec = prog.spec_literal(step, (), args)
        text = prog.program(title, spec, prog.items_body(args[0]))
        outputs = {"outputDefinitions": {"parameters": {"Output": {"parameterType": "LIST"}}}}
        comp = self.component(name, step, {**self.input_definitions(args, gates), **outputs}, title, text)
        inputs = self.task_inputs(self.sources((element,)), gates)
        self.tasks[name] = self.task(name, comp, step, inputs, self.producers((element,)) + gates, gates)
        return name

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
        info = {"name": _kfp_name(self.pipeline.name), "displayName": self.pipeline.name}
        if self.pipeline.description:
            info["description"] = self.pipeline.description
        return {
            "pipelineInfo": info,
            "schemaVersion": "2.1.0",
            "root": {"dag": {"tasks": self.tasks}, **self.root_inputs()},
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
    SUPPORTS_SCHEDULE = False

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
        ]
        for key, value in metadata:
            if value is not None:
                self.note_metadata(pipeline, f"pipeline {key} {header_value(value)}")
                lines.append(f"{key}: {header_value(value)}")
        out = []
        for line in lines:
            out += comment_lines(line)
        return out

    def emit(self, pipeline: ir.Pipeline) -> Emit:
        from pipec.backends.kubeflow_check import check_references

        spec = _Builder(self, pipeline).build()
        problems = check_references(spec)
        if problems:
            raise AssertionError("pipec wrote an inconsistent PipelineSpec: " + "; ".join(problems))
        text = "\n".join(self.header(pipeline)) + "\n" + dump(spec)
        return Emit(self.filename(pipeline), text)
