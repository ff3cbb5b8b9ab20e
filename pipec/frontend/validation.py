"""Checks on how pipec's decorators are placed, independent of pipelines."""

from __future__ import annotations

from pipec.diagnostics import Diagnostics
from pipec.frontend.declarations import PIPEC_DECORATORS, decorator_kind_in
from pipec.frontend.sources import SourceModule


def check_decorator_placement(module: SourceModule, diagnostics: Diagnostics) -> None:
    """PC208: pipec decorators on methods or nested functions (decorators
    are read in the scope around the function: a local `step` is not
    pipec's)."""
    for site in module.scan.nested:
        for decorator in site.node.decorators:
            kind = decorator_kind_in(module, decorator, site.scopes)
            if kind in PIPEC_DECORATORS:
                diagnostics.error("PC208", module.span(decorator), decorator=kind)
