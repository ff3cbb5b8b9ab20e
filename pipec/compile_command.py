"""`pipec compile`: specs and targets from the command line or
`[tool.pipec]`, one frontend pass, one backend pass per target, then the one
write / `--check` / `--diff` path of `pipec.output`.

Where files go, per target: `-o DIR`; else `[tool.pipec] output.<target>`
(or `out_dir`); else the current directory.  `--target ir` without `-o` (and
without `--check` / `--diff`) prints the JSON on stdout instead, as JSON Lines:
one compact document per pipeline, a line each, in order.  Nothing is written when anything reported an error.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipec import output
from pipec.session import Session, exit_code, load_project, overrides_of, specs_of
from pipec.compile import compile_loaded, load_specs
from pipec.config import Settings


def compile_command(session: Session) -> int:
    args = session.args
    load_project(session)
    overrides, file_settings = overrides_of(session)
    project_settings = session.project.settings if session.project else Settings()
    settings = project_settings.merged(file_settings)
    targets = resolve_targets(session)
    specs = specs_of(session, args.specs)
    if args.output_dir and len(targets) > 1:
        session.error(
            "PC505",
            detail="-o needs a single target; give each target a folder with "
            "output = {...} in [tool.pipec]",
        )
    loaded = load_specs(specs, overrides)
    session.problems += loaded.problems
    files: dict[Path, str] = {}
    to_stdout: list[str] = []
    for target in targets:
        result = compile_loaded(loaded, target, options_for(session, settings, target))
        session.problems += result.problems
        folder = output_dir(session, target)
        if folder is None:
            session.stdout_taken = True
            to_stdout.extend(_json_line(text) for text in result.outputs.values())
            continue
        for filename, text in result.outputs.items():
            _collect(session, files, folder / filename, text, target)
    session.report()
    if session.has_errors:
        return exit_code(session)
    session.out.write("".join(to_stdout))
    return write_outputs(session, files)


def _json_line(text: str) -> str:
    """One IR document as a line of JSON Lines (same data, same key order)."""
    return json.dumps(json.loads(text), sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def resolve_targets(session: Session) -> list[str]:
    """Primary target names: --target, else `[tool.pipec] targets`."""
    from pipec.backends.base import get, targets

    names = (
        [session.args.target]
        if session.args.target
        else (session.project.targets if session.project else [])
    )
    if not names:
        session.error(
            "PC505",
            detail="no target: give --target (one of: "
            + ", ".join(targets())
            + "), or set targets in [tool.pipec] of pyproject.toml",
        )
    resolved = []
    for name in names:
        backend = get(name)
        if backend is None:
            session.error("PC501", target=name, known=", ".join(targets()))
        elif backend.name not in resolved:
            resolved.append(backend.name)
    return resolved


def options_for(session: Session, settings: Settings, target: str):
    from pipec.version import __version__
    from pipec.backends.base import CompileOptions

    unsupported = session.args.unsupported or settings.unsupported or "error"
    values = settings.targets.get(target, {})
    if target == "prefect" and "flows_dir" not in values:
        values = dict(values, **_flows_dir(session))
    return CompileOptions(
        unsupported=unsupported,
        settings=tuple(sorted(values.items())),
        pipec_version=__version__,
    )


def _flows_dir(session: Session) -> dict[str, str]:
    """Prefect deployments name their entrypoints relative to the project
    root (where `prefect deploy` runs): the output folder relative to the
    pyproject.toml, when there is one and the folder is inside it."""
    folder = output_dir(session, "prefect")
    if session.project is None or folder is None:
        return {}
    try:
        relative = folder.resolve().relative_to(session.project.folder.resolve())
    except ValueError:
        return {}
    return {"flows_dir": relative.as_posix()}


def output_dir(session: Session, target: str) -> Path | None:
    """The folder for `target`'s files, or None for stdout."""
    args = session.args
    if args.output_dir:
        return Path(args.output_dir).absolute()
    configured = session.project.output_dir(target) if session.project else None
    if configured is not None:
        return configured.absolute()
    if target == "ir" and not (args.check or args.diff):
        return None
    return Path.cwd()


def _collect(
    session: Session, files: dict[Path, str], path: Path, text: str, target: str
) -> None:
    if path in files:
        session.error(
            "PC505",
            detail=f"two targets write '{output.display_path(path)}' (the second is "
            f"'{target}'); give each target its own folder",
        )
        return
    files[path] = text


def write_outputs(session: Session, files: dict[Path, str]) -> int:
    args = session.args
    if not files:
        return exit_code(session)
    the_plan = output.plan(files)
    try:
        rc = output.apply(
            the_plan, check=args.check, diff=args.diff, out=session.out, err=session.err
        )
    except OSError as exc:
        name = (
            output.display_path(Path(exc.filename))
            if exc.filename
            else "the output folder"
        )
        session.error(
            "PC505",
            detail=f"cannot write {name}: {exc.strerror or exc}; nothing was changed",
        )
        session.report()
        return exit_code(session)
    return exit_code(session, changed=rc != 0)
