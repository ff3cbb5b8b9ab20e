"""The static frontend: reads pipeline modules with libcst and builds the IR.

It never imports or executes the code it reads.

Entry point: `load(path) -> FrontendResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipec import ir
from pipec.diagnostics import Diagnostic


@dataclass
class FrontendResult:
    """What the frontend made of one pipeline module.

    `module` is None when the input has errors; `diagnostics` holds every
    problem found (errors and notes); `root` is the module's source root (all
    paths in the IR and the diagnostics are relative to it)."""

    module: ir.Module | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    root: Path = Path(".")

    @property
    def ok(self) -> bool:
        return self.module is not None and not any(
            d.severity == "error" for d in self.diagnostics
        )


def source_root(path: Path) -> Path:
    """The nearest folder above `path` that is not a package."""
    folder = path.resolve().parent
    while (folder / "__init__.py").exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def load(path: str | Path) -> FrontendResult:
    """Read the pipeline module at `path` (and the modules of its source tree
    that it imports) and build its IR."""
    from pipec.frontend.builder import build_module

    return build_module(Path(path))


def select(
    result: FrontendResult, pipeline: str | None, path: str
) -> tuple[list[ir.Pipeline], list[Diagnostic]]:
    """The pipelines `FILE[:PIPELINE]` names: all of them without a name.
    PC403 when the module defines none, PC402 (with did-you-mean) for an
    unknown name; `path` is the file as the user wrote it."""
    from pipec.diagnostics import Diagnostics, did_you_mean

    diagnostics = Diagnostics()
    pipelines = list(result.module.pipelines) if result.module else []
    where = ir.Span(path, 0, 0)
    if not pipelines:
        diagnostics.error("PC403", where, path=path)
        return [], list(diagnostics)
    if pipeline is None:
        return pipelines, []
    chosen = [p for p in pipelines if p.name == pipeline]
    if not chosen:
        hint = did_you_mean(pipeline, [p.name for p in pipelines])
        diagnostics.error("PC402", where, pipeline=pipeline, path=path, hint=hint)
    return chosen, list(diagnostics)
