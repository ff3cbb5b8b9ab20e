"""What every backend is: IR in, text out, capabilities declared as data.

A backend reads only the IR (never libcst, never the user's modules).  It
declares what it can express with `SUPPORTS_*` class constants; the one
`unsupported()` path turns a feature it cannot express into a located error
(or a warning with `--unsupported=warn`), and `note_metadata()` reports
pipeline metadata the format has no place for (kept in the header comment).
Before printing, `rewrites` (pure IR → IR functions) run in order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable, ClassVar

from pipec import ir
from pipec.diagnostics import Diagnostics


@dataclass(frozen=True)
class CompileOptions:
    """Options of one compile invocation that backends may read.

    `unsupported` is "error" (default) or "warn".  `settings` holds
    target-specific settings (from `[tool.pipec.<target>]` or `--config`),
    e.g. the kfp version a KFP container installs or Airflow's artifact
    location; each backend documents the keys it reads."""

    unsupported: str = "error"
    settings: tuple[tuple[str, object], ...] = ()
    pipec_version: str = ""

    def setting(self, key: str, default: object = None) -> object:
        # A backend lists the keys it reads, with their types, in its
        # `SETTINGS` table; configuration files are checked against it.
        for name, value in self.settings:
            if name == key:
                return value
        return default


@dataclass
class Emit:
    """What compiling one pipeline gave: the file name and its text."""

    filename: str
    text: str
    extra_files: list[tuple[str, str]] = field(default_factory=list)


class Backend:
    """Base class: subclasses set the class constants and `emit()`."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    extension: ClassVar[str] = ""
    # Capabilities: a feature a backend cannot express is an error naming the
    # step, the feature, the target and the location.
    SUPPORTS_RETRIES: ClassVar[bool] = True
    SUPPORTS_BACKOFF: ClassVar[bool] = True
    SUPPORTS_TIMEOUT: ClassVar[bool] = True
    SUPPORTS_WHEN: ClassVar[bool] = True
    SUPPORTS_FOREACH: ClassVar[bool] = True
    SUPPORTS_FALLBACK: ClassVar[bool] = True
    SUPPORTS_RESOURCES: ClassVar[bool] = True
    SUPPORTS_IMAGE: ClassVar[bool] = True
    SUPPORTS_PACKAGES: ClassVar[bool] = True
    SUPPORTS_SCHEDULE: ClassVar[bool] = True
    SUPPORTS_CACHE: ClassVar[bool] = True
    # The trigger rules (`ir.TRIGGERS`) a target maps, and the final step.
    SUPPORTED_TRIGGERS: ClassVar[tuple[str, ...]] = ir.TRIGGERS
    SUPPORTS_FINAL: ClassVar[bool] = True
    # Why the other rules and the final step are not, said in the PC601.
    ANYWAY_REASON: ClassVar[str] = ""

    rewrites: ClassVar[tuple[Callable[[ir.Pipeline], ir.Pipeline], ...]] = ()

    def __init__(self, options: CompileOptions, diagnostics: Diagnostics) -> None:
        self.options = options
        self.diagnostics = diagnostics

    # -- the one path for what a target cannot express -------------------
    def unsupported(self, step: ir.Step, feature: str, option: str, consequence: str = "it is ignored") -> None:
        span = step.option_span(option)
        if self.options.unsupported == "warn":
            self.diagnostics.add("PC602", span, step=step.name, feature=feature, target=self.name, consequence=consequence)
        else:
            self.diagnostics.add("PC601", span, step=step.name, feature=feature, target=self.name)

    def note_metadata(self, pipeline: ir.Pipeline, what: str) -> None:
        self.diagnostics.add("PC603", pipeline.span, what=what, target=self.name)

    def check_capabilities(self, pipeline: ir.Pipeline) -> None:
        """Report every feature of `pipeline` this backend cannot express."""
        for step in pipeline.steps:
            if step.retry.max_attempts > 1 and not self.SUPPORTS_RETRIES:
                self.unsupported(step, "retries", "retries")
            if step.retry.backoff != 1.0 and not self.SUPPORTS_BACKOFF:
                self.unsupported(step, "retry backoff", "retry_backoff")
            if step.timeout is not None and not self.SUPPORTS_TIMEOUT:
                self.unsupported(step, "a timeout", "timeout")
            if step.when is not None and not self.SUPPORTS_WHEN:
                self.unsupported(step, "a `when` condition", "when")
            if step.foreach is not None and not self.SUPPORTS_FOREACH:
                self.unsupported(step, "foreach fan-out", "foreach")
            if step.fallback is not None and not self.SUPPORTS_FALLBACK:
                self.unsupported(step, "an on_failure fallback", "on_failure")
            if not step.resources.is_empty() and not self.SUPPORTS_RESOURCES:
                self.unsupported(step, "resources (cpu/memory/gpu)", "cpu")
            if step.image is not None and not self.SUPPORTS_IMAGE:
                self.unsupported(step, "a container image", "image")
            if step.packages and not self.SUPPORTS_PACKAGES:
                self.unsupported(step, "packages", "packages")
            why = f" ({self.ANYWAY_REASON})" if self.ANYWAY_REASON else ""
            if step.final and not self.SUPPORTS_FINAL:
                self.unsupported(step, "a final step (final=True)" + why, "final")
            elif step.trigger not in self.SUPPORTED_TRIGGERS:
                self.unsupported(step, f"trigger={step.trigger!r}" + why, "trigger")

    # -- compile -----------------------------------------------------------
    def compile(self, pipeline: ir.Pipeline) -> Emit:
        for rewrite in self.rewrites:
            pipeline = rewrite(pipeline)
        self.check_capabilities(pipeline)
        return self.emit(pipeline)

    def emit(self, pipeline: ir.Pipeline) -> Emit:  # pragma: no cover - abstract
        raise NotImplementedError

    def filename(self, pipeline: ir.Pipeline) -> str:
        return pipeline.name + self.extension


@functools.lru_cache(maxsize=None)
def template_code(name: str) -> str:
    """The code of template file `name` after its module docstring, without
    the blank lines around it; read once per process.  Backends embed the
    runtime templates in what they generate this way."""
    text = resources.files("pipec.templates").joinpath(name).read_text(encoding="utf-8")
    end = text.index('"""', 3) + 3
    return text[end:].strip("\n")


_BACKENDS: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    _BACKENDS[cls.name] = cls
    for alias in cls.aliases:
        _BACKENDS[alias] = cls
    return cls


def targets() -> list[str]:
    """Primary target names, sorted."""
    _load_all()
    return sorted({cls.name for cls in _BACKENDS.values()})


# The module of each target name: `get()` imports only the one it needs, so
# compiling for one target does not pay for the others' imports.
_MODULES = {"ir": "ir_json", "airflow": "airflow", "kubeflow": "kubeflow", "kfp": "kubeflow", "prefect": "prefect", "dagster": "dagster"}


def get(target: str) -> type[Backend] | None:
    if target in _MODULES:
        _load(_MODULES[target])
    return _BACKENDS.get(target)


def _load_all() -> None:
    for module in dict.fromkeys(_MODULES.values()):
        _load(module)


def _load(module: str) -> None:
    # Each target's module registers itself on import.
    import importlib

    importlib.import_module(f"pipec.backends.{module}")
