"""The neutral intermediate representation that every backend consumes.

The frontend builds it from source with libcst; backends read nothing else.
Every node is a frozen dataclass and carries the `Span` it came from, so any
layer can report a located diagnostic.  References between steps are typed
(`OutputRef`, `ContextRef`, `DefaultValue`), never strings parsed back.

`to_json()` dumps the whole tree as stable, sorted JSON (`pipec compile
--target ir`); `from_json()` reads it back.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Union

IR_VERSION = 1

# A context value or parameter default: str, int, float, bool, None, and
# lists / dicts of those (JSON-compatible, dict keys are strings).
Literal = Any


@dataclass(frozen=True)
class Span:
    """A source location. `path` is relative to the source root, POSIX style;
    lines are 1-based, columns 1-based (as printed in diagnostics)."""

    path: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0


# --------------------------------------------------------------------------
# References: where a step parameter (or a predicate parameter) gets its value


@dataclass(frozen=True)
class OutputRef:
    """The output `output` of the step named `step` of the same pipeline."""

    step: str
    output: str
    kind: str = "output"


@dataclass(frozen=True)
class ContextRef:
    """The run-time value of context key `key` (a pipeline parameter)."""

    key: str
    kind: str = "context"


@dataclass(frozen=True)
class DefaultValue:
    """The parameter's own default value, a literal evaluated statically.
    `source` is the default's source text, for defaults that are not literals
    (they are evaluated by the step's own code, never by pipec)."""

    value: Literal = None
    is_literal: bool = True
    source: str = ""
    kind: str = "default"


@dataclass(frozen=True)
class ConstantValue:
    """A literal given for the parameter where the step is added
    (`add_step(fn, params={...})` or `@step(params={...})`): always passed to
    the function, unlike a `DefaultValue`.  JSON values only (no tuple), so
    every target carries it exactly."""

    value: Literal = None
    kind: str = "constant"


@dataclass(frozen=True)
class StatusesRef:
    """{step name: status} of every other step of the run (succeeded,
    failed, skipped, upstream_failed): what a final step's `statuses`
    parameter receives."""

    kind: str = "statuses"


Ref = Union[OutputRef, ContextRef, DefaultValue, ConstantValue, StatusesRef]

# The types of file outputs (KFP's artifact classes, `system.<type>` there).
ARTIFACT_TYPES = ("Artifact", "Dataset", "Model", "HTML", "Markdown")

# When a step runs, given how its upstream steps ended (Airflow's trigger
# rules all_success, all_done, none_failed_min_one_success, one_success).
TRIGGERS = ("all_succeeded", "all_done", "none_failed", "one_succeeded")


@dataclass(frozen=True)
class Binding:
    """One parameter of a step function (or of a `when` predicate) and the
    value bound to it.  `annotation` is the parameter's annotation source text
    ("" when none).  `positional`: the parameter is positional-only (`def
    f(x, /)`), so it must be passed by position, in the order of `params`."""

    param: str
    ref: Ref
    span: Span
    annotation: str = ""
    positional: bool = False


# --------------------------------------------------------------------------
# Code carried by a step


@dataclass(frozen=True)
class CodeBlock:
    """Self-contained Python module source for one step.

    `source` holds, in this order: the imports the step's code uses
    (absolute, rewritten from relative), the module-level constants, classes
    and helper functions it uses (followed into other pipeline modules of the
    source tree), then the step function without pipec's decorators, its
    fallback and its predicate.  Executing `source` as a module defines
    `function`, `fallback` and `predicate` by those names; it imports no pipec.

    `helper_modules` lists the modules of the source tree that `source`
    imports (helper modules that import no pipec): the workers need the
    source root on their path for them.  `requirements` are the top-level
    distributions-or-modules imported (for information)."""

    source: str
    function: str
    fallback: str | None = None
    predicate: str | None = None
    helper_modules: tuple[str, ...] = ()
    imported_modules: tuple[str, ...] = ()
    # (dotted module name, source text) of each helper module in
    # `helper_modules` and of the helper modules those import, for targets
    # whose workers have no copy of the source tree (KFP containers): they
    # can embed them.  Package `__init__` modules of those are included.
    helper_sources: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------
# Steps


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` counts the first try (retries + 1).  The delay before
    retry k (k = 1, 2, ...) is `delay * backoff ** (k - 1)` seconds."""

    max_attempts: int = 1
    delay: float = 1.0
    backoff: float = 1.0

    @property
    def retries(self) -> int:
        return self.max_attempts - 1

    def delay_before(self, retry: int) -> float:
        return self.delay * self.backoff ** (retry - 1)


@dataclass(frozen=True)
class Resources:
    cpu: str | None = None
    memory: str | None = None
    gpu: int | None = None

    def is_empty(self) -> bool:
        return self.cpu is None and self.memory is None and not self.gpu


@dataclass(frozen=True)
class Predicate:
    """A `when` condition: the function named `CodeBlock.predicate`, called
    with `params` bound; the step is skipped when it returns a false value."""

    params: tuple[Binding, ...]
    source: str
    span: Span


@dataclass(frozen=True)
class Fallback:
    """`on_failure(fn)`: called with the step's own arguments when the last
    attempt failed; its return value becomes the step's outputs."""

    name: str
    span: Span


@dataclass(frozen=True)
class Step:
    name: str
    function: str
    params: tuple[Binding, ...]
    outputs: tuple[str, ...]
    code: CodeBlock
    span: Span
    # Steps whose outputs this step (or its predicate) consumes, in pipeline
    # order, without duplicates.
    upstream: tuple[str, ...] = ()
    retry: RetryPolicy = RetryPolicy()
    timeout: float | None = None
    cache: bool = True
    image: str | None = None
    packages: tuple[str, ...] = ()
    resources: Resources = Resources()
    foreach: str | None = None
    # With `foreach`: each element is a dict, and the step gets element[key].
    foreach_key: str | None = None
    when: Predicate | None = None
    fallback: Fallback | None = None
    # A foreach step: at most this many elements at once (None: no limit).
    max_parallel: int | None = None
    # Cached outputs older than this many seconds are not reused (None: no
    # expiry).
    cache_ttl: float | None = None
    # The step function's return annotation, as written ("" when none).
    returns: str = ""
    # Where each option was written, by option name ("retries", "timeout",
    # "when", "foreach", ...), for located diagnostics from backends.
    option_spans: tuple[tuple[str, Span], ...] = ()
    # Steps this step runs after without reading their outputs (`after=`);
    # they are in `upstream` too.
    after: tuple[str, ...] = ()
    # When it runs relative to its upstream steps: one of TRIGGERS.  An
    # output of an upstream step that produced nothing binds to None.
    trigger: str = "all_succeeded"
    # The pipeline's final step: runs after every other step (they are its
    # `upstream`, trigger all_done) whatever happened.
    final: bool = False
    # Outputs that are files or directories: (output name, artifact type:
    # one of ARTIFACT_TYPES), in output order.  The step returns a path; the
    # contents travel; a consumer gets the path of a local copy.
    files: tuple[tuple[str, str], ...] = ()
    # Outputs that are metrics (a dict of str -> int / float), in output
    # order: ordinary outputs that each target also shows as metrics.
    metrics: tuple[str, ...] = ()

    def option_span(self, option: str) -> Span:
        for name, span in self.option_spans:
            if name == option:
                return span
        return self.span

    @property
    def file_outputs(self) -> tuple[str, ...]:
        """The names of the step's file outputs, in output order."""
        return tuple(name for name, _ in self.files)

    def param(self, name: str) -> Binding | None:
        for binding in self.params:
            if binding.param == name:
                return binding
        return None

    def input_refs(self) -> tuple[OutputRef, ...]:
        """Every upstream output this step or its predicate reads, in order."""
        refs: list[OutputRef] = []
        bindings = list(self.params) + (list(self.when.params) if self.when else [])
        for binding in bindings:
            if isinstance(binding.ref, OutputRef) and binding.ref not in refs:
                refs.append(binding.ref)
        return tuple(refs)


# --------------------------------------------------------------------------
# Pipelines


@dataclass(frozen=True)
class ContextParam:
    """A context key: a run-time parameter with a literal default.
    `type` is one of str, int, float, bool, null, list, dict."""

    name: str
    default: Literal
    type: str
    span: Span


@dataclass(frozen=True)
class Pipeline:
    name: str
    # Steps in execution order: dependency order, ties in `add_step` order.
    steps: tuple[Step, ...]
    context: tuple[ContextParam, ...]
    span: Span
    # The module's path relative to the source root (POSIX), and its dotted
    # module name from the source root.
    source_path: str
    module: str
    schedule: str | None = None
    description: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()
    enable_cache: bool = True
    version: str | None = None
    # The IANA time zone the schedule is read in (None: UTC).
    timezone: str | None = None
    # At most this many tasks of a run at once (None: no limit).
    max_parallel: int | None = None

    def element_limit(self, step: Step) -> int | None:
        """How many elements of foreach step `step` may run at once: the
        lower of its own and the pipeline's `max_parallel` (None: no limit)."""
        limits = [n for n in (step.max_parallel, self.max_parallel) if n is not None]
        return min(limits, default=None)

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def producer(self, output: str) -> Step | None:
        for step in self.steps:
            if output in step.outputs:
                return step
        return None

    def context_param(self, key: str) -> ContextParam | None:
        for param in self.context:
            if param.name == key:
                return param
        return None


@dataclass(frozen=True)
class Module:
    """Everything compiled from one pipeline module."""

    source_path: str
    module: str
    pipelines: tuple[Pipeline, ...]
    version: int = IR_VERSION


# --------------------------------------------------------------------------
# Literal typing and context overrides


def literal_type(value: Literal) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    raise TypeError(f"not a literal: {type(value).__name__}")


def with_context(pipeline: Pipeline, overrides: dict[str, Literal]) -> Pipeline:
    """The pipeline with the defaults of the given context keys replaced.
    Keys that the pipeline's context does not have are ignored here (the
    caller reports them)."""
    params = []
    for param in pipeline.context:
        if param.name in overrides:
            value = overrides[param.name]
            param = dataclasses.replace(param, default=value, type=literal_type(value))
        params.append(param)
    return dataclasses.replace(pipeline, context=tuple(params))


# --------------------------------------------------------------------------
# JSON


# Fields that hold literal values (JSON data as written in the source); all
# other sequences in the IR are tuples.
_LITERAL_FIELDS = {
    ("ContextParam", "default"),
    ("DefaultValue", "value"),
    ("ConstantValue", "value"),
}


_SCALARS = (str, int, float, bool, type(None))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # per node class, read once


def _field_names(kind: type) -> tuple[str, ...] | None:
    """The field names of node class `kind`, or None for any other type."""
    names = _FIELD_NAMES.get(kind)
    if names is None and dataclasses.is_dataclass(kind):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(kind))
    return names


# Fields left out of `to_json` while they hold their default, so that IR
# written before they existed reads the same: (node class, field, default).
_OMITTED_DEFAULTS = {
    ("Binding", "positional"): False,
    ("Pipeline", "timezone"): None,
    ("Pipeline", "max_parallel"): None,
    ("Step", "max_parallel"): None,
    ("Step", "cache_ttl"): None,
    ("Step", "foreach_key"): None,
    ("Step", "after"): (),
    ("Step", "trigger"): "all_succeeded",
    ("Step", "final"): False,
    ("Step", "files"): (),
    ("Step", "metrics"): (),
}


def _to_data(node: Any) -> Any:
    kind = type(node)
    if kind in _SCALARS:
        return node
    names = _field_names(kind)
    if names is not None:
        data = {"node": kind.__name__}
        for name in names:
            value = getattr(node, name)
            key = (kind.__name__, name)
            if key in _OMITTED_DEFAULTS and value == _OMITTED_DEFAULTS[key]:
                continue
            data[name] = _to_data(value)
        return data
    if isinstance(node, (tuple, list)):
        return [_to_data(item) for item in node]
    if isinstance(node, dict):
        return {key: _to_data(value) for key, value in node.items()}
    return node


def to_data(module: Module) -> dict:
    return _to_data(module)


def _node_data(node: Any) -> dict:
    names = _field_names(type(node))
    if names is None:
        raise TypeError(f"{type(node).__name__} is not JSON serializable")
    kind = type(node).__name__
    data = {"node": kind}
    for name in names:
        value = getattr(node, name)
        key = (kind, name)
        if key in _OMITTED_DEFAULTS and value == _OMITTED_DEFAULTS[key]:
            continue
        data[name] = value
    return data


def dumps(module: Module) -> str:
    """`json.dumps(to_data(module))`, the nodes handed to the encoder as it
    meets them: compact, in the IR's own key order (`from_json` reads it)."""
    return json.dumps(module, default=_node_data)


def to_json(module: Module, header: str | None = None) -> str:
    """Stable, sorted JSON for `module` (ends with a newline).  A `header`
    goes under the key "_generated", which `from_json` ignores."""
    data = to_data(module)
    if header is not None:
        data["_generated"] = header
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


_NODES: dict[str, type] = {}


def _register(*classes: type) -> None:
    for cls in classes:
        _NODES[cls.__name__] = cls


_register(
    Span, OutputRef, ContextRef, DefaultValue, ConstantValue, StatusesRef, Binding, CodeBlock, RetryPolicy,
    Resources, Predicate, Fallback, Step, ContextParam, Pipeline, Module,
)


def _from_data(data: Any) -> Any:
    if isinstance(data, dict) and data.get("node") in _NODES:
        cls = _NODES[data["node"]]
        kwargs = {}
        for key, value in data.items():
            if key == "node" or key.startswith("_"):
                continue
            literal = (cls.__name__, key) in _LITERAL_FIELDS
            kwargs[key] = value if literal else _from_data(value)
        return cls(**kwargs)
    if isinstance(data, list):
        return tuple(_from_data(item) for item in data)
    return data


def from_json(text: str) -> Module:
    return _from_data(json.loads(text))


__all__ = [
    "IR_VERSION", "Span", "OutputRef", "ContextRef", "DefaultValue", "ConstantValue", "StatusesRef",
    "Ref", "TRIGGERS", "Binding",
    "CodeBlock", "RetryPolicy", "Resources", "Predicate", "Fallback", "Step",
    "ContextParam", "Pipeline", "Module", "literal_type", "with_context", "to_json",
    "from_json", "to_data",
]
