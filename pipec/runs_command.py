"""`pipec runs`: the local runs kept in the store, listed, shown, collected.

    pipec runs [--store DIR] [--pipeline NAME] [--json]
    pipec runs show RUN_ID [--store DIR] [--json]
    pipec runs gc [--keep N] [--older-than WHEN] [--dry-run] [--store DIR]

A run is its folder under `<store>/runs/` (see `pipec.runner.store`); the
list reads each `record.json` and nothing else.  `gc` removes whole run
folders and cache entries, never part of one; a run that has not finished is
kept (it may still be writing, or be resumed).
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pipec.session import Session, exit_code

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def runs_command(session: Session) -> int:
    from pipec.runner.store import Store

    args = session.args
    store = Store.open(args.store)
    if store.root.exists() and not store.root.is_dir():
        session.error("PC505", detail=f"--store '{args.store}' is a file, not a folder")
        session.report()
        return exit_code(session)
    action = getattr(args, "action", None) or "list"
    if action == "show":
        return _show(session, store, args.run_id)
    if action == "gc":
        return _gc(session, store)
    return _list(session, store)


# -- reading records ------------------------------------------------------------


def _records(store) -> list[dict[str, Any]]:
    """Every readable record, oldest first (by start time, then id)."""
    from pipec.runner.store import RunDir

    found = []
    if not store.runs_dir.is_dir():
        return found
    for path in sorted(store.runs_dir.iterdir()):
        run = RunDir(path)
        try:
            record = run.read_resume_record()
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        record = dict(record)
        record["run_id"] = run.run_id
        record["_path"] = path
        found.append(record)
    found.sort(key=lambda r: (str(r.get("started_at") or ""), r["run_id"]))
    return found


def _status(record: dict[str, Any]) -> str:
    if not record.get("finished"):
        return "unfinished"
    return "succeeded" if record.get("success") else "failed"


def _row(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": record["run_id"],
        "pipeline": record.get("pipeline_name"),
        "status": _status(record),
        "started_at": record.get("started_at"),
        "duration_seconds": record.get("duration_seconds"),
        "git_commit": record.get("git_commit"),
        "resumed_from": record.get("resumed_from"),
    }


# -- list -----------------------------------------------------------------------


def _list(session: Session, store) -> int:
    rows = [_row(r) for r in _records(store)]
    if session.args.pipeline:
        rows = [r for r in rows if r["pipeline"] == session.args.pipeline]
    if session.args.json:
        session.out.write(json.dumps(rows, indent=2) + "\n")
        return exit_code(session)
    if not rows:
        session.out.write(f"no runs in {store.runs_dir}\n")
        return exit_code(session)
    header = ("RUN ID", "PIPELINE", "STATUS", "STARTED", "DURATION", "COMMIT")
    table = [header] + [
        (
            r["run_id"],
            str(r["pipeline"]),
            r["status"],
            str(r["started_at"] or "-")[:19].replace("T", " "),
            _seconds(r["duration_seconds"]),
            (r["git_commit"] or "-")[:10],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        session.out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")
    return exit_code(session)


def _seconds(value: Any) -> str:
    return f"{value:.2f}s" if isinstance(value, (int, float)) else "-"


# -- show -----------------------------------------------------------------------


def _show(session: Session, store, run_id: str) -> int:
    from pipec.runner.store import LATEST

    records = _records(store)
    if run_id in LATEST and records:
        run_id = records[-1]["run_id"]
    record = next((r for r in records if r["run_id"] == run_id), None)
    if record is None:
        session.error("PC505", detail=f"no run '{run_id}' in {store.runs_dir}")
        session.report()
        return exit_code(session)
    outputs = _outputs(record)
    if session.args.json:
        data = {k: v for k, v in record.items() if not k.startswith("_")}
        data["outputs"] = {name: _json_value(value) for name, value in outputs.items()}
        logs = _logs(record)
        data["logs_dir"] = str(Path(record["_path"]) / "logs") if logs else None
        session.out.write(json.dumps(data, indent=2, default=repr) + "\n")
        return exit_code(session)
    row = _row(record)
    out = session.out
    out.write(f"run {row['run_id']} of pipeline {row['pipeline']}: {row['status']}\n")
    for key in ("started_at", "finished_at", "duration_seconds", "git_commit", "resumed_from"):
        if record.get(key) not in (None, ""):
            out.write(f"  {key}: {record[key]}\n")
    if record.get("context"):
        out.write("  context:\n")
        for key, value in record["context"].items():
            out.write(f"    {key} = {_short(value)}\n")
    out.write("  steps:\n")
    for name, step in (record.get("step_results") or {}).items():
        if not isinstance(step, dict):
            continue
        line = f"    {name}: {step.get('status')}"
        if step.get("attempts"):
            line += f", {step['attempts']} attempt{'s' * (step['attempts'] != 1)}"
        if step.get("reason"):
            line += f" ({step['reason']})"
        if step.get("error"):
            line += f" ({step['error']})"
        out.write(line + "\n")
    if outputs:
        out.write("  outputs:\n")
        for name, value in outputs.items():
            out.write(f"    {name} = {_short(value)}\n")
    out.write(f"  folder: {record['_path']}\n")
    logs = _logs(record)
    if logs:
        out.write(f"  logs: {Path(record['_path']) / 'logs'} ({', '.join(logs)})\n")
    return exit_code(session)


def _logs(record: dict[str, Any]) -> list[str]:
    """The step log files of a run (`<run>/logs/<step>.log`), by name."""
    folder = Path(record["_path"]) / "logs"
    try:
        return sorted(p.name for p in folder.iterdir() if p.suffix == ".log")
    except OSError:
        return []


def _outputs(record: dict[str, Any]) -> dict[str, Any]:
    from pipec.runner.store import RunDir

    run = RunDir(record["_path"])
    values: dict[str, Any] = {}
    for name in record.get("output_names") or []:
        try:
            values[name] = run.load_value(name)
        except Exception as exc:  # a missing file or a class that moved: say so
            values[name] = f"<unreadable: {type(exc).__name__}>"
    return values


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_value(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


# -- gc -------------------------------------------------------------------------


def parse_when(text: str) -> datetime | None:
    """A cut-off: a duration back from now (`30d`, `12h`, `2w`) or an ISO
    date/time (`2026-11-01`, `2026-11-01T12:00:00+00:00`); None if invalid."""
    match = _DURATION.match(text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return datetime.now(timezone.utc) - timedelta(**{_UNITS[unit]: amount})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _started(record: dict[str, Any]) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(record.get("started_at")))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _gc(session: Session, store) -> int:
    args = session.args
    if args.keep is None and args.older_than is None:
        session.error("PC505", detail="runs gc needs --keep N and/or --older-than WHEN")
    if args.keep is not None and args.keep < 0:
        session.error("PC505", detail="--keep must be 0 or more")
    cutoff = None
    if args.older_than is not None:
        cutoff = parse_when(args.older_than)
        if cutoff is None:
            session.error(
                "PC505",
                detail=f"--older-than '{args.older_than}' is no date (2026-11-01) or age (30d, 12h, 2w)",
            )
    session.report()
    if session.has_errors:
        return exit_code(session)
    finished = [r for r in _records(store) if r.get("finished")]
    if args.pipeline:
        finished = [r for r in finished if r.get("pipeline_name") == args.pipeline]
    doomed: dict[str, dict] = {}
    if args.keep is not None:
        for record in finished[: max(len(finished) - args.keep, 0)]:
            doomed[record["run_id"]] = record
    if cutoff is not None:
        for record in finished:
            started = _started(record)
            if started is not None and started < cutoff:
                doomed[record["run_id"]] = record
    entries = _old_cache_entries(store, cutoff) if cutoff is not None else []
    verb = "would remove" if args.dry_run else "removed"
    for record in sorted(doomed.values(), key=lambda r: r["run_id"]):
        if not args.dry_run:
            shutil.rmtree(record["_path"], ignore_errors=True)
        session.err.write(f"{verb} run {record['run_id']}\n")
    for path in entries:
        if not args.dry_run:
            path.unlink(missing_ok=True)
    session.err.write(
        f"pipec: {verb} {len(doomed)} run{'s' * (len(doomed) != 1)} and "
        f"{len(entries)} cache entr{'ies' if len(entries) != 1 else 'y'}\n"
    )
    return exit_code(session)


def _old_cache_entries(store, cutoff: datetime) -> list[Path]:
    if not store.cache_dir.is_dir():
        return []
    old = []
    for path in sorted(store.cache_dir.iterdir()):
        try:
            modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        except OSError:
            continue
        if path.is_file() and modified < cutoff:
            old.append(path)
    return old
