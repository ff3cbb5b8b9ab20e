"""Shared helpers of the review-and-safety tests (`test_determinism`,
`test_black_stable`, `test_injection`, `test_no_execution`): the sources to
compile, compiling in-process and through the command line, and strict
readers of what the backends write (YAML without duplicate keys, the
header, the Python that a file binds at top level).

Every test of those files runs on every target in `TARGETS`; a target that
is not registered fails through `require_target`, it is never skipped.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

import yaml

REPO = Path(__file__).resolve().parents[2]
TARGETS = ("ir", "airflow", "kubeflow", "prefect", "dagster")

# Every example and scenario, relative to the repository.
SOURCES: tuple[str, ...] = tuple(
    [p.relative_to(REPO).as_posix() for p in sorted((REPO / "examples").glob("*.py"))]
    + ["examples/shop/pipelines.py"]
    + [p.relative_to(REPO).as_posix() for p in sorted((REPO / "tests" / "scenarios").glob("*.py"))]
)


def require_target(target: str) -> None:
    from pipec.backends.base import get, targets

    assert get(target) is not None, f"target {target!r} is not registered; registered: {targets()}"


def source_root(path: Path) -> Path:
    folder = path.resolve().parent
    while (folder / "__init__.py").exists():
        folder = folder.parent
    return folder


def relative_source(path: Path) -> str:
    """The path pipec must print for `path`: relative to its source root."""
    return path.resolve().relative_to(source_root(path)).as_posix()


# --------------------------------------------------------------------------
# Compiling


def compile_outputs(paths: list[str | Path], target: str, *, allow_errors: bool = False,
                    unsupported: str = "warn"):
    """`pipec.compile.compile_paths` on `paths`; the CompileResult.  Fails
    with the rendered diagnostics when compiling reported an error.  A
    feature the target cannot express is a warning (`--unsupported=warn`),
    so that every example compiles for every target."""
    from pipec import __version__
    from pipec.backends.base import CompileOptions
    from pipec.compile import compile_paths, render_problems

    require_target(target)
    options = CompileOptions(unsupported=unsupported, pipec_version=__version__)
    result = compile_paths([str(p) for p in paths], target, options)
    if not allow_errors:
        assert not result.has_errors, render_problems(result.problems)
    return result


def cli(argv: list[str], cwd: Path | None = None) -> tuple[int, str, str]:
    """`pipec.cli.main(argv)` in-process, in `cwd`: (exit code, stdout, stderr)."""
    from pipec.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _chdir(cwd):
        try:
            rc = main(argv, out=out, err=err)
        except SystemExit as exc:  # pragma: no cover - a bug: main returns codes
            raise AssertionError(f"pipec main() raised SystemExit({exc.code!r}) for {argv}") from exc
    return rc, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def _chdir(cwd: Path | None) -> Iterator[None]:
    if cwd is None:
        yield
        return
    old = os.getcwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(old)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` (relative POSIX path → bytes)."""
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------
# Reading outputs


