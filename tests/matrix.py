"""The differential-testing spine: every scenario runs locally (the reference)
and on every target, and the outcomes must be the same.

A target's test module provides `run(scenario, workdir) -> Outcome` and
compares it with `local_outcome(scenario, workdir)` through `assert_same`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SCENARIO_DIR = REPO / "tests" / "scenarios"
NO_PIPEC = REPO / "tests" / "no_pipec"


@dataclass(frozen=True)
class Scenario:
    id: str
    file: Path
    pipeline: str
    # Context overrides for the run; the string "{tmp}" in a value is replaced
    # by a fresh folder of the run (state that must survive retries).
    overrides: tuple[tuple[str, Any], ...] = ()
    # Targets that refuse the scenario (PC601: a construct they cannot express).
    refused_by: tuple[str, ...] = ()

    def context(self, workdir: Path) -> dict[str, Any]:
        state = workdir / "state"
        state.mkdir(parents=True, exist_ok=True)
        return {
            key: value.replace("{tmp}", state.as_posix()) if isinstance(value, str) else value
            for key, value in self.overrides
        }

    @property
    def source_root(self) -> Path:
        folder = self.file.parent
        while (folder / "__init__.py").exists():
            folder = folder.parent
        return folder


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("etl", EXAMPLES / "etl.py", "etl"),
    Scenario("gate_open", EXAMPLES / "training.py", "ml_training", (("threshold", 0.5),)),
    Scenario("gate_closed", EXAMPLES / "training.py", "ml_training", (("threshold", 0.99),)),
    Scenario("fanout_context", EXAMPLES / "fanout.py", "model_selection"),
    Scenario("fanout_upstream", EXAMPLES / "fanout.py", "shard_processing"),
    Scenario("retries_fallback", EXAMPLES / "resilient.py", "resilient", (("state_dir", "{tmp}"),)),
    Scenario("failure", SCENARIO_DIR / "failing.py", "failing"),
    Scenario("multi_module", EXAMPLES / "shop" / "pipelines.py", "orders"),
    Scenario("hostile", SCENARIO_DIR / "hostile.py", "hostile"),
    Scenario("crossing", SCENARIO_DIR / "crossing.py", "crossing"),
    Scenario("language", SCENARIO_DIR / "language.py", "language"),
    Scenario("instances", SCENARIO_DIR / "instances.py", "instances"),
    Scenario("foreach_key_missing", SCENARIO_DIR / "instances.py", "missing_key"),
    Scenario("after", SCENARIO_DIR / "after.py", "after"),
    Scenario("after_skipped", SCENARIO_DIR / "after.py", "after", (("threshold", 1),)),
    Scenario("after_failed", SCENARIO_DIR / "after.py", "after", (("size", -1),)),
    Scenario("anyway", SCENARIO_DIR / "anyway.py", "anyway", (), ("kubeflow", "dagster")),
    Scenario("anyway_ok", SCENARIO_DIR / "anyway.py", "anyway", (("divisor", 1),), ("kubeflow", "dagster")),
    Scenario("cleanup", SCENARIO_DIR / "cleanup.py", "nightly", (), ("dagster",)),
    Scenario("cleanup_ok", SCENARIO_DIR / "cleanup.py", "nightly", (("divisor", 1),), ("dagster",)),
    Scenario("limits", SCENARIO_DIR / "limits.py", "limits", (("state_dir", "{tmp}"),)),
    Scenario("files", SCENARIO_DIR / "files.py", "files"),
    Scenario("files_missing", SCENARIO_DIR / "files.py", "files", (("broken", True),)),
    Scenario("files_fallback", SCENARIO_DIR / "files.py", "files", (("backup_broken", True),)),
    Scenario("restock", EXAMPLES / "restock.py", "restock", (), ("kubeflow", "dagster")),
    Scenario("restock_failed", EXAMPLES / "restock.py", "restock", (("warehouse", "west"),), ("kubeflow", "dagster")),
)

SCENARIO_IDS = [s.id for s in SCENARIOS]


def scenarios_for(target: str) -> tuple[Scenario, ...]:
    """The scenarios target `target` accepts."""
    return tuple(s for s in SCENARIOS if target not in s.refused_by)


def refused_files(target: str) -> set[Path]:
    """Scenario modules that target `target` refuses (PC601)."""
    return {s.file for s in SCENARIOS if target in s.refused_by}


@dataclass
class Outcome:
    """What a run did: overall success, each step's status (succeeded,
    skipped, failed, upstream_failed) and every output produced."""

    success: bool
    statuses: dict[str, str]
    outputs: dict[str, Any] = field(default_factory=dict)
    # Steps the target's test runner never started (kfp.local stops at the
    # first failed task), with their outputs: the fuzzer cannot compare them.
    not_run: dict[str, tuple] = field(default_factory=dict)


def local_outcome(scenario: Scenario, workdir: Path) -> Outcome:
    """Run the scenario with pipec's local runner, in `workdir`."""
    from pipec.runner import run_pipeline
    from pipec.runner.plan import compile_pipeline

    pipeline, root = compile_pipeline(scenario.pipeline, scenario.file)
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        result = run_pipeline(pipeline, context=scenario.context(workdir), store=workdir / ".pipec", root=root)
    finally:
        os.chdir(cwd)
    statuses = {}
    for name, step_result in result.step_results.items():
        status = step_result.status
        statuses[name] = "succeeded" if status == "cached" else status
    files = {name for step in pipeline.steps for name in step.file_outputs}
    outputs = {k: file_value(v) if k in files else v for k, v in result.outputs.items()}
    return Outcome(result.success, statuses, outputs)


