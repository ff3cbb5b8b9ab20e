"""The Python program each KFP component runs (kfp's lightweight form).

A program is the shared task runtime and the KFP runtime (the definitions
its wrapper reaches, copied as written: `runtime_code.select`), a
`_PIPEC_SPEC` literal (the step's code as a string, its options) and a
wrapper function `pipec_task` whose parameters are KFP-typed: context values
as typed parameters, upstream outputs as artifacts.  `kfp.dsl.executor_main`
calls the wrapper; the wrapper restores declared types and calls the step
through the runtime helpers.  Every value from the source reaches the text
through `py_literal`/`py_str`; the text is laid out as black lays it out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pipec import ir
from pipec.backends import runtime_code
from pipec.backends.pyfmt import INDENT, comment_lines, py_literal, py_name, py_str

ENTRY = "pipec_task"

# Python annotation and KFP parameter type of each context literal type.
PARAM_TYPES = {
    "str": ("str", "STRING"),
    "int": ("int", "NUMBER_INTEGER"),
    "float": ("float", "NUMBER_DOUBLE"),
    "bool": ("bool", "BOOLEAN"),
    "list": ("list", "LIST"),
    "dict": ("dict", "STRUCT"),
    # kfp cannot carry None (alone or inside a list or dict) in a parameter:
    # such context values travel as JSON text in a STRING parameter.
    "json": ("str", "STRING"),
}


def _has_none(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_none(v) for v in value)
    if isinstance(value, dict):
        return any(_has_none(v) for v in value.values())
    return False


def context_type(param: ir.ContextParam) -> str:
    """The type a context key travels as: its own, or "json"."""
    return "json" if _has_none(param.default) else param.type


def context_default(param: ir.ContextParam) -> object:
    """The root parameter's default value."""
    if context_type(param) == "json":
        return json.dumps(param.default, ensure_ascii=False)
    return param.default


# Return annotations whose (single) output travels as a typed parameter.
SCALARS = ("int", "float", "str", "bool")


def parameter_kind(step: ir.Step) -> str | None:
    """The declared type ("int", "float", "str", "bool") the step's output
    travels as a parameter with, or None (artifacts): only a step with one
    output, no foreach, and one of those return annotations."""
    if len(step.outputs) == 1 and step.foreach is None and step.returns in SCALARS:
        return step.returns
    return None


@dataclass(frozen=True)
class Arg:
    """One parameter of the wrapper: `kind` is "context" (typed parameter,
    `like` its declared default), "artifact", "artifacts" (a foreach
    step's collected outputs), "param" (an upstream output carried as a
    parameter of type `context_type`, plus its raw artifact `raw`), "index"
    (the foreach element index), "output" (an output artifact) or
    "param_output" (an output carried as a parameter; `raw` is its raw
    artifact)."""

    name: str
    kind: str
    context_type: str = "str"
    like: object = None
    raw: str = ""


def _annotation(arg: Arg) -> str:
    if arg.kind in ("context", "param"):
        return PARAM_TYPES[arg.context_type][0]
    return {
        "artifact": "Input[Artifact]",
        "artifacts": "Input[List[Artifact]]",
        "index": "int",
        "output": "Output[Artifact]",
    }[arg.kind]


def _value(arg: Arg) -> str:
    """The expression giving the step the argument's value (one line)."""
    name = py_name(arg.name)
    if arg.kind == "artifact":
        return f"_pipec_read({name})"
    if arg.kind == "artifacts":
        return f"[_pipec_read(item) for item in {name}]"
    if arg.kind == "param":
        return f"_pipec_get({name}, {py_name(arg.raw)}, {py_str(arg.context_type)})"
    if arg.context_type == "json":
        return f"json.loads({name})"
    if arg.context_type in ("list", "dict"):
        return f'_pipec_restore({name}, _PIPEC_SPEC["defaults"][{py_str(arg.name)}])'
    return name


def _signature(args: list[Arg], returns: str) -> list[str]:
    """`def pipec_task(...)`, one parameter a line with a magic trailing
    comma (black keeps that layout)."""
    ordered = args
    suffix = f" -> {returns}:" if returns else ":"
    if not ordered:
        return [f"def {ENTRY}()" + suffix]
    params = []
    for arg in ordered:
        if arg.kind != "param_output":
            params.append(f"{INDENT}{py_name(arg.name)}: {_annotation(arg)},")
        if arg.kind in ("param", "param_output"):
            direction = "Input" if arg.kind == "param" else "Output"
            params.append(f"{INDENT}{py_name(arg.raw)}: {direction}[Artifact],")
    return [f"def {ENTRY}("] + params + [")" + suffix]


def _dict(entries: list[tuple[str, str]], indent: int) -> list[str]:
    """A dict display of (key, expression) pairs ending with a comma."""
    pad = INDENT * indent
    if not entries:
        return [pad + "{},"]
    items = [f"{pad}{INDENT}{py_str(key)}: {expr}," for key, expr in entries]
    return [pad + "{"] + items + [pad + "},"]


def _call(function: str, dicts: list[list[tuple[str, str]]], returns: bool, extra: tuple[str, ...] = ()) -> list[str]:
    """`[return ]function(_PIPEC_SPEC, {...}, ..., *extra)`, exploded with
    magic trailing commas."""
    lines = [INDENT + ("return " if returns else "") + function + "(", INDENT * 2 + "_PIPEC_SPEC,"]
    for entries in dicts:
        lines += _dict(entries, 2)
    lines += [INDENT * 2 + item + "," for item in extra]
    return lines + [INDENT + ")"]


