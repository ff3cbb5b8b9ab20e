"""What every command shares: the `Session` (parsed arguments, streams, the
problems found so far), the one place exit codes are decided, and the steps
that turn arguments into specs, overrides and the project's settings.

The commands (`compile_command`, `run_command`, `runs_command`) and the
argument parser (`cli`) import this module; it imports none of them, so the
arrows between them point one way.
"""

from __future__ import annotations

import argparse
import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pipec import config as cfg
from pipec.compile import COMMAND_LINE, Problem, Spec, render_problems
from pipec.diagnostics import Diagnostics
from pipec.ir import Span

EXIT_OK, EXIT_CHANGED, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


@dataclass
class Session:
    """Everything a command needs: parsed arguments, the streams, and the
    problems found so far."""

    args: argparse.Namespace
    out: TextIO
    err: TextIO
    problems: list[Problem] = field(default_factory=list)
    project: cfg.ProjectConfig | None = None
    reported: set[Problem] = field(default_factory=set)
    # True when the command prints its result (the IR) on stdout.
    stdout_taken: bool = False

    def error(self, code: str, span: Span | None = None, **fields: object) -> None:
        self.add(Diagnostics(), code, span, **fields)

    def add(
        self,
        diagnostics: Diagnostics,
        code: str | None = None,
        span: Span | None = None,
        **fields: object,
    ) -> None:
        """Take over `diagnostics` (after adding `code` to it, if given)."""
        if code:
            diagnostics.add(code, span or Span(COMMAND_LINE, 0, 0), **fields)
        # Paths of command-line files (--config, pyproject.toml) are relative to the cwd.
        self.problems.extend(
            Problem(d, None if d.path == COMMAND_LINE else Path.cwd())
            for d in diagnostics
        )

    @property
    def has_errors(self) -> bool:
        return any(p.diagnostic.severity == "error" for p in self.problems)

    @property
    def output_format(self) -> str:
        return getattr(self.args, "output_format", None) or "text"

    def report(self) -> None:
        """Print the problems not printed yet.  Text goes to stderr as it is
        found; JSON is one document, printed once by `finish`."""
        if self.output_format == "json":
            return
        new = [p for p in dict.fromkeys(self.problems) if p not in self.reported]
        stream = self.err if self.output_format == "text" else self.diagnostics_stream
        stream.write(render_problems(new, self.output_format))
        self.reported.update(new)

    @property
    def diagnostics_stream(self) -> TextIO:
        """Where json/github diagnostics go: stdout (as ruff prints them),
        unless stdout carries the compiled IR."""
        return self.err if self.stdout_taken else self.out

    def finish(self) -> None:
        if self.output_format == "json":
            self.diagnostics_stream.write(render_problems(dict.fromkeys(self.problems), "json"))


def exit_code(session: Session, *, changed: bool = False, failed: bool = False) -> int:
    """The one place exit codes are decided."""
    if session.has_errors:
        return EXIT_INPUT
    return EXIT_CHANGED if changed or failed else EXIT_OK


# --------------------------------------------------------------------------
# Shared steps


def specs_of(session: Session, given: list[str]) -> list[Spec]:
    """The specs given, or those of `[tool.pipec] modules`."""
    if given:
        return [Spec.parse(text) for text in given]
    project = session.project
    if project is None or not project.modules:
        session.error(
            "PC505",
            detail="nothing to do: give FILE arguments, or set modules in [tool.pipec] "
            "of pyproject.toml",
        )
        return []
    specs = []
    for pattern in project.modules:
        file, sep, name = (
            pattern.rpartition(":") if ":" in pattern else (pattern, "", "")
        )
        matches = sorted(glob.glob(str(project.folder / file), recursive=True))
        if not matches:
            session.error(
                "PC503",
                detail=f"modules pattern '{pattern}' in [tool.pipec] matches no file",
            )
        specs.extend(
            Spec(Path(m), name or None, m + sep + name, globbed=True)
            for m in matches
            if m.endswith(".py")
        )
    return specs


def overrides_of(session: Session) -> tuple[list[cfg.Override], cfg.Settings]:
    """--config first, then --set (the later wins)."""
    diagnostics = Diagnostics()
    overrides: list[cfg.Override] = []
    settings = cfg.Settings()
    if session.args.config:
        path = Path(session.args.config)
        overrides, settings = cfg.load_config_file(
            path, session.args.config, diagnostics
        )
    overrides += cfg.parse_sets(session.args.sets, diagnostics)
    session.add(diagnostics)
    return overrides, settings


def load_project(session: Session) -> None:
    diagnostics = Diagnostics()
    session.project = cfg.load_project(Path.cwd(), diagnostics)
    session.add(diagnostics)


