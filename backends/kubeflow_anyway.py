"""Steps that run anyway, on KFP: what the KFP SDK writes for
`ignore_upstream_failure()` and `dsl.ExitHandler`, and what KFP cannot say.

- `trigger="all_done"` → the task's `triggerPolicy.strategy:
  ALL_UPSTREAM_TASKS_COMPLETED` (the SDK's `ignore_upstream_failure()`),
  without the skip conditions of its upstream steps (it runs whatever they
  did).  The KFP backend compiles such a task into an Argo exit hook of
  each of its dependent tasks (`backend/src/v2/compiler/argocompiler/
  dag.go`), which fires when that task ended; and it resolves no output of
  a task that failed (neither does kfp.local).  So it is faithful for a
  step after exactly one upstream step that always runs (no upstream step,
  no `when`, no foreach of its own) and that reads none of its outputs.
- `final=True` → a `dsl.ExitHandler`: every other step's tasks go into the
  DAG `exit-handler-1` (the tasks read the context through its
  `pipelinechannel--<key>` inputs), and the final step's task, at the root,
  depends on that group with the strategy ALL_UPSTREAM_TASKS_COMPLETED: it
  runs once after the whole group, whatever happened.  An exit task cannot
  read outputs of the tasks inside the group, and KFP tells it only the
  state of the whole group (`PipelineTaskFinalStatus`), not each step's.
- `none_failed`, `one_succeeded`: KFP has two trigger strategies (all
  upstream tasks succeeded; all completed) and neither.

`problems()` lists what KFP cannot express for a step, as (feature, option)
pairs for `Backend.unsupported()`; the builder maps only what it accepts.
"""

from __future__ import annotations

from pipec import ir

EXIT_HANDLER = "exit-handler-1"
ALL_COMPLETED = {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
CHANNEL = "pipelinechannel--"

_NO_RULE = (
    "(KFP runs a task after all its upstream tasks succeeded, or with ignore_upstream_failure() "
    "after all of them completed: it has no other trigger rule)"
)


def _reads_outputs(step: ir.Step) -> bool:
    return bool(step.input_refs())


def _always_runs(step: ir.Step) -> bool:
    """Whether the task of `step` runs in every run: no upstream step that
    could stop it, no `when`, no loop."""
    return not step.upstream and step.when is None and step.foreach is None


def trigger_problems(pipeline: ir.Pipeline, step: ir.Step) -> list[str]:
    """Why KFP cannot run `step` (not the final step) by its trigger rule."""
    rule = step.trigger
    if rule == "all_succeeded" or not step.upstream:
        return []
    if rule != "all_done":
        return [f"trigger={rule!r} {_NO_RULE}"]
    hook = "the KFP backend runs an ignore_upstream_failure() task as an exit hook of each of its upstream tasks"
    problems = []
    if step.foreach is not None:
        problems.append("trigger='all_done' on a foreach step (a KFP loop task takes no trigger strategy)")
    if step.when is not None:
        problems.append(f"trigger='all_done' with a `when` condition ({hook}, and the condition's task is one more)")
    if _reads_outputs(step):
        problems.append(
            "trigger='all_done' on a step that reads outputs of its upstream steps (KFP resolves no output of "
            "an upstream task that failed, where pipec passes None: the KFP backend and kfp.local fail the task)"
        )
    if len(step.upstream) > 1:
        problems.append(
            f"trigger='all_done' after {len(step.upstream)} upstream steps ({hook}: it would run once after each "
            "of them, not once after all)"
        )
    elif not _always_runs(pipeline.step(step.upstream[0])):
        problems.append(
            f"trigger='all_done' after step {step.upstream[0]!r}, which may not run ({hook}, which fires only "
            f"when that task ran; a step that always runs has no upstream step, no `when` and no foreach)"
        )
    return problems


def final_problems(step: ir.Step) -> tuple[list[str], bool]:
    """Why KFP cannot run the final step `step` as it should, and whether it
    can still be the exit task of an exit handler (with `statuses` None)."""
    problems = []
    if any(isinstance(b.ref, ir.StatusesRef) for b in step.params):
        problems.append(
            "the statuses of the other steps (KFP tells an exit task only the final state of the whole "
            "dsl.ExitHandler group, PipelineTaskFinalStatus, not each step's)"
        )
    exit_task = True
    if _reads_outputs(step):
        problems.append(
            "a final step that reads outputs of other steps (a KFP exit task runs outside the dsl.ExitHandler "
            "group that holds their tasks and cannot read their outputs)"
        )
        exit_task = False
    if step.when is not None:
        problems.append("a `when` condition on the final step (a KFP exit task runs unconditionally)")
        exit_task = False
    if step.foreach is not None:
        problems.append("foreach on the final step (a KFP exit task is one task)")
        exit_task = False
    return problems, exit_task


def runs_anyway(pipeline: ir.Pipeline, step: ir.Step) -> bool:
    """Whether the builder gives `step` the strategy ALL_UPSTREAM_TASKS_
    COMPLETED (as an ignore_upstream_failure() task or an exit task)."""
    if step.final:
        return len(pipeline.steps) > 1 and final_problems(step)[1]
    return step.trigger == "all_done" and bool(step.upstream) and not trigger_problems(pipeline, step)


def exit_handler(pipeline: ir.Pipeline) -> ir.Step | None:
    """The final step that is the exit task of an exit handler, if any."""
    for step in pipeline.steps:
        if step.final and runs_anyway(pipeline, step):
            return step
    return None


def wrap(tasks: dict, final_task: str, root_parameters: dict) -> tuple[dict, dict]:
    """The root tasks and the `comp-exit-handler-1` component: every task
    but `final_task` moves into the group, which passes each context key
    they read on as its input `pipelinechannel--<key>` (as the KFP SDK
    writes it); the final task depends on the group."""
    body = {name: task for name, task in tasks.items() if name != final_task}
    keys: list[str] = []
    for task in body.values():
        for source in task.get("inputs", {}).get("parameters", {}).values():
            key = source.get("componentInputParameter")
            if key is not None:
                source["componentInputParameter"] = CHANNEL + key
                if key not in keys:
                    keys.append(key)
    keys.sort()
    component: dict = {"dag": {"tasks": body}}
    group: dict = {"componentRef": {"name": f"comp-{EXIT_HANDLER}"}, "taskInfo": {"name": EXIT_HANDLER}}
    if keys:
        types = {key: {"parameterType": root_parameters[key]["parameterType"]} for key in keys}
        component["inputDefinitions"] = {"parameters": {CHANNEL + key: types[key] for key in keys}}
        group["inputs"] = {"parameters": {CHANNEL + key: {"componentInputParameter": key} for key in keys}}
    final = dict(tasks[final_task])
    final["dependentTasks"] = [EXIT_HANDLER]
    final["triggerPolicy"] = dict(ALL_COMPLETED)
    return {EXIT_HANDLER: group, final_task: final}, component
