"""The library entry: pipeline modules in, generated files out.

    result = compile_paths(["pipelines/train.py:ml_training"], "airflow")
    result.outputs      # {"ml_training.py": "...generated text..."}, in order
    result.problems     # every diagnostic of every file, with its source root

Compiling is two phases, so that several targets share one frontend run:
`load_specs()` reads every `FILE[:PIPELINE]` with the frontend, selects the
pipelines and applies context overrides; `compile_loaded()` runs a backend on
each selected pipeline.  Nothing raises for a mistake in the input: every
problem is collected (from all files at once) and the caller decides.

Stability self-check: with `PIPEC_VERIFY=1` (the test suite sets it), each
pipeline is emitted twice, by two fresh backend instances, and the texts must
be identical (an `UnstableOutput` is a pipec bug, not an input error).  It is
off by default because the second emit doubles the backend's share of a
compile (about half of it for a 1000-step pipeline); determinism across
processes, hash seeds and machines is what the test suite proves.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from pipec import ir
from pipec.config import COMMAND_LINE, Override
from pipec.diagnostics import Diagnostic, Diagnostics, did_you_mean, render, printable_path
from pipec.ir import Span


class UnstableOutput(RuntimeError):
    """Two emits of the same IR differ: a bug in a backend."""


@dataclass(frozen=True)
class Spec:
    """`FILE[:PIPELINE]` as given on the command line."""

    path: Path
    pipeline: str | None
    text: str
    # Matched by a `[tool.pipec] modules` glob: a module there that defines
    # no pipeline is a step library, skipped without a diagnostic.
    globbed: bool = False

    @classmethod
    def parse(cls, text: str, base: Path | None = None) -> "Spec":
        base = base or Path.cwd()
        path = Path(text)
        if ":" in text and not (base / path).is_file():
            file, _, name = text.rpartition(":")
            if file and name:
                return cls(base / file, name, text)
        return cls(base / path, None, text)


@dataclass(frozen=True)
class Problem:
    """A diagnostic and the source root its path is relative to (None for
    the command line and files named relative to the cwd)."""

    diagnostic: Diagnostic
    root: Path | None = None


@dataclass
class Selected:
    """One pipeline to compile or run: its IR (context overrides applied),
    the override values that apply to it, and where it came from."""

    pipeline: ir.Pipeline
    root: Path
    spec: Spec
    context: dict[str, object] = field(default_factory=dict)


@dataclass
class Loaded:
    selected: list[Selected] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(p.diagnostic.severity == "error" for p in self.problems)


@dataclass
class CompileResult:
    """`outputs`: {file name relative to the output folder: text}, in the
    order of the specs and of the pipelines in each module."""

    outputs: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return sorted((p.diagnostic for p in self.problems), key=Diagnostic.sort_key)

    @property
    def has_errors(self) -> bool:
        return any(p.diagnostic.severity == "error" for p in self.problems)


# --------------------------------------------------------------------------
# Phase 1: read, select, override


def load_specs(
    specs: Sequence[str | Spec],
    overrides: Sequence[Override] = (),
    libraries: bool = False,
) -> Loaded:
    """Read every spec.  With `libraries` (what `pipec check` does), a module
    that defines no pipeline is accepted as a step library; otherwise it is
    PC403, unless a `[tool.pipec]` glob matched it."""
    from pipec import frontend

    loaded = Loaded()
    for spec in specs:
        spec = spec if isinstance(spec, Spec) else Spec.parse(spec)
        if not spec.path.is_file():
            _add(
                loaded.problems,
                None,
                "PC002",
                Span(_shown(spec.path), 0, 0),
                path=_shown(spec.path),
                detail="no such file",
            )
            continue
        if not _utf8(spec.path):
            _add(
                loaded.problems,
                None,
                "PC002",
                Span(_shown(spec.path), 0, 0),
                path=printable_path(_shown(spec.path)),
                detail="the file name is not valid UTF-8, and generated files "
                "and diagnostics name their source; rename the file",
            )
            continue
        result = frontend.load(spec.path)
        loaded.problems.extend(Problem(d, result.root) for d in result.diagnostics)
        if result.module is not None:
            if not result.module.pipelines and (libraries or spec.globbed):
                continue
            for pipeline in _select(result.module, spec, result.root, loaded.problems):
                loaded.selected.append(Selected(pipeline, result.root, spec))
    _apply_overrides(loaded, overrides)
    loaded.problems = _unique(loaded.problems)
    return loaded


def _select(
    module: ir.Module, spec: Spec, root: Path, problems: list[Problem]
) -> list[ir.Pipeline]:
    """All pipelines of the module, or the one `spec` names (PC402 with a
    did-you-mean at the closest definition); PC403 when there is none."""
    if not module.pipelines:
        _add(
            problems,
            root,
            "PC403",
            Span(module.source_path, 0, 0),
            path=module.source_path,
        )
        return []
    if spec.pipeline is None:
        return list(module.pipelines)
    for pipeline in module.pipelines:
        if pipeline.name == spec.pipeline:
            return [pipeline]
    names = [p.name for p in module.pipelines]
    hint = did_you_mean(spec.pipeline, names)
    if not hint and names:
        hint = "; it defines: " + ", ".join(names)
    closest = next((p for p in module.pipelines if f"'{p.name}'" in hint), None)
    span = closest.span if closest else module.pipelines[0].span
    _add(
        problems,
        root,
        "PC402",
        span,
        pipeline=spec.pipeline,
        path=module.source_path,
        hint=hint,
    )
    return []


def _apply_overrides(loaded: Loaded, overrides: Sequence[Override]) -> None:
    """Each override must name a context key of some selected pipeline
    (PC306 otherwise; PC507 notes the pipelines it does not apply to), and
    keep the type of that key's default (PC506)."""
    if not loaded.selected:
        return
    known = sorted({p.name for s in loaded.selected for p in s.pipeline.context})
    by_key: dict[str, Override] = {}
    for override in overrides:  # later ones win: --config first, then --set
        by_key[override.key] = override
    for key, override in by_key.items():
        if key not in known:
            _add(
                loaded.problems,
                None,
                "PC306",
                override.span,
                key=key,
                where=override.where,
                known=", ".join(known) or "no keys",
            )
    for selected in loaded.selected:
        values: dict[str, object] = {}
        for key, override in by_key.items():
            param = selected.pipeline.context_param(key)
            if param is None:
                if key in known:
                    _add(
                        loaded.problems,
                        selected.root,
                        "PC507",
                        selected.pipeline.span,
                        key=key,
                        where=override.where,
                        pipeline=selected.pipeline.name,
                    )
                continue
            value = coerce(param, override, loaded.problems, selected.pipeline.name)
            if value is not _MISMATCH:
                values[key] = value
        selected.context = values
        selected.pipeline = ir.with_context(selected.pipeline, values)


