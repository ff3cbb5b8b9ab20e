"""`pipec run FILE[:PIPELINE]`: the static check first (exit 2 on input
errors, nothing imported), then import the module and run each selected
pipeline in order (without :PIPELINE, all of the module's pipelines, in
definition order), with per-step progress and a summary on stderr.

Exit 0 when every run succeeded, 1 when one failed or the module could not
be imported (its own traceback is shown, pipec's frames left out), 2 for
input errors (including an unknown --resume run).
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

from pipec.session import Session, exit_code, overrides_of
from pipec.compile import Selected, Spec, load_specs


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
    pipelines = import_pipelines(session, spec)
    if pipelines is None:
        return exit_code(session, failed=True)
    failed = False
    for selected in loaded.selected:
        failed = not run_one(session, pipelines, selected) or failed
        if session.has_errors:
            break
    return exit_code(session, failed=failed)


def import_pipelines(session: Session, spec: Spec) -> dict | None:
    from pipec.runner.loader import load_pipelines

    try:
        return load_pipelines(spec.path)
    except (Exception, SystemExit) as exc:
        session.err.write(f"pipec: error: importing '{spec.path.name}' failed:\n")
        session.err.write(user_traceback(exc))
        return None


def user_traceback(exc: BaseException) -> str:
    """The exception with only the frames of the user's code."""
    import pipec

    own = str(Path(pipec.__file__).resolve().parent)
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(own) and not f.filename.startswith("<frozen")
    ]
    text = "".join(traceback.format_list(frames)) if frames else ""
    head = "Traceback (most recent call last):\n" if frames else ""
    return head + text + "".join(traceback.format_exception_only(type(exc), exc))


def run_one(session: Session, pipelines: dict, selected: Selected) -> bool:
    from pipec.runner import ConsolePrinter, run_pipeline

    args = session.args
    name = selected.pipeline.name
    live = pipelines.get(name)
    if live is None:
        session.err.write(
            f"pipec: error: importing the module defined no pipeline named {name!r} at run time\n"
        )
        return False
    try:
        result = run_pipeline(
            live,
            context=selected.context,
            store=args.store,
            resume=args.resume,
            progress=ConsolePrinter(session.err),
        )
    except ValueError as exc:  # unknown resume run, a plan the static check let through
        session.error("PC505", detail=f"cannot run pipeline '{name}': {exc}")
        session.report()
        return False
    # The progress printer already said how the run ended: show the table only.
    table = result.summary().splitlines()[1:]
    session.err.write("\n".join(table) + "\n")
    if args.json:
        session.out.write(
            json.dumps(result.to_dict(), indent=2, sort_keys=True, default=repr) + "\n"
        )
    return result.success
