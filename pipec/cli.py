"""The `pipec` command line (CONTRACT §3): arguments in, one library call,
diagnostics and an exit code out.

    pipec compile FILE[:PIPELINE]... --target T [-o DIR] [--set K=V]... [--config F]
                  [--check] [--diff] [--unsupported error|warn]
    pipec check   FILE[:PIPELINE]... [--set K=V]... [--config F]
    pipec run     FILE[:PIPELINE] [--set K=V]... [--config F] [--resume RUN_ID]
    pipec graph   FILE[:PIPELINE]... [--format text|mermaid|dot]

Exit codes, decided in one place (`exit_code`): 0 ok; 1 `--check` found a
difference, or a run failed; 2 errors in the input (or the command line);
3 an internal error of pipec.  Mistakes in the input are diagnostics on
stderr, never a traceback.  `compile` and `check` without FILE use the
`modules` of `[tool.pipec]` in the nearest pyproject.toml.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import traceback
from typing import TextIO

from pipec import config as cfg
from pipec.compile import OUTPUT_FORMATS, Spec, load_specs
from pipec.session import (EXIT_INPUT, EXIT_INTERNAL, Session, exit_code,
                           load_project, overrides_of, specs_of)

# --------------------------------------------------------------------------
# Arguments


def build_parser() -> argparse.ArgumentParser:
    from pipec.version import __version__

    parser = argparse.ArgumentParser(
        prog="pipec",
        description="Compile Python ML pipelines to Airflow, Kubeflow Pipelines and Prefect; "
        "check them; draw them; run them locally.",
    )
    parser.add_argument("--version", action="version", version=f"pipec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _compile_parser(commands)
    check = commands.add_parser(
        "check",
        help="static validation only (exit 0 or 2)",
        description="Check pipeline modules statically, without importing them.",
    )
    check.add_argument(
        "specs",
        nargs="*",
        metavar="FILE[:PIPELINE]",
        help="modules to check (default: modules of [tool.pipec])",
    )
    _context_arguments(check)
    _format_argument(check)
    run = commands.add_parser(
        "run",
        help="run a pipeline locally (exit 0 success, 1 failed, 2 input errors)",
        description="Check, then run a pipeline in-process with per-step progress on "
        "stderr.  Without :PIPELINE every pipeline of the module runs, in order.",
    )
    run.add_argument("spec", metavar="FILE[:PIPELINE]")
    _context_arguments(run)
    run.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="go on from an earlier run ('latest' for the last one)",
    )
    run.add_argument(
        "--store",
        metavar="DIR",
        help="folder for run records and outputs (default: .pipec/)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON document on stdout (an array when "
        "several pipelines run); nothing else goes to stdout",
    )
    _runs_parser(commands)
    graph = commands.add_parser(
        "graph",
        help="print the DAG as text, Mermaid or DOT",
        description="Print the pipeline's DAG, from the static IR, on stdout.",
    )
    graph.add_argument("specs", nargs="+", metavar="FILE[:PIPELINE]")
    graph.add_argument(
        "--format", "-f", choices=("text", "mermaid", "dot"), default="text"
    )
    return parser


def _runs_parser(commands) -> None:
    runs = commands.add_parser(
        "runs",
        help="list local runs; 'runs show RUN_ID'; 'runs gc' removes old runs",
        description="List the local runs kept in the store (id, pipeline, status, start, "
        "duration, git commit), show one, or remove old runs and cache entries.",
    )
    _store_arguments(runs)
    actions = runs.add_subparsers(dest="action", metavar="ACTION")
    show = actions.add_parser("show", help="print a run's record and outputs")
    show.add_argument("run_id", metavar="RUN_ID", help="a run id, or 'latest'")
    _store_arguments(show)
    gc_ = actions.add_parser(
        "gc",
        help="remove old runs (and cache entries not written since the cut-off)",
        description="Remove finished runs: all but the newest N (--keep), and/or those started "
        "before a cut-off (--older-than, which also removes cache entries not written "
        "since).  Unfinished runs are kept.",
    )
    gc_.add_argument("--keep", type=int, metavar="N", help="keep the newest N runs")
    gc_.add_argument(
        "--older-than",
        metavar="WHEN",
        help="a date (2026-11-01) or an age (30d, 12h, 2w)",
    )
    gc_.add_argument("--dry-run", action="store_true", help="say what would go; remove nothing")
    _store_arguments(gc_)


def _store_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="folder of run records, outputs and cache (default: $PIPEC_HOME, else .pipec/)",
    )
    p.add_argument(
        "--pipeline", metavar="NAME", default=argparse.SUPPRESS, help="only runs of this pipeline"
    )
    p.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON on stdout"
    )


def _compile_parser(commands) -> None:
    p = commands.add_parser(
        "compile",
        help="compile pipelines for a target (exit 0 ok, 1 --check differs, 2 input errors)",
        description="Write one file per pipeline into DIR.  Without FILE, the modules, targets and output "
        "folders of [tool.pipec] in the nearest pyproject.toml are used.",
    )
    p.add_argument("specs", nargs="*", metavar="FILE[:PIPELINE]")
    p.add_argument(
        "--target",
        "-t",
        help="airflow, kubeflow (kfp), prefect, dagster or ir (default: [tool.pipec] targets)",
    )
    p.add_argument(
        "-o",
        "--output-dir",
        metavar="DIR",
        help="output folder (default: [tool.pipec] output, else the current directory; "
        "--target ir without -o prints to stdout)",
    )
    _context_arguments(p)
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when a file would change",
    )
    p.add_argument(
        "--diff",
        action="store_true",
        help="write nothing; print a unified diff on stdout",
    )
    p.add_argument(
        "--unsupported",
        choices=cfg.UNSUPPORTED_MODES,
        help="what a feature the target cannot express is: an error (default) or a warning",
    )
    _format_argument(p)


def _format_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        default="text",
        help="how diagnostics are printed: text (compiler style, on stderr), json (one "
        "document on stdout) or github (GitHub Actions annotations on stdout)",
    )


def _context_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a context default (VALUE is YAML: 0.9, 3, true, abc, [a, b])",
    )
    p.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="context overrides (and a 'pipec:' settings table)",
    )


# --------------------------------------------------------------------------
# Entry


def main(
    argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """The console script: returns the exit code (the generated script
    passes it to `sys.exit`).

    Run as the console script (the `__main__` module calls this function
    with no arguments) for any command but `run`, the process ends here,
    once its output is flushed, without tearing the interpreter down
    (`os._exit`, as mypy does): freeing the parsed sources object by
    object would take longer than the rest of a large compile."""
    console = (
        argv is None
        and out is None
        and err is None
        and getattr(sys.modules.get("__main__"), "main", None) is main
    )
    session: list[Session] = []
    code = _main(argv, out, err, console, session)
    if console and session and session[0].args.command != "run":
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # a closed stream: let the normal exit report it
            return code
        os._exit(code)
    return code


def _main(
    argv: list[str] | None,
    out: TextIO | None,
    err: TextIO | None,
    console: bool,
    started: list[Session],
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    if args.command is None:
        build_parser().print_usage(err)
        err.write("pipec: error: a command is required: compile, check, run, runs or graph\n")
        return EXIT_INPUT
    session = Session(args, out, err)
    started.append(session)
    try:
        if console and args.command != "run":
            from pipec.frontend import keep_sources

            keep_sources()
            # A one-shot process that frees nothing before it ends: the
            # cyclic collector would only rescan the parsed sources and the
            # generated specs, over and over (a quarter of a large compile).
            gc.disable()
            # No other thread: large YAML may be written in two processes.
            from pipec.backends.yamlfmt import allow_fork

            allow_fork()
        code = COMMANDS[args.command](session)
        session.finish()
        return code
    except KeyboardInterrupt:
        err.write("pipec: interrupted\n")
        return 130
    except Exception as exc:  # a bug in pipec, never a mistake in the input
        err.write(f"pipec: internal error: {type(exc).__name__}: {exc}\n")
        if os.environ.get("PIPEC_DEBUG"):
            traceback.print_exc(file=err)
        else:
            err.write(
                "pipec: this is a bug in pipec; set PIPEC_DEBUG=1 for the traceback and report it\n"
            )
        return EXIT_INTERNAL


# --------------------------------------------------------------------------
# Commands


def cmd_check(session: Session) -> int:
    load_project(session)
    overrides, _ = overrides_of(session)
    specs = specs_of(session, session.args.specs)
    loaded = load_specs(specs, overrides, libraries=True)
    session.problems += loaded.problems
    session.report()
    if not session.has_errors:
        count, files = len(loaded.selected), len(specs)
        session.err.write(
            f"pipec: ok: {count} pipeline{'s' * (count != 1)} in {files} file{'s' * (files != 1)}\n"
        )
    return exit_code(session)


def cmd_graph(session: Session) -> int:
    from pipec import graph

    loaded = load_specs([Spec.parse(text) for text in session.args.specs])
    session.problems += loaded.problems
    session.report()
    if session.has_errors or not loaded.selected:
        return exit_code(session)
    session.out.write(
        graph.render([s.pipeline for s in loaded.selected], session.args.format)
    )
    return exit_code(session)


def cmd_compile(session: Session) -> int:
    from pipec.compile_command import compile_command

    return compile_command(session)


def cmd_run(session: Session) -> int:
    from pipec.run_command import run_command

    return run_command(session)


def cmd_runs(session: Session) -> int:
    from pipec.runs_command import runs_command

    for name, default in (("store", None), ("pipeline", None), ("json", False)):
        if not hasattr(session.args, name):
            setattr(session.args, name, default)
    return runs_command(session)


COMMANDS = {
    "compile": cmd_compile,
    "check": cmd_check,
    "run": cmd_run,
    "graph": cmd_graph,
    "runs": cmd_runs,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
