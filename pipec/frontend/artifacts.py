"""File outputs and metrics of a step (`files=`, `metrics=`), checked.

- PC226: a name that is no output of the step;
- PC227: a file type that is none of `ir.ARTIFACT_TYPES`;
- PC228: `files` or `metrics` on a foreach step (its outputs are lists);
- PC229: an output that is both a file and metrics.
"""

from __future__ import annotations

from pipec import ir
from pipec.diagnostics import Diagnostics, did_you_mean
from pipec.frontend.declarations import StepDecl


def typed_outputs(
    decl: StepDecl, step: str, outputs: tuple[str, ...], foreach: str | None, diagnostics: Diagnostics
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """(files, metrics) of the step, in output order; () where in error."""
    declared = decl.option("files") or {}
    if not isinstance(declared, dict):
        declared = {name: "Artifact" for name in declared}
    metrics = list(decl.option("metrics", ()))
    ok = True
    for option, names in (("files", list(declared)), ("metrics", metrics)):
        if not names:
            continue
        span = decl.options[option].span
        if foreach is not None:
            diagnostics.error("PC228", span, step=step, option=option)
            ok = False
        for name in names:
            if name not in outputs:
                shown = ", ".join(outputs) or "none"
                hint = did_you_mean(name, outputs)
                diagnostics.error("PC226", span, option=option, step=step, name=name, outputs=shown, hint=hint)
                ok = False
    for name, kind in declared.items():
        if kind not in ir.ARTIFACT_TYPES:
            known = ", ".join(repr(t) for t in ir.ARTIFACT_TYPES)
            hint = did_you_mean(kind, ir.ARTIFACT_TYPES)
            diagnostics.error("PC227", decl.options["files"].span, name=name, step=step, kind=kind, known=known, hint=hint)
            ok = False
        if name in metrics:
            diagnostics.error("PC229", decl.options["metrics"].span, name=name, step=step)
            ok = False
    if not ok:
        return (), ()
    files = tuple((name, declared[name]) for name in outputs if name in declared)
    return files, tuple(name for name in outputs if name in metrics)
