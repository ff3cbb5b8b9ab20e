"""Where local runs keep their records, outputs and cache.

    <store>/runs/<run_id>/record.json         what happened (written when the run starts,
                                              when it ends, and when it is interrupted)
    <store>/runs/<run_id>/steps.jsonl         one JSON line per finished step, appended
                                              and flushed as each step finishes
    <store>/runs/<run_id>/outputs/<name>.json each output produced, as the envelope it
    <store>/runs/<run_id>/outputs/<name>.pkl  travelled in: JSON when exact, else a pickle
    <store>/cache/<key>.pkl                   cached step outputs (their envelopes), by key

The store is `store=` when given, else `$PIPEC_HOME`, else `.pipec/` under the
current working directory.  Every file but `steps.jsonl` is written atomically
(a temporary file in the same folder, then `os.replace`), so a crashed run
leaves either the previous or the next version of a file, never half of one.
`steps.jsonl` is append-only: a crash can cut its last line short at worst,
and a line that does not parse is ignored.  Writing one line per step keeps
the cost of recording a step constant, however many steps the run has (the
record of a run that did not finish is `record.json` completed with these
lines: see `RunDir.read_resume_record`).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import secrets
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
LATEST = ("latest", "last")


def new_run_id() -> str:
    """A sortable run id: UTC time to the second, then 6 random hex digits."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit checked out in `cwd` (default: the current directory), or
    None when it is no git work tree or git is missing."""
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and commit else None


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class RunDir:
    """The folder of one run."""

    def __init__(self, path: Path):
        self.path = path
        self.run_id = path.name
        self.outputs_dir = path / "outputs"
        self.record_path = path / "record.json"
        self.steps_path = path / "steps.jsonl"

    def output_path(self, name: str, data: bytes | None = None) -> Path:
        """Where output `name` is kept: `.pkl` for a pickle envelope (or
        when `data` is not given), `.json` for a JSON one."""
        suffix = ".json" if data is not None and data[:1] != b"\x80" else ".pkl"
        return self.outputs_dir / (quote(name, safe="") + suffix)

    def save_output(self, name: str, data: bytes) -> str:
        """Keep one output's envelope (`_pipec_dumps`); its file URI."""
        path = self.output_path(name, data)
        atomic_write(path, data)
        return path.as_uri()

    def load_output(self, name: str) -> bytes:
        """The envelope `save_output` kept."""
        path = self.output_path(name)
        if not path.is_file():
            path = path.with_suffix(".json")
        return path.read_bytes()

    def load_value(self, name: str) -> Any:
        """The value of output `name` (read back from its envelope)."""
        from pipec.templates.task_runtime import _pipec_loads

        return _pipec_loads(self.load_output(name))

    def write_record(self, record: dict) -> None:
        text = json.dumps(record, indent=2, sort_keys=False, ensure_ascii=False, default=repr)
        atomic_write(self.record_path, (text + "\n").encode("utf-8"))

    def read_record(self) -> dict:
        """`record.json`; a ValueError when it cannot be read or is not
        shaped as pipec writes it (an edited or foreign file)."""
        try:
            record = json.loads(self.record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the record of run {self.run_id!r}: {exc}") from None
        problem = _record_problem(record)
        if problem:
            raise ValueError(f"the record of run {self.run_id!r} is not a pipec run record: {problem}")
        return record

    def open_step_log(self) -> "StepLog":
        return StepLog(self.steps_path)

    def read_step_log(self) -> dict[str, dict]:
        """The step results appended to `steps.jsonl`, by step name (the
        last line of a step wins); a missing file is no steps, a torn or
        unreadable line is skipped."""
        steps: dict[str, dict] = {}
        try:
            text = self.steps_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return steps
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if (
                isinstance(entry, dict)
                and isinstance(entry.get("name"), str)
                and _record_problem({"step_results": {"": entry}}) is None
            ):
                steps[entry["name"]] = entry
        return steps

    def read_resume_record(self) -> dict:
        """The record to resume from: `record.json`, whose `step_results`
        are completed from `steps.jsonl` when the run did not finish (it
        crashed or was killed after writing some steps)."""
        record = self.read_record()
        if not record.get("finished"):
            steps = dict(record.get("step_results") or {})
            steps.update(self.read_step_log())
            record["step_results"] = steps
        return record


def _record_problem(record: Any) -> str | None:
    """What is wrong with the shape of a run record, or None."""
    if not isinstance(record, dict):
        return "it is not a JSON object"
    for key, kind in (("pipeline_name", str), ("context", dict), ("step_results", dict)):
        if record.get(key) is not None and not isinstance(record[key], kind):
            return f"'{key}' is not a JSON {'string' if kind is str else 'object'}"
    for name, step in (record.get("step_results") or {}).items():
        if not isinstance(step, dict):
            return f"the result of step {name!r} is not a JSON object"
        for key in ("status", "error"):
            if step.get(key) is not None and not isinstance(step[key], str):
                return f"'{key}' of step {name!r} is not a string"
    return None


class StepLog:
    """`steps.jsonl`, open for appending: one compact JSON line per step,
    flushed at once so that it survives the process being killed."""

    def __init__(self, path: Path):
        self._file = open(path, "a", encoding="utf-8", newline="\n")

    def append(self, entry: dict) -> None:
        line = json.dumps(entry, ensure_ascii=False, default=repr, separators=(",", ":"))
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class Store:
    def __init__(self, root: Path):
        self.root = root
        self.runs_dir = root / "runs"
        self.cache_dir = root / "cache"

    @classmethod
    def open(cls, store: str | os.PathLike | None = None) -> "Store":
        if store is None:
            store = os.environ.get("PIPEC_HOME") or Path.cwd() / ".pipec"
        return cls(Path(store).expanduser().resolve())

    def create_run(self, run_id: str | None = None) -> RunDir:
        run_id = run_id or new_run_id()
        if not RUN_ID_RE.match(run_id) or run_id in (".", ".."):
            raise ValueError(f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-'")
        path = self.runs_dir / run_id
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()
        except FileExistsError:
            raise ValueError(f"run {run_id!r} already exists in {self.runs_dir}") from None
        (path / "outputs").mkdir()
        return RunDir(path)

    def find_run(self, run_id: str, pipeline_name: str) -> RunDir:
        """The run `run_id` of pipeline `pipeline_name` (or its latest run,
        for "latest"), for resuming."""
        if run_id in LATEST:
            return self._latest(pipeline_name)
        run = RunDir(self.runs_dir / run_id)
        if not RUN_ID_RE.match(run_id) or not run.record_path.is_file():
            raise ValueError(f"no run {run_id!r} in {self.runs_dir}")
        name = run.read_record().get("pipeline_name")
        if name != pipeline_name:
            raise ValueError(f"run {run_id!r} is a run of pipeline {name!r}, not {pipeline_name!r}")
        return run

    def _latest(self, pipeline_name: str) -> RunDir:
        found: list[tuple[str, str, RunDir]] = []
        for path in sorted(self.runs_dir.glob("*/record.json")):
            run = RunDir(path.parent)
            try:
                record = run.read_record()
            except (OSError, ValueError):
                continue
            if record.get("pipeline_name") == pipeline_name:
                found.append((record.get("started_at") or "", run.run_id, run))
        if not found:
            raise ValueError(f"no run of pipeline {pipeline_name!r} in {self.runs_dir}")
        return max(found, key=lambda item: item[:2])[2]

    # -- cache -------------------------------------------------------------
    def cache_get(self, key: str, ttl: float | None = None) -> dict | None:
        """The envelopes of the outputs cached under `key`, or None (also
        when they were cached more than `ttl` seconds ago)."""
        try:
            with open(self.cache_dir / f"{key}.pkl", "rb") as f:
                entry = pickle.load(f)
        except Exception:  # missing or corrupt: a miss
            return None
        outputs = entry.get("outputs") if isinstance(entry, dict) else None
        if not isinstance(outputs, dict) or not all(type(v) is bytes for v in outputs.values()):
            return None
        if ttl is not None and not time.time() - entry.get("created", 0.0) <= ttl:
            return None
        return outputs

    def cache_put(self, key: str, envelopes: dict[str, bytes]) -> None:
        entry = {"outputs": dict(envelopes), "created": time.time()}
        data = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write(self.cache_dir / f"{key}.pkl", data)
