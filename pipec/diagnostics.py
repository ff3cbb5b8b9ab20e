"""Diagnostics as data: one registry of codes and messages, reported together.

Every problem pipec finds in its input is a `Diagnostic` (path, line, col,
severity, code, message).  Codes and message templates are defined once, in
`CODES`; code elsewhere raises nothing for input mistakes, it calls
`Diagnostics.error(code, span, **fields)` and goes on, so that one run reports
every problem at once.  `render()` prints them sorted, compiler style:

    pipeline.py:12:5: error: step 'train' takes input 'X_tran', which no step produces; did you mean 'X_train'?  [PC103]
        def train(X_tran, y_train):
            ^
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pipec.ir import Span

ERROR = "error"
WARNING = "warning"
NOTE = "note"


@dataclass(frozen=True)
class Code:
    code: str
    severity: str
    template: str


# The registry.  Keep codes stable: users grep for them and tests name them.
# PC0xx: reading the input; PC1xx: the pipeline graph; PC2xx: step options and
# bindings; PC3xx: context and pipeline options; PC4xx: static resolution;
# PC5xx: command line; PC6xx: targets (backends).
_REGISTRY: list[Code] = [
    Code("PC001", ERROR, "syntax error: {detail}"),
    Code("PC002", ERROR, "cannot read '{path}': {detail}"),
    Code("PC003", ERROR, "module '{module}' was not found in the source tree; pipec cannot follow this import"),
    Code("PC004", ERROR, "step '{step}' is imported from module '{module}', which was not found: pipec looked for {looked}; steps must be defined in the source tree"),
    Code("PC005", ERROR, "{detail}"),
    Code("PC101", ERROR, "steps form a cycle: {cycle}"),
    Code("PC102", ERROR, "output '{output}' is produced by both step '{first}' and step '{second}'; each output must come from exactly one step"),
    Code("PC103", ERROR, "step '{step}' takes input '{name}', which no step of pipeline '{pipeline}' produces{hint}"),
    Code("PC104", ERROR, "pipeline '{pipeline}' has two steps named '{step}'; step names must be unique"),
    Code("PC105", ERROR, "pipeline '{pipeline}' has no steps"),
    Code("PC201", ERROR, "unknown option '{option}' for @{decorator}{hint}"),
    Code("PC202", ERROR, "option '{option}' of @{decorator} must be {expected}, not {got}"),
    Code("PC203", ERROR, "parameter '{param}' of step '{step}' is bound to nothing: it is no input, no context key and has no default"),
    Code("PC204", ERROR, "`when` predicate of step '{step}' names '{name}', which is no upstream output and no context key{hint}"),
    Code("PC205", ERROR, "foreach='{name}' of step '{step}' names no parameter of '{function}'"),
    Code("PC206", ERROR, "foreach parameter '{name}' of step '{step}' is bound to {what}, which is not a list"),
    Code("PC207", ERROR, "declared input '{name}' is not a parameter of step function '{function}'; to run after a step without taking its outputs, name the step in after=[...]"),
    Code("PC208", ERROR, "@{decorator} must be applied to a module-level function"),
    Code("PC209", ERROR, "@{decorator} is placed above @step; put it below @step"),
    Code("PC210", ERROR, "{what} passed to @{decorator} cannot be resolved statically: {detail}"),
    Code("PC211", ERROR, "step '{step}' is not decorated with @step"),
    Code("PC212", ERROR, "option '{option}' of step '{step}' names '{name}' twice; each name must appear once"),
    Code("PC213", ERROR, "step '{step}' sets its retries twice, with @step({options}) and with @retry(...); keep one of them"),
    Code("PC214", ERROR, "{what} is {kind}; pipec uses the value it returns, so it must be a plain `def` function (no `async`, no `yield`)"),
    Code("PC215", ERROR, "step '{step}' declares {count} outputs {outputs}, but this `return` gives {got}"),
    Code("PC216", ERROR, "@{decorator} of step '{step}' names the step function itself; give it another function"),
    Code("PC217", ERROR, "fallback '{fallback}' of step '{step}' is called with the step's arguments, but {detail}"),
    Code("PC226", ERROR, "option '{option}' of step '{step}' names '{name}', which is no output of the step; its outputs: {outputs}{hint}"),
    Code("PC227", ERROR, "file output '{name}' of step '{step}' has type '{kind}'; the types are {known}{hint}"),
    Code("PC228", ERROR, "step '{step}' has foreach and declares {option}=...; a foreach step's outputs are lists of its elements' values, so they cannot be files or metrics: write them in a step after it"),
    Code("PC229", ERROR, "output '{name}' of step '{step}' is declared both as a file and as metrics; metrics are a dict of numbers, a file output is a path"),
    Code("PC230", ERROR, "step '{step}' runs after '{name}', which is no step of pipeline '{pipeline}'{hint}"),
    Code("PC231", ERROR, "pipeline '{pipeline}' has two final steps, '{first}' and '{second}'; a pipeline has at most one"),
    Code("PC232", ERROR, "final step '{step}' runs after every other step whatever happened; it takes no {option}=..."),
    Code("PC233", ERROR, "step '{step}' runs after final step '{name}', which runs after every other step; a final step has no downstream steps"),
    Code("PC240", NOTE, "parameter '{param}' of step '{step}' receives the context key '{param}', not its default {default}; to keep the default, rename the parameter or give the value with add_step(..., params={{'{param}': ...}})"),
    Code("PC218", ERROR, "step '{step}' sets max_parallel, which limits how many elements of a foreach step run at once, but it has no foreach; limit the whole pipeline with Pipeline(..., max_parallel=N)"),
    Code("PC220", ERROR, "unknown option '{option}' for add_step{hint}"),
    Code("PC221", ERROR, "option '{option}' of add_step must be {expected}, not {got}"),
    Code("PC222", ERROR, "{what} passed to add_step cannot be resolved statically: {detail}"),
    Code("PC223", ERROR, "`params` of step '{step}' gives '{name}', which is not a parameter of step function '{function}'{hint}"),
    Code("PC224", ERROR, "parameter '{name}' of step '{step}' is bound twice, by `inputs` and by `params`; keep one of them"),
    Code("PC225", ERROR, "foreach_key='{key}' of step '{step}' needs foreach=... (the parameter whose list elements are dicts)"),
    Code("PC301", ERROR, "context value for '{key}' is not a literal (str, int, float, bool, None, or a list or dict of those); give it a literal default and override it per run (--set, --config, the target's run parameters), or compute the value inside the step"),
    Code("PC302", ERROR, "invalid schedule '{schedule}': {detail}"),
    Code("PC303", ERROR, "unknown option '{option}' for Pipeline{hint}"),
    Code("PC304", ERROR, "option '{option}' of Pipeline must be {expected}, not {got}"),
    Code("PC305", ERROR, "two pipelines are named '{pipeline}'"),
    Code("PC306", ERROR, "unknown context key '{key}' in {where}; the context has: {known}"),
    Code("PC307", ERROR, "context key {key!r} is not a Python identifier; it cannot name a parameter"),
    Code("PC308", ERROR, "{call} gets '{option}' twice; give each argument once"),
    Code("PC309", ERROR, "context value for '{key}' cannot be carried: {detail}"),
    Code("PC310", ERROR, "invalid timezone '{timezone}': {detail}"),
    Code("PC401", ERROR, "{what} cannot be resolved statically: {detail}"),
    Code("PC402", ERROR, "pipeline '{pipeline}' is not defined in '{path}'{hint}"),
    Code("PC403", ERROR, "'{path}' defines no pipeline"),
    Code("PC404", ERROR, "'{name}' used by step '{step}' cannot be carried into the task: {detail}"),
    Code("PC405", ERROR, "name '{name}' is not defined: it is no parameter, local, module-level name, import or builtin{hint}"),
    Code("PC406", WARNING, "'{name}' is computed at run time by `{call}`, and every task computes it again: tasks can see another value than the local run; compute it inside the step, or make it a context value"),
    Code("PC408", ERROR, "`from {module} import *` cannot be resolved statically: pipec cannot tell which names it binds, so it cannot carry them into tasks; import the names you use"),
    Code("PC407", ERROR, "this statement changes '{name}', which step '{step}' uses, and cannot be carried into the task: {detail}"),
    Code("PC501", ERROR, "unknown target '{target}'; choose one of: {known}"),
    Code("PC502", ERROR, "invalid --set '{text}': {detail}"),
    Code("PC503", ERROR, "invalid configuration file: {detail}"),
    Code("PC504", ERROR, "pipelines '{first}' and '{second}' both compile to '{filename}'"),
    Code("PC505", ERROR, "{detail}"),
    Code("PC506", ERROR, "context key '{key}' of pipeline '{pipeline}' is {expected}; {where} gives {got}"),
    Code("PC507", NOTE, "context key '{key}' from {where} is not in the context of pipeline '{pipeline}'; ignored for it"),
    Code("PC601", ERROR, "step '{step}' uses {feature}, which target '{target}' cannot express"),
    Code("PC602", WARNING, "step '{step}' uses {feature}, which target '{target}' cannot express; {consequence}"),
    Code("PC603", NOTE, "the {target} output has no place for {what}; it is kept in the file's header comment"),
    Code("PC604", ERROR, "{what} cannot be used on target '{target}': {detail}"),
    Code("PC611", NOTE, "the KFP spec of pipeline '{pipeline}' is {size:,} bytes, over the {limit:,} bytes the KFP backend can store for a run (kubeflow/pipelines#10968); split the pipeline"),
    Code("PC612", ERROR, "{what} is not valid on KFP: {detail}"),
    Code("PC613", ERROR, "{option} of step '{step}' is {value} seconds; target '{target}' accepts at most {limit} seconds"),
    Code("PC614", ERROR, "setting '{key}' of target '{target}' must be {expected}, not {got}"),
]

CODES: dict[str, Code] = {c.code: c for c in _REGISTRY}


@dataclass(frozen=True)
class Diagnostic:
    path: str
    line: int
    col: int
    severity: str
    code: str
    message: str

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.col, self.code, self.message)

    def format(self) -> str:
        return f"{printable_path(self.path)}:{self.line}:{self.col}: {self.severity}: {self.message}  [{self.code}]"


def printable_path(path: str) -> str:
    """`path` as printed: control characters (a newline would forge another
    diagnostic line), invisible format characters and undecodable bytes
    (surrogate escapes) written as Python escapes, the rest as it is."""
    if path.isprintable():
        return path
    return "".join(
        c if c.isprintable() else repr(c)[1:-1] if c != "\\" else c for c in path
    )


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """"; did you mean 'x'?" for the closest candidate, or ""."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