def kind(filename: str) -> str:
    if filename.endswith(".py"):
        return "python"
    if filename.endswith((".yaml", ".yml")):
        return "yaml"
    if filename.endswith(".json"):
        return "json"
    raise AssertionError(f"unexpected output file type: {filename}")


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys (PyYAML silently
    keeps the last one, which would hide an injected or colliding key)."""


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise AssertionError(f"duplicate YAML key {key!r} at line {key_node.start_mark.line + 1}")
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def parse(filename: str, text: str) -> Any:
    """The parsed file: an `ast.Module`, or the loaded YAML / JSON data."""
    k = kind(filename)
    if k == "python":
        return ast.parse(text, filename=filename)
    if k == "yaml":
        return load_yaml(text)
    return json.loads(text)


def leading_comments(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            lines.append(line)
        elif line.strip() and not line.startswith("#!"):
            break
    return "\n".join(lines)


def comment_lines(filename: str, text: str) -> list[str]:
    """The text of every comment of a Python or YAML file (for YAML: lines
    that are comments as a whole)."""
    if kind(filename) == "python":
        import tokenize

        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        return [t.string for t in tokens if t.type == tokenize.COMMENT]
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def header(filename: str, text: str) -> str:
    """The part of a file that may hold its header: the leading comments (and
    for Python the module docstring; for JSON the top-level strings)."""
    k = kind(filename)
    if k == "json":
        data = json.loads(text)
        assert isinstance(data, dict), f"{filename}: top level is not an object"
        return "\n".join(v for v in data.values() if isinstance(v, str))
    parts = [leading_comments(text)]
    if k == "python":
        parts.append(ast.get_docstring(ast.parse(text)) or "")
    return "\n".join(parts)


DO_NOT_EDIT = re.compile(r"do not edit|don't edit|must not be edited|not to be edited", re.IGNORECASE)


def check_header(filename: str, text: str, rel_source: str) -> None:
    h = header(filename, text)
    assert re.search(r"\bgenerated\b", h, re.IGNORECASE), f"{filename}: the header does not say it is generated:\n{h}"
    assert "pipec" in h.lower(), f"{filename}: the header does not name pipec:\n{h}"
    assert rel_source in h, f"{filename}: the header does not name the source {rel_source!r}:\n{h}"
    assert DO_NOT_EDIT.search(h), f"{filename}: the header does not say not to edit the file:\n{h}"


def top_level_rebinds(tree: ast.Module) -> list[str]:
    """Names bound by more than one top-level statement of a generated
    module (an import shadowed by a task function, two tasks of one name...)."""
    owners: dict[str, int] = {}
    twice: list[str] = []
    for index, node in enumerate(tree.body):
        for name in _bound(node):
            if name in owners and owners[name] != index and name not in twice:
                twice.append(name)
            owners.setdefault(name, index)
    return twice


def _bound(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Import):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [a.asname or a.name for a in node.names]
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return []


def kfp_structure_problems(doc: dict) -> list[str]:
    """References inside a PipelineSpec that do not resolve."""
    problems = []
    components = doc.get("components") or {}
    executors = (doc.get("deploymentSpec") or {}).get("executors") or {}

    def check_dag(where: str, dag: dict) -> None:
        tasks = (dag or {}).get("tasks") or {}
        for name, task in tasks.items():
            ref = (task.get("componentRef") or {}).get("name")
            if ref not in components:
                problems.append(f"{where}: task {name!r} names missing component {ref!r}")
            for dep in task.get("dependentTasks") or []:
                if dep not in tasks:
                    problems.append(f"{where}: task {name!r} depends on missing task {dep!r}")

    check_dag("root", (doc.get("root") or {}).get("dag"))
    for cname, component in components.items():
        label = component.get("executorLabel")
        if label is not None and label not in executors:
            problems.append(f"component {cname!r} names missing executor {label!r}")
        if "dag" in component:
            check_dag(cname, component["dag"])
    return problems


# --------------------------------------------------------------------------
# The examples and scenarios of the repository, read once per test session
# (the frontend dominates compile time); backends run per target.

_LOADED: list = []


def repo_loaded():
    """`pipec.compile.load_specs` of every source in `SOURCES` (cached)."""
    from pipec.compile import load_specs, render_problems

    if not _LOADED:
        loaded = load_specs([str(REPO / s) for s in SOURCES])
        assert not loaded.has_errors, render_problems(loaded.problems)
        _LOADED.append(loaded)
    return _LOADED[0]


def compile_loaded(loaded, target: str, *, unsupported: str = "warn"):
    """`pipec.compile.compile_loaded` with `--unsupported=warn`; fails on errors."""
    from pipec import __version__
    from pipec.backends.base import CompileOptions
    from pipec.compile import compile_loaded as compile_, render_problems

    require_target(target)
    result = compile_(loaded, target, CompileOptions(unsupported=unsupported, pipec_version=__version__))
    assert not result.has_errors, render_problems(result.problems)
    return result


def repo_outputs_by_source(target: str) -> dict[str, dict[str, str]]:
    """{source (as in SOURCES): {output file: text}} for `target`."""
    from pipec.compile import Loaded

    loaded = repo_loaded()
    by_source: dict[str, dict[str, str]] = {}
    for source in SOURCES:
        selected = [s for s in loaded.selected if s.spec.path == REPO / source]
        assert selected, f"{source}: no pipeline selected"
        by_source[source] = dict(compile_loaded(Loaded(selected=selected), target).outputs)
    return by_source
