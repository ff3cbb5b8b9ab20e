"""The pipeline language: `step`, `when`, `retry`, `on_failure`, `context`,
`Pipeline`.

This is a real library: a pipeline module imports and runs in plain Python
(`pipeline.run()` executes it locally).  The compiler never uses it: it reads
the same declarations statically (see `pipec.frontend`).  The option names
and defaults here are the ones the frontend accepts; both follow CONTRACT §1.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from pipec.options import ADD_STEP_SPECS, RETRY_SPECS, STEP_OPTIONS, STEP_SPECS

_ATTR = "__pipec__"


def _marks(fn: Callable, decorator: str = "step") -> dict:
    """The pipec settings that decorators below @step attached to `fn`."""
    if isinstance(fn, Step):
        # Above @step the mark would be silently lost: same rule as PC209.
        raise TypeError(f"@{decorator} is placed above @step on {fn.name!r}; put it below @step")
    marks = getattr(fn, _ATTR, None)
    if marks is None:
        marks = {}
        try:
            setattr(fn, _ATTR, marks)
        except AttributeError:  # builtins and the like
            pass
    return marks


def _check_options(decorator: str, options: Mapping[str, Any]) -> None:
    """The checks the compiler makes (PC202), at decoration time."""
    specs = {"step": STEP_SPECS, "add_step": ADD_STEP_SPECS}.get(decorator, RETRY_SPECS)
    for option, value in options.items():
        spec = specs.get(option)
        if spec is not None and not spec.check(value):
            raise TypeError(
                f"option '{option}' of @{decorator} must be {spec.expected}, not {value!r}"
            )


def when(predicate: Callable[..., Any]) -> Callable[[Callable], Callable]:
    """Run the step only when `predicate` is true.  Its parameters name
    upstream outputs or context keys."""

    def decorate(fn: Callable) -> Callable:
        _marks(fn, "when")["when"] = predicate
        return fn

    return decorate


def retry(max_attempts: int = 3, delay: float = 1.0, backoff: float = 2.0) -> Callable[[Callable], Callable]:
    """Try the step up to `max_attempts` times (the first try counts), waiting
    `delay * backoff ** (k - 1)` seconds before retry k."""

    _check_options("retry", {"max_attempts": max_attempts, "delay": delay, "backoff": backoff})

    def decorate(fn: Callable) -> Callable:
        _marks(fn, "retry")["retry"] = {"max_attempts": max_attempts, "delay": delay, "backoff": backoff}
        return fn

    return decorate


def on_failure(fallback: Callable[..., Any]) -> Callable[[Callable], Callable]:
    """When the step still fails after its last attempt, call `fallback` with
    the same arguments; its return value becomes the step's outputs."""

    def decorate(fn: Callable) -> Callable:
        _marks(fn, "on_failure")["on_failure"] = fallback
        return fn

    return decorate


@dataclass
class Step:
    """A decorated step.  Calling it calls the plain function."""

    fn: Callable[..., Any]
    name: str
    inputs: tuple[str, ...] | None
    outputs: tuple[str, ...]
    max_attempts: int = 1
    retry_delay: float = 1.0
    retry_backoff: float = 1.0
    timeout: float | None = None
    cache: bool | None = None
    image: str | None = None
    packages: tuple[str, ...] = ()
    cpu: str | None = None
    memory: str | None = None
    gpu: int | None = None
    foreach: str | None = None
    after: tuple[str, ...] = ()
    trigger: str = "all_succeeded"
    final: bool = False
    when: Callable[..., Any] | None = None
    fallback: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        # Look like the function: name, docstring, module, and __wrapped__
        # (so inspect.signature / inspect.getsource see the function).
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            try:
                object.__setattr__(self, attr, getattr(self.fn, attr))
            except AttributeError:
                pass
        self.__wrapped__ = self.fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def parameters(self) -> list[inspect.Parameter]:
        return list(inspect.signature(self.fn).parameters.values())

    def __repr__(self) -> str:
        return f"<pipec step {self.name!r}>"


