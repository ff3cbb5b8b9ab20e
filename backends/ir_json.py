"""The `ir` target: the IR itself, as stable sorted JSON (one file per pipeline)."""

from __future__ import annotations

from pipec import ir
from pipec.backends.base import Backend, Emit, register


@register
class IRBackend(Backend):
    name = "ir"
    extension = ".json"

    def check_capabilities(self, pipeline: ir.Pipeline) -> None:
        """The IR expresses everything."""

    def emit(self, pipeline: ir.Pipeline) -> Emit:
        module = ir.Module(source_path=pipeline.source_path, module=pipeline.module, pipelines=(pipeline,))
        return Emit(self.filename(pipeline), ir.to_json(module))
