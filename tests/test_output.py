"""The one write / --check / --diff path."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from pipec import output


def run(files, tmp_path, *, check=False, diff=False):
    out, err = io.StringIO(), io.StringIO()
    code = output.apply(
        output.plan(files, base=tmp_path), check=check, diff=diff, out=out, err=err
    )
    return code, out.getvalue(), err.getvalue()


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_write_creates_folders_and_files(tmp_path):
    files = {tmp_path / "a" / "x.py": "x\n", tmp_path / "a" / "b" / "y.yaml": "y\n"}
    code, out, err = run(files, tmp_path)
    assert (code, out) == (0, "")
    assert listing(tmp_path) == ["a", "a/b", "a/b/y.yaml", "a/x.py"]
    assert "created a/x.py" in err and "2 files written" in err


def test_new_files_get_normal_permissions(tmp_path):
    run({tmp_path / "x.py": "x\n"}, tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "x.py").stat().st_mode) == 0o666 & ~umask


def test_existing_permissions_kept(tmp_path):
    path = tmp_path / "x.py"
    path.write_text("old\n")
    path.chmod(0o640)
    run({path: "new\n"}, tmp_path)
    assert path.read_text() == "new\n" and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_check_and_diff_never_write(tmp_path):
    same, stale = tmp_path / "same.py", tmp_path / "stale.py"
    same.write_text("same\n")
    stale.write_text("old\n")
    files = {same: "same\n", stale: "new\n", tmp_path / "missing.py": "m\n"}
    before = {p: p.stat().st_mtime_ns for p in (same, stale)}
    code, out, err = run(files, tmp_path, check=True)
    assert code == 1 and out == ""
    assert (
        "would rewrite stale.py" in err
        and "would create missing.py" in err
        and "same.py" not in err
    )
    code, out, err = run(files, tmp_path, diff=True)
    assert code == 0
    assert "--- a/stale.py\n+++ b/stale.py\n" in out and "-old\n+new\n" in out
    assert "--- /dev/null\n+++ b/missing.py\n" in out
    assert listing(tmp_path) == ["same.py", "stale.py"]
    assert before == {p: p.stat().st_mtime_ns for p in (same, stale)}


def test_check_clean(tmp_path):
    (tmp_path / "a.py").write_text("a\n")
    assert run({tmp_path / "a.py": "a\n"}, tmp_path, check=True)[0] == 0


def test_newlines_are_compared_exactly(tmp_path):
    path = tmp_path / "a.py"
    path.write_bytes(b"a\r\n")
    assert run({path: "a\n"}, tmp_path, check=True)[0] == 1
    run({path: "a\n"}, tmp_path)
    assert path.read_bytes() == b"a\n"


def test_diff_without_final_newline(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    _, out, _ = run({tmp_path / "a.txt": "y"}, tmp_path, diff=True)
    assert out.endswith("+y\n\\ No newline at end of file\n")


def test_failure_while_staging_changes_nothing(tmp_path, monkeypatch):
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("old\n")
    real = output._stage
    calls = []

    def flaky(change):
        calls.append(change)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(change)

    monkeypatch.setattr(output, "_stage", flaky)
    with pytest.raises(OSError):
        run({first: "new\n", second: "new\n"}, tmp_path)
    assert listing(tmp_path) == ["a.py"] and first.read_text() == "old\n"


def test_failure_while_replacing_leaves_no_temp_file(tmp_path, monkeypatch):
    monkeypatch.setattr(
        output.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(13, "denied"))
    )
    with pytest.raises(OSError):
        run({tmp_path / "a.py": "a\n", tmp_path / "b.py": "b\n"}, tmp_path)
    assert listing(tmp_path) == []
