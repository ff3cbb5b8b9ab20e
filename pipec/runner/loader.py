"""Import a pipeline module from a file, for `pipec run FILE[:PIPELINE]`.

Unlike the compiler, the local run does execute the user's module.  The
module is imported by its dotted name from its source root (the nearest
folder above it that is not a package), with that root first on sys.path, so
its absolute and relative imports work as they do for the compiler.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from pipec.frontend import source_root
from pipec.language import Pipeline


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def load_pipelines(path: str | Path) -> dict[str, Pipeline]:
    """The module-level `Pipeline` objects of the module at `path`, by name,
    in definition order.  The module is (re-)imported on every call; errors
    raised by its code propagate unchanged."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix != ".py":
        raise ValueError(f"not a Python file: {path}")
    root = source_root(path)
    name = module_name(path, root)
    if not all(part.isidentifier() for part in name.split(".")):
        raise ValueError(f"cannot import {path}: {name!r} is not a valid module name")
    _prepare(root, name)
    module = importlib.import_module(name)
    return _collect(module)


def _prepare(root: Path, name: str) -> None:
    """Put `root` first on sys.path and forget modules that would shadow the
    ones under it (an earlier import of the same name from elsewhere)."""
    entry = str(root)
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    sys.modules.pop(name, None)  # always run the module afresh
    parts = name.split(".")
    for i in range(1, len(parts)):
        package = ".".join(parts[:i])
        loaded = sys.modules.get(package)
        expected = root.joinpath(*parts[:i])
        paths = [Path(p).resolve() for p in getattr(loaded, "__path__", [])] if loaded else []
        if loaded is not None and expected.resolve() not in paths:
            for mod in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
                del sys.modules[mod]


def _collect(module) -> dict[str, Pipeline]:
    pipelines: dict[str, Pipeline] = {}
    for value in vars(module).values():
        if not isinstance(value, Pipeline):
            continue
        other = pipelines.get(value.name)
        if other is not None and other is not value:
            raise ValueError(f"two pipelines are named {value.name!r} in {module.__file__}")
        pipelines[value.name] = value
    return pipelines
