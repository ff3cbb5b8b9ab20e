"""The Python program the KFP components of a pipeline run (kfp's
lightweight form), and the spec each component carries.

The program is the shared task runtime and the KFP runtime (the definitions
the pipeline's steps reach, without docstrings and comments:
`runtime_code.select`) and `pipec_task = _pipec_task(_pipec_spec(), ...)`:
at import, the runtime reads the component's `pipec-spec` input from the
executor input and builds `pipec_task` with the KFP-typed signature of that
component (context values as typed parameters, upstream outputs as
artifacts).  `kfp.dsl.executor_main` calls it; it restores declared types
and calls the step through the runtime helpers.  The spec (`spec_literal`)
is JSON text from `safe_json`; the program holds no value from the source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pipec import ir
from pipec.version import __version__
from pipec.backends import runtime_code
from pipec.backends.pyfmt import INDENT

ENTRY = "pipec_task"
# The input of every component that carries its spec (no identifier: it
# can never be the name of one of the step's parameters).
SPEC_INPUT = "pipec-spec"

# Python annotation and KFP parameter type of each context literal type.
PARAM_TYPES = {
    "str": ("str", "STRING"),
    "int": ("int", "NUMBER_INTEGER"),
    "float": ("float", "NUMBER_DOUBLE"),
    "bool": ("bool", "BOOLEAN"),
    # Lists, dicts and None travel as JSON text in a STRING parameter: KFP's
    # LIST/STRUCT parameters are protobuf values (every number a double, a
    # run-time dict's keys sorted, types taken from the default, no None).
    "json": ("str", "STRING"),
}


def context_type(param: ir.ContextParam) -> str:
    """The type a context key travels as: its own scalar type, or "json"
    (JSON text in a STRING parameter, written so that KFP passes it
    unchanged) for a list, a dict, None, and a string KFP would change (a
    `{{$` placeholder or the workspace path: kfp.local resolves them in
    string parameters)."""
    value = param.default
    if value is None or isinstance(value, (list, tuple, dict)):
        return "json"
    if isinstance(value, str) and ("{{$" in value or WORKSPACE_PATH in value):
        return "json"
    return param.type


def context_default(param: ir.ContextParam) -> object:
    """The root parameter's default value."""
    if context_type(param) == "json":
        return escape_json(json.dumps(param.default, ensure_ascii=False))
    return param.default


# Return annotations whose (single) output travels as a typed parameter.
SCALARS = ("int", "float", "str", "bool")


def parameter_kind(step: ir.Step) -> str | None:
    """The declared type ("int", "float", "str", "bool") the step's output
    travels as a parameter with, or None (artifacts): only a step with one
    output, no foreach, and one of those return annotations."""
    typed = step.files or step.metrics  # typed artifacts (`-> str` of a path stays one)
    if len(step.outputs) == 1 and step.foreach is None and step.returns in SCALARS and not typed:
        return step.returns
    return None


@dataclass(frozen=True)
class Arg:
    """One parameter of the wrapper: `kind` is "context" (typed parameter),
    "artifact", "artifacts" (a foreach
    step's collected outputs), "param" (an upstream output carried as a
    parameter of type `context_type`, plus its raw artifact `raw`), "index"
    (the foreach element index), "output" (an output artifact) or
    "param_output" (an output carried as a parameter; `raw` is its raw
    artifact)."""

    name: str
    kind: str
    context_type: str = "str"
    raw: str = ""


def uses_call(step: ir.Step) -> bool:
    """Whether the component runs the step through `_pipec_attempts` (its
    timeout, its in-component retries and its fallback)."""
    return step.timeout is not None or step.fallback is not None


_LONGEST = 1e8  # seconds


def _arg_entry(arg: Arg) -> list:
    """An argument as the spec lists it: [name, kind, context type, raw],
    trailing defaults ("str", "") left out."""
    entry = [arg.name, arg.kind, arg.context_type, arg.raw]
    while len(entry) > 2 and entry[-1] == ("str", "")[len(entry) - 3]:
        entry.pop()
    return entry


def constants(step: ir.Step) -> dict:
    """The literals the step is called with, carried in its spec: its
    `params` constants, and a foreach list that is the parameter's default
    (both are passed to the function on every target)."""
    out = {}
    for binding in step.params:
        ref = binding.ref
        if isinstance(ref, ir.ConstantValue):
            out[binding.param] = ref.value
        elif isinstance(ref, ir.StatusesRef):  # KFP has none to give (PC601; None when warned)
            out[binding.param] = None
        elif isinstance(ref, ir.DefaultValue) and binding.param == step.foreach:
            out[binding.param] = ref.value
    return out


