"""One code path for write, `--check` and `--diff` (as black does).

`plan(files)` compares what would be written with what is on disk and gives
one `Change` per file that differs (or is missing).  Everything up to there
is the same in every mode; only `apply()` branches, at the very end:

- write: every changed file is written atomically (a temporary file in the
  same folder, then `os.replace`), all temporary files first, so that a
  failure part way leaves the output folder as it was and no temporary file
  behind; unchanged files are not touched (their mtime stays);
- check: nothing is written; each changed file is named on stderr; exit 1
  when there is any;
- diff: nothing is written; a unified diff (`--- a/<path>` / `+++ b/<path>`,
  paths relative to the cwd) is printed on stdout; exit 0 (1 with check too,
  when something differs, as `black --check --diff`).

The caller compiles everything first and calls this only when compiling
reported no error: when compiling fails nothing is written at all.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, TextIO


@dataclass(frozen=True)
class Change:
    path: Path
    display: str
    old: str | None  # None: the file does not exist yet
    new: str


@dataclass(frozen=True)
class Plan:
    changes: list[Change]
    unchanged: list[Path]


def display_path(path: Path, base: Path | None = None) -> str:
    """`path` relative to `base` (default: the cwd), POSIX style."""
    base = base or Path.cwd()
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive
        return path.as_posix()


def read_existing(path: Path) -> str | None:
    """The file's text exactly as stored (no newline translation), or None
    when it does not exist or is not UTF-8 text (it will be replaced)."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, OSError):  # a folder, unreadable: writing will say why
        return ""


def plan(files: Mapping[Path, str], base: Path | None = None) -> Plan:
    changes: list[Change] = []
    unchanged: list[Path] = []
    for path, text in files.items():
        old = read_existing(path)
        if old == text:
            unchanged.append(path)
        else:
            changes.append(Change(path, display_path(path, base), old, text))
    return Plan(changes, unchanged)


def apply(the_plan: Plan, *, check: bool, diff: bool, out: TextIO, err: TextIO) -> int:
    """Carry out `the_plan`: write unless `check` or `diff`.  Returns the
    exit code: 1 when `check` and some file differs, else 0."""
    if diff:
        for change in the_plan.changes:
            out.write(unified_diff(change))
    if check:
        for change in the_plan.changes:
            verb = "would create" if change.old is None else "would rewrite"
            err.write(f"{verb} {change.display}\n")
    if check or diff:
        err.write(_summary(the_plan, "would be written", "would be left unchanged"))
        return 1 if check and the_plan.changes else 0
    write_all(the_plan.changes)
    for change in the_plan.changes:
        err.write(
            f"{'created' if change.old is None else 'rewrote'} {change.display}\n"
        )
    err.write(_summary(the_plan, "written", "left unchanged"))
    return 0


def _summary(the_plan: Plan, changed: str, unchanged: str) -> str:
    parts = []
    if the_plan.changes:
        parts.append(f"{_files(len(the_plan.changes))} {changed}")
    if the_plan.unchanged:
        parts.append(f"{_files(len(the_plan.unchanged))} {unchanged}")
    return "pipec: " + (", ".join(parts) or "nothing to do") + ".\n"


def _files(count: int) -> str:
    return f"{count} file" + ("" if count == 1 else "s")


def unified_diff(change: Change) -> str:
    old = (change.old or "").splitlines(keepends=True)
    new = change.new.splitlines(keepends=True)
    fromfile = "/dev/null" if change.old is None else f"a/{change.display}"
    lines = difflib.unified_diff(
        old, new, fromfile=fromfile, tofile=f"b/{change.display}"
    )
    text = ""
    for line in lines:
        text += (
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        )
    return text


# --------------------------------------------------------------------------
# Atomic, all-or-nothing writing


def write_all(changes: list[Change]) -> None:
    """Write every change, all or nothing: first each new text to a temporary
    file next to its target (and a backup link of each file it replaces),
    then replace the targets.  When anything fails, the files already
    replaced are restored, the ones already created removed, every temporary
    file deleted, and the error propagates."""
    for change in changes:
        if change.path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(change.path))
    staged: list[tuple[str, Path, str | None]] = []
    done: list[tuple[Path, str | None]] = []
    for folder in dict.fromkeys(change.path.parent for change in changes):
        remove_stale(folder)
    try:
        for change in changes:
            change.path.parent.mkdir(parents=True, exist_ok=True)
            staged.append((_stage(change), change.path, _backup(change.path)))
        for tmp, target, backup in staged:
            os.replace(tmp, target)
            done.append((target, backup))
    except BaseException:
        for target, backup in reversed(done):
            _restore(target, backup)
        raise
    finally:
        for tmp, _, backup in staged:
            for leftover in (tmp, backup):
                if leftover is not None:
                    try:
                        os.unlink(leftover)
                    except OSError:
                        pass


# Temporary and backup files: hidden, named after the file they stand for
# and the process that made them, with a suffix no scheduler loads
# (`.etl.py.1234.x8k2.pipec-tmp`): a scheduler watching the folder never
# sees a half-written or a backup `.py` / `.yaml`.
_LEFTOVER = re.compile(r"^\..+?\.(\d+)\.(?:[^.]*\.)?pipec-(?:tmp|bak)(?:\.restore)?$")


def remove_stale(folder: Path) -> None:
    """Remove the temporary and backup files that a pipec process killed
    while writing into `folder` left behind (those of live processes stay)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _LEFTOVER.match(name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process writes nothing before this cleanup
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or no pid at all: keep it
    return True


def _stem(name: str) -> str:
    """`name` as temporary and backup names start with it: whole when the
    names stay within the 255 bytes file systems allow, else cut, with a
    digest of the whole name so two long names never share one."""
    data = name.encode("utf-8", "surrogateescape")
    if len(data) <= 200:
        return name
    digest = hashlib.sha256(data).hexdigest()[:16]
    return data[:180].decode("utf-8", "ignore") + "~" + digest


def _backup(path: Path) -> str | None:
    """A hard link to the file `path` replaces (None when it is new)."""
    if not path.exists():
        return None
    backup = f"{path.parent}/.{_stem(path.name)}.{os.getpid()}.pipec-bak"
    try:
        os.unlink(backup)
    except OSError:
        pass
    try:
        os.link(path, backup)
    except OSError:  # a file system without hard links
        shutil.copy2(path, backup)
    return backup


def _restore(target: Path, backup: str | None) -> None:
    try:
        if backup is None:
            os.unlink(target)
        else:
            os.link(backup, f"{backup}.restore")
            os.replace(f"{backup}.restore", target)
    except OSError:
        pass


def _stage(change: Change) -> str:
    fd, tmp = tempfile.mkstemp(
        dir=change.path.parent,
        prefix=f".{_stem(change.path.name)}.{os.getpid()}.",
        suffix=".pipec-tmp",
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(change.new.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode(change.path))
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _mode(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets 0o666 minus the
    umask, as `open()` would give it (mkstemp makes 0o600)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
