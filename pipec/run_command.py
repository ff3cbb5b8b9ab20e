"""`pipec run FILE[:PIPELINE]`: the frontend compiles the module (exit 2 on
input errors), then each selected pipeline's IR runs in order (without
:PIPELINE, all of the module's pipelines, in definition order), with
per-step progress (skip reasons, foreach elements, what each step prints
or logs, prefixed by its name) and a summary on stderr, ending with the
small output values and the run folder.  The module itself is never
imported: each step runs its carried code, as on every target.

`--json` writes one JSON document to stdout and nothing else: the run's
result (an array of results when several pipelines ran); everything else
goes to stderr.

Exit 0 when every run succeeded, 1 when one failed, 2 for input errors
(including an unknown --resume run).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pipec.session import Session, exit_code, overrides_of
from pipec.compile import Selected, Spec, load_specs

if TYPE_CHECKING:
    from pipec.runner import PipelineResult


def run_command(session: Session) -> int:
    args = session.args
    overrides, _ = overrides_of(session)
    spec = Spec.parse(args.spec)
    loaded = load_specs([spec], overrides)
    session.problems += loaded.problems
    if args.resume and len(loaded.selected) > 1:
        session.error(
            "PC505", detail="--resume needs one pipeline: name it as FILE:PIPELINE"
        )
    session.report()
    if session.has_errors or not loaded.selected:
        return exit_code(session)
    failed = False
    documents = []
    for selected in loaded.selected:
        result = run_one(session, selected)
        failed = result is None or not result.success or failed
        if result is not None:
            documents.append(result.to_dict())
        if session.has_errors:
            break
    if args.json and documents:
        document = documents[0] if len(loaded.selected) == 1 else documents
        session.out.write(
            json.dumps(document, indent=2, sort_keys=True, default=repr) + "\n"
        )
    return exit_code(session, failed=failed)


def run_one(session: Session, selected: Selected) -> "PipelineResult | None":
    from pipec.runner import ConsolePrinter, run_pipeline

    args = session.args
    name = selected.pipeline.name
    try:
        result = run_pipeline(
            selected.pipeline,
            root=selected.root,
            context=selected.context,
            store=args.store,
            resume=args.resume,
            progress=ConsolePrinter(session.err),
        )
    except ValueError as exc:  # unknown resume run, a plan the static check let through
        session.error("PC505", detail=f"cannot run pipeline '{name}': {exc}")
        session.report()
        return None
    except OSError as exc:  # --store names a file, or a folder pipec cannot write
        where = exc.filename or args.store or ".pipec"
        session.error(
            "PC505",
            detail=f"cannot run pipeline '{name}': cannot use the run store "
            f"'{where}': {exc.strerror or exc}",
        )
        session.report()
        return None
    # The progress printer already said how the run ended: show the table only.
    table = result.summary().splitlines()[1:]
    session.err.write("\n".join(table) + "\n")
    session.err.write(ending(result))
    return result


def ending(result: "PipelineResult") -> str:
    """The output values (short reprs) and where the run's files are."""
    lines = []
    if result.outputs:
        lines.append("  outputs:")
        lines += [
            f"    {name} = {_short(value)}" for name, value in result.outputs.items()
        ]
    lines.append(f"  run folder: {result.run_dir}")
    logs = Path(result.run_dir or ".") / "logs"
    if logs.is_dir():
        lines.append(f"  step logs: {logs}")
    return "\n".join(lines) + "\n"


def _short(value: object, limit: int = 80) -> str:
    try:
        text = " ".join(repr(value).split())
    except Exception as exc:  # a value whose repr raises
        text = f"<{type(value).__name__}: repr failed: {exc}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