def uses_call(step: ir.Step) -> bool:
    """Whether the component runs the step through `_pipec_call` (its
    timeout, its in-component retries and its fallback)."""
    return step.timeout is not None or step.fallback is not None


def spec_literal(step: ir.Step, role: str, args: list[Arg]) -> dict:
    """What the component's runtime reads: the step's code and the options
    its `role` needs ("step": it runs the step or one element of it;
    "predicate": it evaluates the step's `when`; "items": it lists the
    element indices of a foreach step)."""
    code = step.code
    runs = role in ("step", "predicate")
    spec: dict = {"step": step.name}
    if runs:
        spec["function"] = code.function
    if role == "step":
        spec["outputs"] = list(step.outputs)
        spec["parameters"] = {a.name: a.context_type for a in args if a.kind == "param_output"}
        if step.foreach is not None:
            spec["foreach"] = step.foreach
        if uses_call(step):
            in_component = step.retry if step.fallback is not None else ir.RetryPolicy()
            spec["fallback"] = code.fallback if step.fallback is not None else None
            spec["attempts"] = in_component.max_attempts
            spec["delay"] = float(in_component.delay)
            spec["backoff"] = float(in_component.backoff)
            spec["timeout"] = float(step.timeout) if step.timeout is not None else None
    if role == "predicate":
        spec["predicate"] = code.predicate
    if runs and step.packages:
        spec["packages"] = list(step.packages)
    if runs and code.helper_sources:
        spec["helpers"] = [[name, text] for name, text in code.helper_sources]
    defaults = {a.name: a.like for a in args if a.kind == "context" and a.context_type in ("list", "dict")}
    if defaults:
        spec["defaults"] = defaults
    if runs:
        spec["source"] = code.source
    return spec


def _spec_text(spec: dict) -> str:
    """`py_literal(spec)` for the spec dict, which never fits on one line
    (it holds the step's source): one entry a line, without laying out the
    whole dict flat first."""
    lines = []
    for key, value in spec.items():
        key_text = py_str(key) + ": "
        lines.append(INDENT + key_text + py_literal(value, 1, key_text, ",") + ",")
    return "{\n" + "\n".join(lines) + "\n}"


# The names the wrapper may use from kfp and typing, in import order.
_IMPORTS = (("typing", ("List", "NamedTuple")), ("kfp.dsl", ("Artifact", "Input", "Output")))
_RUNTIMES = ("task_runtime.py", "kubeflow_runtime.py")


def program(title: str, spec: dict, body: list[str]) -> str:
    """The whole program: header, imports, the runtime definitions the
    wrapper reaches (`runtime_code.select`), spec, wrapper."""
    wrapper = "\n".join(body)
    used = runtime_code.identifiers(wrapper)
    imports = []
    for module, names in _IMPORTS:
        wanted = [name for name in names if name in used]
        if wanted:
            imports.append(f"from {module} import {', '.join(wanted)}")
    head = "\n".join(comment_lines(title))
    if imports:
        head += "\n" + "\n\n".join(imports)
    parts = [
        head,
        *runtime_code.select(_RUNTIMES, used),
        "_PIPEC_SPEC = " + _spec_text(spec),
        wrapper,
    ]
    return "\n\n\n".join(parts) + "\n"


def _prepare(step: ir.Step) -> list[str]:
    """The wrapper's first lines: install the step's packages, then place
    its helper modules, before its code is loaded."""
    lines = []
    if step.packages:
        lines.append(f'{INDENT}_pipec_install(_PIPEC_SPEC["packages"])')
    if step.code.helper_sources:
        lines.append(f'{INDENT}_pipec_helpers(_PIPEC_SPEC["helpers"])')
    return lines


def step_body(step: ir.Step, args: list[Arg], element: str | None) -> list[str]:
    """The wrapper of a step (of one element, for a foreach step).  A step
    whose output travels as a parameter returns it in `_PipecOutputs`."""
    kwargs = []
    for arg in args:
        if arg.kind in ("output", "param_output", "index"):
            continue
        kwargs.append((arg.name, _value(arg)))
    outputs = []
    for arg in args:
        if arg.kind == "output":
            outputs.append((arg.name, py_name(arg.name)))
        elif arg.kind == "param_output":
            outputs.append((arg.name, py_name(arg.raw)))
    parameters = [a for a in args if a.kind == "param_output"]
    extra: list[str] = []
    if element is not None:
        # One element of a foreach step: the runtime picks element `pipec_index`.
        extra.append("pipec_index")
    lines = []
    if parameters:
        lines.append("class _PipecOutputs(NamedTuple):")
        lines += [f"{INDENT}{py_name(a.name)}: {PARAM_TYPES[a.context_type][0]}" for a in parameters]
        lines += ["", ""]
        extra.append("result=_PipecOutputs")
    if uses_call(step):
        extra.append("call=_pipec_call")
    returns = "_PipecOutputs" if parameters else ""
    lines += _signature(args, returns) + _prepare(step)
    lines += _call("_pipec_run_step", [kwargs, outputs], bool(parameters), tuple(extra))
    return lines


def predicate_body(step: ir.Step, args: list[Arg]) -> list[str]:
    kwargs = [(a.name, _value(a)) for a in args]
    lines = _signature(args, "bool") + _prepare(step)
    return lines + _call("_pipec_run_predicate", [kwargs], returns=True)


def items_body(arg: Arg) -> list[str]:
    """The wrapper that lists the indices of a foreach step's elements."""
    lines = _signature([arg], "list")
    lines.append(f"{INDENT}return list(range(len({_value(arg)})))")
    return lines