def spec_literal(step: ir.Step, role: str, args: list[Arg]) -> dict:
    """What the component's runtime reads: its arguments, the step's code
    and the options its `role` needs ("step": it runs the step or one
    element of it; "predicate": it evaluates the step's `when`; "items": it
    lists the element indices of a foreach step)."""
    code = step.code
    runs = role in ("step", "predicate")
    spec: dict = {"role": role, "step": step.name, "args": [_arg_entry(a) for a in args]}
    if runs:
        spec["function"] = code.function
    if role == "step":
        spec["outputs"] = list(step.outputs)
        spec["parameters"] = {a.name: a.context_type for a in args if a.kind == "param_output"}
    if role in ("step", "items") and constants(step):
        spec["constants"] = constants(step)
    if step.foreach is not None and role in ("step", "items"):
        spec["foreach"] = step.foreach
        if step.foreach_key is not None:
            spec["foreach_key"] = step.foreach_key
    if role == "step" and uses_call(step):
        in_component = step.retry if step.fallback is not None else ir.RetryPolicy()
        spec["fallback"] = code.fallback if step.fallback is not None else None
        spec["attempts"] = in_component.max_attempts
        # Capped so the JSON holds numbers (an infinite delay is PC612; a
        # timeout beyond the platform's timer never fires in a task anyway).
        spec["delay"] = min(float(in_component.delay), _LONGEST)
        spec["backoff"] = min(float(in_component.backoff), _LONGEST)
        spec["timeout"] = min(float(step.timeout), _LONGEST) if step.timeout is not None else None
    if role == "predicate":
        spec["predicate"] = code.predicate
    if runs and step.packages:
        spec["packages"] = list(step.packages)
    if runs and code.helper_sources:
        spec["helpers"] = [[name, text] for name, text in code.helper_sources]
    if runs:
        spec["source"] = code.source
    return spec


# What KFP substitutes in a task's command, arguments and string parameter
# values before the task runs: placeholders `{{$...}}` (the launcher of the
# KFP backend and kfp.local; Argo resolves `{{...}}` in workflow templates)
# and, in kfp.local, the workspace mount path.  No text pipec writes into a
# command or a parameter value may contain either.
PLACEHOLDER_OPEN = "{{"
WORKSPACE_PATH = "/kfp-workspace"


def safe_json(value: object) -> str:
    """`value` as compact JSON text that reads back exactly (`json.loads`)
    and holds no placeholder and no workspace path: inside a JSON string,
    the second brace of each `{{` is written `\\u007b` and the `k` of the
    workspace path `\\u006b` (JSON has no `{{` outside strings)."""
    return escape_json(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))


def escape_json(text: str) -> str:
    """JSON `text` with the same value and no placeholder or workspace path
    (see `safe_json`)."""
    return text.replace(PLACEHOLDER_OPEN, "{\\u007b").replace(WORKSPACE_PATH, "/\\u006bfp-workspace")


# The optional runtime functions a pipeline's program carries only when one
# of its steps needs them.
FEATURES = {
    "call": "_pipec_attempts",
    "install": "_pipec_install",
    "helpers": "_pipec_helpers",
    "predicate": "_pipec_run_predicate",
}
_RUNTIMES = ("task_runtime.py", "kubeflow_runtime.py")


def features(step: ir.Step) -> set[str]:
    """The optional runtime functions `step`'s components use."""
    out = set()
    if uses_call(step):
        out.add("call")
    if step.packages:
        out.add("install")
    if step.code.helper_sources:
        out.add("helpers")
    if step.when is not None:
        out.add("predicate")
    return out


def program(used: set[str], image: bool = False) -> str:
    """The program every component of a pipeline runs: the runtime
    definitions it reaches (without docstrings and comments) and
    `pipec_task`, built from the spec of the component being run (its
    `pipec-spec` input).  `used`: the optional features (`FEATURES`).
    With `image`, the runtime is imported from the pipec installed in the
    task's image (`pipec.templates.kubeflow_image`) instead."""
    names = [key for key in FEATURES if key in used]
    # A pipeline with file outputs or metrics (typed KFP artifacts) builds
    # its task with `_pipec_artifacts`, the others with `_pipec_task`.
    entry = "_pipec_artifacts" if "artifacts" in used else "_pipec_task"
    prefix = "pipec_runtime." if image else ""
    if names:
        lines = [f"{ENTRY} = {prefix}{entry}(", f"{INDENT}{prefix}_pipec_spec(),"]
        lines += [f"{INDENT}{key}={prefix}{FEATURES[key]}," for key in names]
        bootstrap = "\n".join(lines + [")"])
    else:
        bootstrap = f"{ENTRY} = {prefix}{entry}({prefix}_pipec_spec())"
    if image:
        head = "from pipec.templates import kubeflow_image as pipec_runtime\n\n"
        return head + f"pipec_runtime.require({json.dumps(__version__)})\n" + bootstrap + "\n"
    codes = runtime_code.select(_RUNTIMES, runtime_code.identifiers(bootstrap), strip=True)
    return "\n\n\n".join([*codes, bootstrap]) + "\n"
