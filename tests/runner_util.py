"""Local runs of pipeline modules written by a test: the runner runs what
the frontend compiles, so a test's pipeline lives in a module file."""

from __future__ import annotations

import importlib.util
import itertools
import textwrap
from pathlib import Path

HEADER = "from pipec import Pipeline, context, on_failure, retry, step, when\n\n"
_COUNT = itertools.count()


def write_module(folder: Path, source: str, name: str | None = None) -> Path:
    """`source` (dedented, with pipec's names imported) as a module file."""
    path = Path(folder) / f"{name or 'flow_%d' % next(_COUNT)}.py"
    path.write_text(HEADER + textwrap.dedent(source), encoding="utf-8")
    return path


def run_source(folder: Path, source: str, pipeline: str = "p", **options):
    """Write `source` as a module and run its pipeline `pipeline` locally."""
    from pipec.runner import run_pipeline
    from pipec.runner.plan import compile_pipeline

    ir_pipeline, root = compile_pipeline(pipeline, write_module(folder, source))
    return run_pipeline(ir_pipeline, root=root, **options)


def import_module(path: Path):
    """Import the module file at `path` (as a user's script would)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
