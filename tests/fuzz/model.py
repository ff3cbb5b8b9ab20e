"""A random pipeline as plain data, and the module that it writes.

The model is what the hypothesis strategies (`strategies.py`) build and
shrink; `source()` turns it into a pipeline module that `pipec check`
accepts.  Everything a step does is decided by the model, so the module is
deterministic: the local run (the reference) and every target must give the
same statuses and outputs, types included.

- A `Step` has parameters bound to upstream outputs, context keys or their
  own defaults, and returns one `Expr` per declared output (a constant, a
  parameter, or a list / tuple / dict built from those).
- `Retry`: the step fails until attempt `succeed_on` (the attempt count is
  kept in a file under the `state_dir` context value, so it survives retries
  in separate processes); `Fail`: the step raises, always or when a context
  value is truthy; `fallback`: constants returned by `@on_failure`.
- `When`: a predicate over a context key or an upstream output (Python
  truthiness), written as a lambda or a module-level function.
- `Run.overrides`: context values replaced for the run.
- The language's ordering and fan-out forms: `after` steps, a `trigger`
  rule, the pipeline's `final` step (its `statuses` parameter), a foreach
  over a literal list given with `params` and over one field of each
  element (`foreach_key`), `max_parallel`, `cache_ttl`, and steps added in
  a loop over a literal tuple or list (`Pipeline.loop`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

STATE_DIR = "state_dir"


# -- values --------------------------------------------------------------------


def literal(value: Any) -> str:
    """Python source for `value`, deterministic (set elements sorted by
    their own source text) and valid for every type the strategies make."""
    if isinstance(value, float):
        assert math.isfinite(value), value
        return repr(value)
    if isinstance(value, (bool, int, str, bytes)) or value is None:
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (set, frozenset)):
        items = sorted(literal(v) for v in value)
        body = "{" + ", ".join(items) + "}" if items else ""
        if isinstance(value, frozenset):
            return f"frozenset({body})"
        return body if items else "set()"
    if hasattr(value, "__dataclass_fields__"):
        raise TypeError("dataclass values are written by Const.dataclass")
    raise TypeError(f"no literal for {type(value).__name__}")


@dataclass(frozen=True)
class Const:
    value: Any
    # Written as a module-level constant that the step uses (carried code).
    hoisted: bool = False


@dataclass(frozen=True)
class Ref:
    """The value of one of the step's parameters (for a foreach parameter:
    the element)."""

    name: str


@dataclass(frozen=True)
class Pack:
    kind: str  # "list", "tuple" or "dict"
    items: tuple["Expr", ...]


@dataclass(frozen=True)
class Record:
    """An instance of a dataclass defined in the module (behind the
    `dataclasses` feature flag)."""

    cls: str
    fields: tuple[tuple[str, "Expr"], ...]


Expr = Union[Const, Ref, Pack, Record]


def is_list(expr: Expr) -> bool:
    return (isinstance(expr, Const) and type(expr.value) is list) or (
        isinstance(expr, Pack) and expr.kind == "list"
    )


# -- steps -------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    # "output", "context", "default", "constant" (a literal given with
    # `params=`, in `default`, on the decorator or where the step is added)
    # or "statuses" (the final step's statuses of every other step)
    source: str
    default: Any = None
    annotation: str | None = None
    # For an "output" parameter named otherwise: the output it is wired to
    # by `inputs` as a dict.
    wire: str | None = None


@dataclass(frozen=True)
class When:
    source: str  # a context key or an upstream output name
    function: bool = False  # a module-level function instead of a lambda
    negate: bool = False


@dataclass(frozen=True)
class Retry:
    attempts: int  # max attempts, the first try included
    succeed_on: int  # the attempt that succeeds (> attempts: never)
    style: str = "decorator"  # "decorator": @retry(...); "step": @step(retries=...)


@dataclass(frozen=True)
class Fail:
    when_key: str | None = None  # None: always; else when this context value is truthy


@dataclass(frozen=True)
class Step:
    name: str
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    returns: tuple[Expr, ...]  # one per output; () with no output
    declare_inputs: bool = True
    foreach: str | None = None
    when: When | None = None
    retry: Retry | None = None
    fail: Fail | None = None
    fallback: tuple[Const, ...] | None = None  # one per output
    shape: str = "tuple"  # several outputs returned as "tuple", "list" or "dict"
    return_annotation: str | None = None
    positional_only: bool = False
    # Where the step's options are written: "decorator", or "add_step" (an
    # instance: `add_step(fn, name=..., outputs=..., ...)` on a function
    # named `fn_<name>`, whose decorator gives only `outputs=["unused"]`).
    options_at: str = "decorator"
    after: tuple[str, ...] = ()  # steps it runs after without taking their outputs
    trigger: str | None = None  # None: the default rule (all_succeeded), not written
    final: bool = False
    foreach_key: str | None = None
    max_parallel: int | None = None
    cache_ttl: float | None = None

    @property
    def inputs(self) -> list[str]:
        return [p.name for p in self.params if p.source == "output" and p.wire is None]

    @property
    def wiring(self) -> dict[str, str]:
        return {p.name: p.wire for p in self.params if p.wire is not None}

    @property
    def constants(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params if p.source == "constant"}

    @property
    def function(self) -> str:
        return f"fn_{self.name}" if self.options_at == "add_step" else self.name


@dataclass(frozen=True)
class Pipeline:
    name: str
    context: tuple[tuple[str, Any], ...]
    steps: tuple[Step, ...]  # in dependency order
    add_order: tuple[int, ...]  # the order of add_step calls, as indices into steps
    overrides: tuple[tuple[str, Any], ...] = ()
    dataclasses: tuple[tuple[str, tuple[str, ...]], ...] = ()  # class name, field names
    enable_cache: bool = True
    max_parallel: int | None = None
    # (start, stop): the add_step calls add_order[start:stop] are written as
    # one loop over a literal tuple ("tuple") or list ("list") of functions.
    loop: tuple[int, int, str] | None = None

    @property
    def uses_state(self) -> bool:
        return any(s.retry is not None for s in self.steps)

    def run_overrides(self) -> tuple[tuple[str, Any], ...]:
        """The overrides for a run; `{tmp}` stands for a fresh folder."""
        extra = ((STATE_DIR, "{tmp}"),) if self.uses_state else ()
        return tuple(self.overrides) + extra

    def shapes(self) -> dict[str, dict]:
        """What a target's reader needs: each step's outputs and foreach."""
        return {s.name: {"outputs": list(s.outputs), "foreach": s.foreach is not None} for s in self.steps}


# -- the module ----------------------------------------------------------------

HEADER = '''"""A random pipeline from the pipec differential fuzzer ({origin})."""

'''

ATTEMPT_HELPER = '''

def _attempt(state_dir, name):
    """The number of this attempt of `name`, counted in a file."""
    path = os.path.join(state_dir, name + ".attempts")
    count = 1
    if os.path.exists(path):
        with open(path) as f:
            count = json.load(f) + 1
    with open(path, "w") as f:
        json.dump(count, f)
    return count
'''


@dataclass
class _Writer:
    pipeline: Pipeline
    constants: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)

    def expr(self, step: Step, expr: Expr) -> str:
        if isinstance(expr, Ref):
            return expr.name
        if isinstance(expr, Const):
            if not expr.hoisted:
                return literal(expr.value)
            name = f"C_{step.name}_{len(self.constants)}"
            self.constants.append(f"{name} = {literal(expr.value)}")
            return name
        if isinstance(expr, Record):
            args = ", ".join(f"{k}={self.expr(step, v)}" for k, v in expr.fields)
            return f"{expr.cls}({args})"
        items = [self.expr(step, item) for item in expr.items]
        if expr.kind == "list":
            return "[" + ", ".join(items) + "]"
        if expr.kind == "dict":
            return "{" + ", ".join(f"{literal('k%d' % i)}: {v}" for i, v in enumerate(items)) + "}"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    def returned(self, step: Step, exprs: list[str]) -> str:
        if not step.outputs:
            return exprs[0] if exprs else "None"
        if len(step.outputs) == 1:
            return exprs[0]
        if step.shape == "dict":
            return "{" + ", ".join(f"{name!r}: {e}" for name, e in zip(step.outputs, exprs)) + "}"
        if step.shape == "list":
            return "[" + ", ".join(exprs) + "]"
        return "(" + ", ".join(exprs) + ")"

    def signature(self, step: Step) -> str:
        required, optional = [], []
        for p in step.params:
            text = p.name + (f": {p.annotation}" if p.annotation else "")
            if p.source == "constant":
                required.append(text)
            elif p.source == "default":
                optional.append(text + (f" = {literal(p.default)}" if p.annotation else f"={literal(p.default)}"))
            else:
                required.append(text)
        names = {p.name for p in step.params}
        if step.fail is not None and step.fail.when_key and step.fail.when_key not in names:
            # the context key the failure depends on, bound by its name
            required.append(step.fail.when_key)
        if step.retry is not None:
            required.append(STATE_DIR)
        if step.positional_only and required:
            required.append("/")
        return ", ".join(required + optional)

    def options(self, step: Step) -> list[str]:
        """The step's options as keyword arguments."""
        options = []
        if step.wiring:
            # A dict wires only what it lists: every input is listed.
            wired = {**step.wiring, **{n: n for n in step.inputs}}
            options.append(f"inputs={wired!r}")
        elif step.declare_inputs and step.inputs:
            options.append(f"inputs={list(step.inputs)!r}")
        if step.outputs:
            options.append(f"outputs={list(step.outputs)!r}")
        if step.constants:
            body = ", ".join(f"{name!r}: {literal(value)}" for name, value in step.constants.items())
            options.append(f"params={{{body}}}")
        if step.foreach:
            options.append(f"foreach={step.foreach!r}")
        if step.foreach_key:
            options.append(f"foreach_key={step.foreach_key!r}")
        if step.max_parallel is not None:
            options.append(f"max_parallel={step.max_parallel}")
        if step.retry and step.retry.style == "step":
            options.append(f"retries={step.retry.attempts - 1}, retry_delay=0.1")
        if step.after:
            options.append(f"after={list(step.after)!r}")
        if step.trigger:
            options.append(f"trigger={step.trigger!r}")
        if step.final:
            options.append("final=True")
        if step.cache_ttl is not None:
            options.append(f"cache_ttl={step.cache_ttl!r}")
        return options

    def add_step(self, step: Step) -> str:
        if step.options_at == "decorator":
            return f".add_step({step.name})"
        options = self.options(step) + ([] if step.outputs else ["outputs=[]"])
        return f".add_step({', '.join([step.function, f'name={step.name!r}'] + options)})"

    def decorators(self, step: Step) -> list[str]:
        if step.options_at == "decorator":
            options = self.options(step)
        else:  # overridden where the step is added
            options = ['outputs=["unused"]']
        lines = [f"@step({', '.join(options)})" if options else "@step"]
        if step.retry and step.retry.style == "decorator":
            lines.append(f"@retry(max_attempts={step.retry.attempts}, delay=0.1, backoff=1.5)")
        if step.fallback is not None:
            lines.append(f"@on_failure(fallback_{step.name})")
        if step.when is not None:
            lines.append(f"@when({self.predicate(step)})")
        return lines

    def predicate(self, step: Step) -> str:
        when = step.when
        body = f"not {when.source}" if when.negate else when.source
        if not when.function:
            return f"lambda {when.source}: {body}"
        name = f"gate_{step.name}"
        self.functions.append(f"def {name}({when.source}):\n    return {body}\n")
        return name

    def step(self, step: Step) -> str:
        lines = self.decorators(step)
        annotation = f" -> {step.return_annotation}" if step.return_annotation else ""
        lines.append(f"def {step.function}({self.signature(step)}){annotation}:")
        if step.retry is not None:
            lines.append(f"    if _attempt({STATE_DIR}, {step.name!r}) < {step.retry.succeed_on}:")
            lines.append(f"        raise ConnectionError('{step.name}: not yet')")
        if step.fail is not None:
            if step.fail.when_key is None:
                lines.append(f"    raise ValueError('{step.name} fails')")
            else:
                lines.append(f"    if {step.fail.when_key}:")
                lines.append(f"        raise ValueError('{step.name} fails')")
        if step.fail is None or step.fail.when_key is not None:
            exprs = [self.expr(step, e) for e in step.returns]
            lines.append(f"    return {self.returned(step, exprs)}")
        if step.fallback is not None:
            exprs = [self.expr(step, e) for e in step.fallback]
            fallback = f"def fallback_{step.name}({self.signature(step)}):\n    return {self.returned(step, exprs)}\n"
            self.functions.append(fallback)
        return "\n".join(lines) + "\n"

    def module(self, origin: str) -> str:
        p = self.pipeline
        steps = [self.step(s) for s in p.steps]
        context = dict(p.context)
        if p.uses_state:
            context[STATE_DIR] = "."
        parts = [HEADER.format(origin=origin)]
        imports = ["json", "os"] if p.uses_state else []
        if p.dataclasses:
            parts.append("import dataclasses\n")
        parts.extend(f"import {m}\n" for m in imports)
        parts.append("\nfrom pipec import Pipeline, context, on_failure, retry, step, when\n\n")
        args = "".join(f"\n    {k}={literal(v)}," for k, v in context.items())
        parts.append(f"ctx = context({args}\n)\n" if args else "ctx = context()\n")
        if self.constants:
            parts.append("\n" + "\n".join(self.constants) + "\n")
        for cls, names in p.dataclasses:
            body = "".join(f"    {n}: object\n" for n in names) or "    pass\n"
            parts.append(f"\n\n@dataclasses.dataclass(frozen=True)\nclass {cls}:\n{body}")
        if p.uses_state:
            parts.append("\n" + ATTEMPT_HELPER)
        for text in self.functions + steps:
            parts.append("\n\n" + text)
        cache = "" if p.enable_cache else ", enable_cache=False"
        limit = "" if p.max_parallel is None else f", max_parallel={p.max_parallel}"
        parts.append(f"\n\npipeline = Pipeline({p.name!r}, context=ctx{cache}{limit})\n{self.adds()}")
        return "".join(parts)

    def adds(self) -> str:
        """The add_step calls, in `add_order`: chained, and those of
        `loop` in a loop over a literal tuple or list of the functions."""
        p = self.pipeline
        start, stop, kind = p.loop or (len(p.add_order), len(p.add_order), "")
        lines = []
        for first, last in ((0, start), (stop, len(p.add_order))):
            if first == stop and start < stop:
                names = ", ".join(p.steps[i].function for i in p.add_order[start:stop])
                seq = f"[{names}]" if kind == "list" else f"({names})"
                lines.append(f"for each in {seq}:\n    pipeline.add_step(each)\n")
            if first < last:
                lines.append("pipeline" + "".join(self.add_step(p.steps[i]) for i in p.add_order[first:last]) + "\n")
        return "".join(lines)


def source(pipeline: Pipeline, origin: str = "") -> str:
    """The pipeline module's text."""
    return _Writer(pipeline).module(origin or pipeline.name)