def file_value(path) -> tuple:
    """A file output as compared: ("<file>", base name, the file's bytes, or
    {relative path: bytes} of a directory's files).  Standard library only,
    self-contained: the target drivers embed it with `comparable`."""
    import pathlib

    path = pathlib.Path(path)
    if path.is_dir():
        contents = {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    else:
        contents = path.read_bytes()
    return ("<file>", path.name, contents)


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also compares types: 1 != 1.0 != True, list != tuple."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    return a == b


def comparable(value):
    """`value` with each dataclass instance replaced by ("<dataclass>", its
    class's qualified name, its fields): an object of a class defined in a
    pipeline module compares with one from another process (whose class was
    loaded from the carried code there).  Standard library only: the target
    drivers use it too."""
    import dataclasses

    if type(value) is tuple and len(value) == 3 and value[0] == "__pipec_file__":
        import io
        import os
        import tarfile
        import tempfile

        with tempfile.TemporaryDirectory() as folder:  # a packed file output: its contents
            with tarfile.open(fileobj=io.BytesIO(value[2])) as tar:
                tar.extractall(folder, filter="data")
            return file_value(os.path.join(folder, value[1]))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: comparable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return ("<dataclass>", type(value).__qualname__, fields)
    if type(value) is list:
        return [comparable(v) for v in value]
    if type(value) is tuple:
        return tuple(comparable(v) for v in value)
    if type(value) is dict:
        return {k: comparable(v) for k, v in value.items()}
    return value


def unreached(expected: Outcome, actual: Outcome) -> Outcome:
    """`expected` with the steps the target's test runner never started
    (`actual.not_run`: kfp.local stops a failed run at its first failed task,
    and orders independent tasks at random) marked "not_run" and their
    outputs dropped.  Tolerated in failed runs only: every step it did run
    must still match."""
    if expected.success or not actual.not_run:
        return expected
    statuses, outputs = dict(expected.statuses), dict(expected.outputs)
    for name, keys in actual.not_run.items():
        statuses[name] = "not_run"
        for key in keys:
            outputs.pop(key, None)
    return Outcome(expected.success, statuses, outputs)


def assert_same(expected: Outcome, actual: Outcome, target: str) -> None:
    assert actual.statuses == expected.statuses, f"{target}: step statuses differ from the local run"
    assert actual.success == expected.success, f"{target}: run success differs from the local run"
    assert sorted(actual.outputs) == sorted(expected.outputs), f"{target}: different outputs produced"
    for name, value in expected.outputs.items():
        value = comparable(value)
        assert strict_equal(comparable(actual.outputs[name]), value), (
            f"{target}: output {name!r} is {actual.outputs[name]!r} "
            f"({type(actual.outputs[name]).__name__}); the local run gave {value!r} ({type(value).__name__})"
        )


def no_pipec_env(extra_paths: list[Path] = (), base: dict | None = None) -> dict[str, str]:
    """An environment in which `import pipec` fails, with `extra_paths`
    (e.g. the scenario's source root, for its helper modules) on the path."""
    env = dict(os.environ if base is None else base)
    paths = [str(NO_PIPEC)] + [str(p) for p in extra_paths]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def assert_pipec_blocked(python: str = sys.executable, env: dict | None = None) -> None:
    """The blocker works: a subprocess with `no_pipec_env()` cannot import pipec."""
    import subprocess

    proc = subprocess.run(
        [python, "-c", "import pipec"], env=env or no_pipec_env(), capture_output=True, text=True, cwd=NO_PIPEC
    )
    assert proc.returncode != 0 and "must not be imported" in proc.stderr, proc.stderr
