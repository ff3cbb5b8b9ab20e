"""What the frontend returns, and where a module's source root is: the
types the frontend's own modules share (they import this, never the
package's `__init__`)."""

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
    # A hex digest of everything the result was built from (every file read,
    # every path looked for, the frontend itself): equal fingerprints, equal
    # results, so a caller may skip re-emitting unchanged outputs.
    fingerprint: str = ""

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