def step(fn: Callable | None = None, **options: Any) -> Any:
    """`@step` or `@step(outputs=[...], ...)` on a module-level function."""
    unknown = sorted(set(options) - set(STEP_OPTIONS))
    if unknown:
        raise TypeError(f"unknown @step option(s): {', '.join(unknown)}")
    _check_options("step", options)

    def decorate(fn: Callable) -> Step:
        marks = dict(getattr(fn, _ATTR, {}))
        retries = int(options.get("retries", 0) or 0)
        attempts, delay, backoff = retries + 1, options.get("retry_delay", 1.0), options.get("retry_backoff", 1.0)
        if "retry" in marks:
            attempts = int(marks["retry"]["max_attempts"])
            delay = marks["retry"]["delay"]
            backoff = marks["retry"]["backoff"]
        inputs = options.get("inputs")
        return Step(
            fn=fn,
            name=options.get("name") or fn.__name__,
            inputs=tuple(inputs) if inputs is not None else None,
            outputs=tuple(options.get("outputs") or ()),
            max_attempts=attempts,
            retry_delay=float(delay),
            retry_backoff=float(backoff),
            timeout=options.get("timeout"),
            cache=options.get("cache"),
            image=options.get("image"),
            packages=tuple(options.get("packages") or ()),
            cpu=options.get("cpu"),
            memory=options.get("memory"),
            gpu=options.get("gpu"),
            foreach=options.get("foreach"),
            after=tuple(options.get("after") or ()),
            trigger=options.get("trigger") or "all_succeeded",
            final=bool(options.get("final")),
            when=marks.get("when"),
            fallback=marks.get("on_failure"),
        )

    if fn is not None:
        return decorate(fn)
    return decorate


class Context(dict):
    """The pipeline's run-time parameters and their defaults."""


def context(**values: Any) -> Context:
    return Context(values)


@dataclass
class Pipeline:
    name: str
    context: Mapping[str, Any] | None = None
    schedule: str | None = None
    description: str | None = None
    owner: str | None = None
    tags: Iterable[str] = ()
    enable_cache: bool = True
    version: str | None = None
    timezone: str | None = None
    max_parallel: int | None = None
    steps: list[Step] = field(default_factory=list)
    # The module file whose code created the pipeline: `run()` compiles it
    # statically and runs that pipeline's IR, as `pipec run FILE` does.
    defined_in: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.defined_in is None:
            # Two frames up: the dataclass's __init__, then its caller.
            caller = sys._getframe(2).f_globals.get("__file__")
            self.defined_in = str(Path(caller).resolve()) if caller else None

    def add_step(self, fn: Step | Callable, **options: Any) -> "Pipeline":
        """Add a step; keyword options (`name`, `inputs`, `params`,
        `outputs`, any @step option) make it an instance with its own
        bindings and options (what runs is what pipec compiles)."""
        if not isinstance(fn, Step):
            raise TypeError(f"{getattr(fn, '__name__', fn)!r} is not decorated with @step")
        unknown = sorted(set(options) - set(ADD_STEP_SPECS))
        if unknown:
            raise TypeError(f"unknown add_step option(s): {', '.join(unknown)}")
        _check_options("add_step", options)
        if "name" in options or "outputs" in options:
            outputs = options.get("outputs")
            fn = replace(
                fn,
                name=options.get("name") or fn.name,
                outputs=fn.outputs if outputs is None else tuple(outputs),
            )
        if any(s.name == fn.name for s in self.steps):
            raise ValueError(f"pipeline {self.name!r} already has a step named {fn.name!r}")
        self.steps.append(fn)
        return self

    def run(self, context: Mapping[str, Any] | None = None, **options: Any):
        """Run locally, in-process; returns a `PipelineResult`.  The keys of
        `context` override the context's defaults.  Options: `store`,
        `resume`, `progress`, `run_id` (see `pipec.runner.run_pipeline`).
        What runs is what pipec compiles: the pipeline of this name in the
        module file that created it, read statically."""
        from pipec.runner import run_pipeline

        return run_pipeline(self, context=context, **options)

    def __repr__(self) -> str:
        return f"<pipec Pipeline {self.name!r} ({len(self.steps)} steps)>"