_MISMATCH = object()


def coerce(
    param: ir.ContextParam, override: Override, problems: list[Problem], pipeline: str
) -> object:
    """The override's value in the type of the context default: an int where
    a float is expected becomes a float; where a str is expected, `--set`
    text is taken as written.  A default of None accepts anything."""
    value = override.value
    got = ir.literal_type(value)
    if param.type in ("null", got):
        return value
    if param.type == "float" and got == "int":
        return float(value)
    if (
        param.type == "str"
        and override.raw is not None
        and got in ("int", "float", "bool", "null")
    ):
        return override.raw
    _add(
        problems,
        None,
        "PC506",
        override.span,
        key=param.name,
        pipeline=pipeline,
        expected=f"{_a(param.type)} (default {value_text(param.default)})",
        where=override.where,
        got=f"{_a(got)} ({value_text(value)})",
    )
    return _MISMATCH


def _a(type_name: str) -> str:
    return (
        "None"
        if type_name == "null"
        else ("an " if type_name == "int" else "a ") + type_name
    )


def value_text(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------
# Phase 2: backends


def compile_loaded(loaded: Loaded, target: str, options=None) -> CompileResult:
    """Run the backend for `target` on every selected pipeline.  The caller
    has checked that `target` exists (`backends.base.get`)."""
    from pipec.backends.base import CompileOptions, get

    options = options or CompileOptions(pipec_version=_version())
    backend_class = get(target)
    result = CompileResult(problems=list(loaded.problems))
    producers: dict[str, ir.Pipeline] = {}
    for selected in loaded.selected:
        diagnostics = Diagnostics()
        files = _files(backend_class(options, diagnostics).compile(selected.pipeline))
        if os.environ.get("PIPEC_VERIFY") == "1" and (
            _files(backend_class(options, Diagnostics()).compile(selected.pipeline))
            != files
        ):
            raise UnstableOutput(
                f"target '{target}' gave two different outputs for pipeline "
                f"'{selected.pipeline.name}'"
            )
        result.problems.extend(Problem(d, selected.root) for d in diagnostics)
        for filename, text in files:
            _add_output(result, selected, filename, text, producers)
    result.problems = _unique(result.problems)
    return result


def _files(emit) -> list[tuple[str, str]]:
    return [(emit.filename, emit.text), *emit.extra_files]


_BAD_NAME = re.compile(r"[\x00-\x1f\\:*?\"<>|]")


# The longest file name (in bytes) common file systems accept.
NAME_MAX = 255


def _add_output(
    result: CompileResult,
    selected: Selected,
    filename: str,
    text: str,
    producers: dict[str, ir.Pipeline],
) -> None:
    pipeline = selected.pipeline
    path = PurePosixPath(filename)
    if (
        path.is_absolute()
        or ".." in path.parts
        or _BAD_NAME.search(filename)
        or filename.startswith(".")
    ):
        _add(
            result.problems,
            selected.root,
            "PC505",
            pipeline.span,
            detail=f"pipeline name {pipeline.name!r} cannot be used as a file name ('{filename}')",
        )
        return
    longest = max(len(part.encode("utf-8", "surrogateescape")) for part in path.parts)
    if longest > NAME_MAX:
        _add(
            result.problems,
            selected.root,
            "PC505",
            pipeline.span,
            detail=f"pipeline name {pipeline.name!r} makes the file name '{filename}' "
            f"{longest} bytes long; file systems allow {NAME_MAX}: shorten the name",
        )
        return
    if filename in producers:
        first = producers[filename]
        _add(
            result.problems,
            selected.root,
            "PC504",
            pipeline.span,
            first=first.name,
            second=pipeline.name,
            filename=filename,
        )
        return
    producers[filename] = pipeline
    result.outputs[filename] = text


def compile_paths(
    specs: Sequence[str | Spec],
    target: str,
    options=None,
    overrides: Sequence[Override] = (),
) -> CompileResult:
    """Compile every `FILE[:PIPELINE]` in `specs` for `target`."""
    from pipec.backends.base import get, targets

    loaded = load_specs(specs, overrides)
    if get(target) is None:
        _add(
            loaded.problems,
            None,
            "PC501",
            Span(COMMAND_LINE, 0, 0),
            target=target,
            known=", ".join(targets()),
        )
        return CompileResult(problems=loaded.problems)
    return compile_loaded(loaded, target, options)


# --------------------------------------------------------------------------
# Reporting


OUTPUT_FORMATS = ("text", "json", "github")


def _display(problem: Problem) -> str:
    """The path a diagnostic is printed with: relative to the working
    directory (as mypy and ruff print it) when the file is below it, else as
    an absolute path; the command line prints as "pipec"."""
    d = problem.diagnostic
    if d.path == COMMAND_LINE:
        return "pipec"
    if problem.root is None:
        return d.path
    return _shown(problem.root / d.path)


def _sorted(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(
        set(problems),
        key=lambda p: (p.diagnostic.path != COMMAND_LINE, _display(p), p.diagnostic.sort_key()),
    )


def render_problems(problems: Iterable[Problem], fmt: str = "text") -> str:
    """Every problem, sorted, compiler style (`fmt` "text"), as one JSON
    document ("json"), or as GitHub Actions workflow commands ("github", as
    ruff prints them).  A diagnostic without a line (a file as a whole, the
    command line) prints as `path: error: ...` in text."""
    items = _sorted(problems)
    if fmt == "json":
        return _render_json(items)
    if fmt == "github":
        return "".join(_render_github(p) for p in items)
    parts = []
    for problem in items:
        d = problem.diagnostic
        shown = dataclasses.replace(d, path=_display(problem))
        if d.line <= 0:
            parts.append(
                f"{printable_path(shown.path)}: {d.severity}: {d.message}  [{d.code}]\n"
            )
        else:
            parts.append(render([shown], problem.root, source_path=d.path))
    return "".join(parts)


def _render_json(items: list[Problem]) -> str:
    entries = []
    for problem in items:
        d = problem.diagnostic
        entries.append({
            "path": _display(problem),
            "line": d.line if d.line > 0 else None,
            "column": d.col if d.line > 0 else None,
            "severity": d.severity,
            "code": d.code,
            "message": d.message,
        })
    return json.dumps(entries, indent=2, ensure_ascii=False) + "\n"


def _github_escape(text: str, property_value: bool = False) -> str:
    """Escape for a workflow command (the rules of @actions/core)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _render_github(problem: Problem) -> str:
    d = problem.diagnostic
    level = {"error": "error", "warning": "warning"}.get(d.severity, "notice")
    props = [f"file={_github_escape(_display(problem), True)}"] if d.path != COMMAND_LINE else []
    if d.line > 0:
        props += [f"line={d.line}", f"col={d.col}"]
    props.append(f"title={_github_escape(f'pipec ({d.code})', True)}")
    message = _github_escape(f"{d.message}  [{d.code}]")
    return f"::{level} {','.join(props)}::{message}\n"


def _add(
    problems: list[Problem], root: Path | None, code: str, span: Span, **fields: object
) -> None:
    diagnostics = Diagnostics()
    diagnostics.add(code, span, **fields)
    problems.extend(Problem(d, root) for d in diagnostics)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: dict[Problem, None] = {}
    for problem in problems:
        seen.setdefault(problem, None)
    return list(seen)


def _utf8(path: Path) -> bool:
    """Whether `path`, as far as pipec writes it (from its source root on),
    is text: a name made of undecodable bytes holds surrogate escapes."""
    from pipec.frontend import source_root

    try:
        relative = path.resolve().relative_to(source_root(path))
    except ValueError:
        relative = path
    try:
        str(relative).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(path: Path) -> str:
    """`path` relative to the cwd when below it, absolute otherwise."""
    path = Path(os.path.abspath(path))
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def _version() -> str:
    from pipec.version import __version__

    return __version__
