"""Compiling is safe: pipec never imports or runs the modules it reads
(CONTRACT §1 "Static means static"), for every target.

The modules of `tests/unsafe/` would, if run, exit (`raise SystemExit`,
`sys.exit`), write files in the current folder, run commands, import a
module that does not exist, and their step module does all of that too.
Compiled (in-process and through the console script), checked and drawn,
they must give exit 0 and the output, with no file written anywhere but the
output folder, no module imported, nothing exited; and the side effects must
not be carried into the generated files either (they are no code a step
uses), so that loading the output runs none of them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hostile_gen import REPO, TARGETS, cli, require_target, snapshot

UNSAFE = REPO / "tests" / "unsafe"
MODULES = sorted(p.name for p in UNSAFE.glob("unsafe_*.py"))
PIPELINES = [name[: -len(".py")] for name in MODULES]
EXTENSIONS = {"ir": ".json", "airflow": ".py", "kubeflow": ".yaml", "prefect": ".py", "dagster": ".py"}
SIDE_EFFECTS = ("PWNED", "touch ")


@pytest.fixture
def space(tmp_path: Path) -> dict[str, Path]:
    src = tmp_path / "src"
    src.mkdir()
    for path in UNSAFE.glob("*.py"):
        shutil.copy(path, src / path.name)
    work = tmp_path / "work"
    work.mkdir()
    return {"src": src, "work": work, "out": tmp_path / "out"}


# pipec's own frontend cache (pipec/frontend/cache.py) is the one thing
# compiling may write besides its output: it is pipec's bookkeeping, not an
# effect of the modules read.
OWN_CACHE = ".pipec/cache/"


def _assert_nothing_ran(space: dict[str, Path], before_src: dict[str, bytes]) -> None:
    loaded = [m for m in sys.modules if m.split(".")[0] in {"evil_steps", "definitely_missing_module_xyz", *PIPELINES}]
    assert not loaded, f"modules were imported: {loaded}"
    assert snapshot(space["work"]) == {}, f"files written in the cwd: {sorted(snapshot(space['work']))}"
    src = {name: data for name, data in snapshot(space["src"]).items() if not name.startswith(OWN_CACHE)}
    assert src == before_src, f"the source folder changed (a file written, or bytecode): {sorted(set(src) ^ set(before_src))}"


def _in_process(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    try:
        return cli(argv, cwd=cwd)
    except SystemExit as exc:  # the module's top level ran
        pytest.fail(f"pipec {argv[0]} ran a module: SystemExit({exc.code!r})")


def _assert_outputs(target: str, out: Path) -> None:
    written = snapshot(out)
    for pipeline in PIPELINES:
        assert pipeline + EXTENSIONS[target] in written, f"no output for {pipeline}: {sorted(written)}"
    for name, data in written.items():
        text = data.decode("utf-8")
        for marker in SIDE_EFFECTS:
            assert marker not in text, f"{name}: a module-level side effect ({marker!r}) was carried into the output"


@pytest.mark.parametrize("target", TARGETS)
def test_compile_runs_nothing_in_process(target: str, space: dict[str, Path]) -> None:
    require_target(target)
    before = snapshot(space["src"])
    files = [str(space["src"] / m) for m in MODULES]
    rc, _, err = _in_process(["compile", *files, "--target", target, "-o", str(space["out"])], space["work"])
    assert rc == 0, err
    _assert_nothing_ran(space, before)
    _assert_outputs(target, space["out"])


@pytest.mark.parametrize("target", TARGETS)
def test_compile_runs_nothing_through_the_console_script(target: str, space: dict[str, Path]) -> None:
    require_target(target)
    before = snapshot(space["src"])
    files = [str(space["src"] / m) for m in MODULES]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    argv = [sys.executable, "-c", "import sys; from pipec.cli import main; sys.exit(main())",
            "compile", *files, "--target", target, "-o", str(space["out"])]
    proc = subprocess.run(argv, cwd=space["work"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stderr}"
    _assert_nothing_ran(space, before)
    _assert_outputs(target, space["out"])


@pytest.mark.parametrize("target", TARGETS)
def test_check_and_graph_run_nothing(target: str, space: dict[str, Path]) -> None:
    """`pipec check` and `pipec graph` have no target; they run with each
    target's test so that every target's run covers the whole command line."""
    require_target(target)
    before = snapshot(space["src"])
    files = [str(space["src"] / m) for m in MODULES]
    rc, _, err = _in_process(["check", *files], space["work"])
    assert rc == 0, err
    for fmt in ("text", "mermaid", "dot"):
        rc, out, err = _in_process(["graph", *files, "--format", fmt], space["work"])
        assert rc == 0, err
        assert "numbers" in out and "total" in out, out
    _assert_nothing_ran(space, before)
