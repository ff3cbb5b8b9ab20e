"""Reference checks on a PipelineSpec (as data) that the kfp loader does not
do: every component, executor, producer task, dependent task, component
input and task input named in the spec exists where it must."""

from __future__ import annotations

import re

_CONDITION_REF = re.compile(r"inputs\.parameter_values\['([^']+)'\]")


def _definitions(component: dict, side: str, section: str) -> dict:
    return component.get(side, {}).get(section, {})


def _check_dag(spec: dict, where: str, component: dict, problems: list[str]) -> None:
    components = spec.get("components", {})
    tasks = component["dag"].get("tasks", {})
    own_params = _definitions(component, "inputDefinitions", "parameters")
    own_artifacts = _definitions(component, "inputDefinitions", "artifacts")
    for name, task in tasks.items():
        at = f"{where} task {name!r}"
        ref = task.get("componentRef", {}).get("name")
        target = components.get(ref)
        if target is None:
            problems.append(f"{at}: component {ref!r} does not exist")
            continue
        if task.get("taskInfo", {}).get("name") != name:
            problems.append(f"{at}: taskInfo.name differs from the task's key")
        for dep in task.get("dependentTasks", []):
            if dep not in tasks or dep == name:
                problems.append(f"{at}: dependent task {dep!r} does not exist")
        inputs = task.get("inputs", {})
        for section, own in (("parameters", own_params), ("artifacts", own_artifacts)):
            declared = _definitions(target, "inputDefinitions", section)
            for key, source in inputs.get(section, {}).items():
                if key not in declared:
                    problems.append(f"{at}: input {key!r} is not an input of {ref!r}")
                _check_source(at, key, source, tasks, components, own, task, problems)
        iterator = task.get("parameterIterator")
        if iterator:
            if iterator["items"]["inputParameter"] not in inputs.get("parameters", {}):
                problems.append(f"{at}: iterator items are not an input of the task")
            if iterator["itemInput"] not in _definitions(target, "inputDefinitions", "parameters"):
                problems.append(f"{at}: iterator item input is not an input of {ref!r}")
        condition = task.get("triggerPolicy", {}).get("condition", "")
        for key in _CONDITION_REF.findall(condition):
            if key not in inputs.get("parameters", {}):
                problems.append(f"{at}: condition names {key!r}, which is not an input of the task")
    for key, output in component["dag"].get("outputs", {}).get("artifacts", {}).items():
        for selector in output.get("artifactSelectors", []):
            if selector["producerSubtask"] not in tasks:
                problems.append(f"{where} output {key!r}: producer {selector['producerSubtask']!r} does not exist")


def _check_source(at, key, source, tasks, components, own, task, problems) -> None:
    for kind, section in (("taskOutputParameter", "parameters"), ("taskOutputArtifact", "artifacts")):
        if kind in source:
            producer = source[kind]["producerTask"]
            output = source[kind].get("outputParameterKey") or source[kind].get("outputArtifactKey")
            if producer not in tasks:
                problems.append(f"{at}: input {key!r} names producer task {producer!r}, which does not exist")
                return
            if producer not in task.get("dependentTasks", []):
                problems.append(f"{at}: producer task {producer!r} is not among its dependent tasks")
            produced = components.get(tasks[producer]["componentRef"]["name"], {})
            if output not in _definitions(produced, "outputDefinitions", section):
                problems.append(f"{at}: task {producer!r} has no output {output!r}")
    for kind in ("componentInputParameter", "componentInputArtifact"):
        if kind in source and source[kind] not in own:
            problems.append(f"{at}: input {key!r} names {source[kind]!r}, which is not an input of the enclosing DAG")


def check_references(spec: dict) -> list[str]:
    """Every dangling reference of `spec`, as messages (empty: consistent)."""
    problems: list[str] = []
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    for name, component in spec.get("components", {}).items():
        if "dag" in component:
            _check_dag(spec, f"component {name!r}", component, problems)
        elif component.get("executorLabel") not in executors:
            problems.append(f"component {name!r}: executor {component.get('executorLabel')!r} does not exist")
    _check_dag(spec, "root", spec["root"], problems)
    return problems
