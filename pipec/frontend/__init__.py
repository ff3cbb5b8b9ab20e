"""The static frontend: reads pipeline modules with libcst and builds the IR.

It never imports or executes the code it reads.

Entry point: `load(path) -> FrontendResult`.
"""

from __future__ import annotations

import gc
import hashlib
from pathlib import Path

from pipec import ir
from pipec.diagnostics import Diagnostic
from pipec.frontend.result import FrontendResult, source_root

__all__ = ["FrontendResult", "keep_sources", "load", "select", "source_root"]


def keep_sources() -> None:
    """Keep the parsed source trees of every later `load` until the process
    ends, instead of freeing each when its `load` returns.  For a process
    that exits without tearing the interpreter down (the console script):
    the memory goes back with the process, and freeing millions of nodes
    one by one is skipped."""
    from pipec.frontend import builder

    if builder.KEPT is None:
        builder.KEPT = []


def load(path: str | Path) -> FrontendResult:
    """Read the pipeline module at `path` (and the modules of its source tree
    that it imports) and build its IR.  Results are cached on disk per
    module (see `pipec.frontend.cache`): a module whose inputs have not
    changed since the last build is not parsed again."""
    # The trees are large and acyclic: the cyclic GC would only rescan them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _load(Path(path))
    finally:
        if collecting:
            gc.enable()


def _load(path: Path) -> FrontendResult:
    from pipec.frontend import cache

    root = source_root(path)
    file = path.resolve()
    key = data = None
    if cache.enabled():
        try:
            data = file.read_bytes()
            key = cache.entry_key(file.relative_to(root).as_posix(), data)
        except (OSError, ValueError):
            key = None
        if key is not None:
            entry = cache.load(root, key)
            if entry is not None:
                return FrontendResult(
                    entry.module, entry.diagnostics, root, entry.fingerprint
                )
    from pipec.frontend.builder import build

    result, inputs = build(path)
    result.fingerprint = cache.fingerprint(inputs)
    own = inputs.get("read:" + file.relative_to(root).as_posix())
    if key is not None and own == hashlib.sha256(data).hexdigest():
        entry = cache.Entry(result.module, result.diagnostics, inputs, result.fingerprint)
        cache.store(root, key, entry)
    return result


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
