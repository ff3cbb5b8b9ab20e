"""`pipec run FILE[:PIPELINE]`: the frontend compiles the module (exit 2 on
input errors), then each selected pipeline's IR runs in order (without
:PIPELINE, all of the module's pipelines, in definition order), with
per-step progress and a summary on stderr.  The module itself is never
imported: each step runs its carried code, as on every target.

Exit 0 when every run succeeded, 1 when one failed, 2 for input errors
(including an unknown --resume run).
"""

from __future__ import annotations

import json

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
    failed = False
    for selected in loaded.selected:
        failed = not run_one(session, selected) or failed
        if session.has_errors:
            break
    return exit_code(session, failed=failed)


def run_one(session: Session, selected: Selected) -> bool:
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
        return False
    except OSError as exc:  # --store names a file, or a folder pipec cannot write
        where = exc.filename or args.store or ".pipec"
        session.error(
            "PC505",
            detail=f"cannot run pipeline '{name}': cannot use the run store "
            f"'{where}': {exc.strerror or exc}",
        )
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