class Diagnostics:
    """A collector: add problems as they are found, check `has_errors`."""

    def __init__(self) -> None:
        self._items: list[Diagnostic] = []

    def add(self, code: str, span: Span | None, **fields: object) -> Diagnostic:
        entry = CODES[code]
        message = entry.template.format(**fields)
        span = span or Span("<command line>", 0, 0)
        diagnostic = Diagnostic(span.path, span.line, span.col, entry.severity, code, message)
        if diagnostic not in self._items:
            self._items.append(diagnostic)
        return diagnostic

    error = add

    def extend(self, other: "Diagnostics | Iterable[Diagnostic]") -> None:
        for item in other:
            if item not in self._items:
                self._items.append(item)

    def __iter__(self):
        return iter(sorted(self._items, key=Diagnostic.sort_key))

    def __len__(self) -> int:
        return len(self._items)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == ERROR for d in self._items)

    def errors(self) -> list[Diagnostic]:
        return [d for d in self if d.severity == ERROR]


def render(
    diagnostics: Iterable[Diagnostic], root: Path | None = None, source_path: str | None = None
) -> str:
    """Sorted compiler-style text, with each source line and a caret.
    `root` is the source root the diagnostics' paths are relative to;
    `source_path`, when given, is the file to show lines from (relative to
    `root`) when the diagnostics' paths are display paths."""
    lines: list[str] = []
    for d in sorted(diagnostics, key=Diagnostic.sort_key):
        lines.append(d.format())
        path = source_path if source_path is not None else d.path
        source_line = _source_line(root, path, d.line) if root is not None else None
        if source_line is not None:
            lines.append("    " + source_line)
            lines.append("    " + " " * max(d.col - 1, 0) + "^")
    return "\n".join(lines) + ("\n" if lines else "")


def _source_line(root: Path, path: str, line: int) -> str | None:
    if line <= 0:
        return None
    try:
        text = (root / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    all_lines = text.splitlines()
    if line > len(all_lines):
        return None
    return all_lines[line - 1].rstrip().expandtabs(4)


class CompileError(Exception):
    """Raised by library entry points when the input has errors; carries them."""

    def __init__(self, diagnostics: Iterable[Diagnostic], root: Path | None = None):
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        self.root = root
        super().__init__(render(self.diagnostics, root).rstrip("\n"))
