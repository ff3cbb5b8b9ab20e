"""Run a batch of generated pipelines locally and on the real targets, and
list every difference.

One batch = one folder: the modules under `src/`, `pipec check` and
`pipec compile` run once per target over all of them (the public command
line), the reference runs in this process (`matrix.local_outcome`, i.e.
`pipec.runner.run_pipeline`), and each target runs the whole batch in one
orchestrator process, pipec unimportable there:

- Airflow: one `targets_airflow.AirflowSession` driver, `dag.test()` per DAG
  (each DAG in its own sub-folder, so a `dag.test()` re-parses one file);
- Kubeflow: one process calling `kfp.local` for each YAML, read back with
  `targets_kubeflow.read_outcome`;
- Prefect: `targets_prefect.run_scenarios` (one test harness server);
- Dagster: `targets_dagster.run_scenarios` (one driver process,
  `execute_in_process` per job against one temporary instance).

A driver that dies takes its batch with it; the batch is then run again one
pipeline at a time so the culprit is named.

A target that refuses a pipeline with PC601 only (a construct it cannot
express, reported as such) does not run it: the report counts it as
refused on that target, not as a difference.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import matrix
from fuzz import compare, model

TARGETS = ("airflow", "kubeflow", "prefect", "dagster")
# Only a hung orchestrator process should reach this; on a loaded 2-core
# machine a KFP pipeline took up to a minute.
TIMEOUT_PER_PIPELINE = 300
PIPEC = [sys.executable, "-m", "pipec.cli"]


@dataclass
class Difference:
    pipeline: str
    target: str
    details: list[str]
    file: Path

    def __str__(self) -> str:
        body = "\n".join(f"    {d}" for d in self.details)
        return f"{self.pipeline} on {self.target} ({self.file}):\n{body}"


@dataclass
class Report:
    ran: dict[str, int] = field(default_factory=dict)  # target -> pipelines compared
    seconds: dict[str, float] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)  # target -> pipelines refused with PC601

    def summary(self) -> str:
        lines = [
            f"{t}: {n} pipelines compared in {self.seconds.get(t, 0):.1f} s"
            + (f", {len(self.refused[t])} refused (PC601)" if self.refused.get(t) else "")
            for t, n in self.ran.items()
        ]
        by_target = {}
        for d in self.differences:
            by_target[d.target] = by_target.get(d.target, 0) + 1
        lines.append(f"differences: {len(self.differences)} " + (f"{by_target}" if by_target else ""))
        return "\n".join(lines)


@dataclass(frozen=True)
class Case:
    """One pipeline module to compare: its pipeline's name (unique in the
    batch), the file, and the run's context overrides (`{tmp}` stands for
    a fresh folder of the run)."""

    name: str
    file: Path
    overrides: tuple = ()

    @property
    def scenario(self) -> matrix.Scenario:
        return matrix.Scenario(self.name, self.file, self.name, tuple(self.overrides))


def write_cases(pipelines: list[model.Pipeline], src: Path) -> list[Case]:
    src.mkdir(parents=True, exist_ok=True)
    cases = []
    for p in pipelines:
        path = src / f"{p.name}.py"
        path.write_text(model.source(p), encoding="utf-8")
        cases.append(Case(p.name, path, p.run_overrides()))
    return cases


class Batch:
    def __init__(self, cases: list[Case], root: Path, shared: dict | None = None):
        self.shared = {} if shared is None else shared  # orchestrator sessions kept between batches
        self.cases = {c.name: c for c in cases}
        self.files = {c.name: c.file for c in cases}
        self.root = root
        self.src = sorted({matrix.Scenario("", c.file, "").source_root for c in cases})
        self.report = Report()
        self.expected: dict[str, matrix.Outcome] = {}
        self.rejected: set[str] = set()
        self._ir: dict = {}

    def scenario(self, name: str) -> matrix.Scenario:
        return self.cases[name].scenario

    def ir(self, name: str):
        """The pipeline's IR (what the target readers need to know of it)."""
        if name not in self._ir:
            from pipec.frontend import load

            self._ir[name] = next(p for p in load(self.files[name]).module.pipelines if p.name == name)
        return self._ir[name]

    def shapes(self, name: str) -> dict[str, dict]:
        return {s.name: {"outputs": list(s.outputs), "foreach": s.foreach is not None} for s in self.ir(name).steps}

    def differ(self, name: str, target: str, details: list[str]) -> None:
        self.report.differences.append(Difference(name, target, details, self.files[name]))

    # -- pipec check and the reference run --------------------------------

    def check(self) -> None:
        """Every generated module must pass `pipec check`; one that does
        not is a difference of its own ("check") and runs nowhere."""
        proc = _pipec(["check", *map(str, self.files.values())])
        if proc.returncode == 0:
            return
        for name, path in self.files.items():
            one = _pipec(["check", str(path)])
            if one.returncode != 0:
                self.rejected.add(name)
                self.differ(name, "check", (one.stdout + one.stderr).strip().splitlines()[-12:])

    def local(self) -> None:
        start = time.perf_counter()
        for name in self.runnable():
            work = self.root / "local" / name
            work.mkdir(parents=True, exist_ok=True)
            try:
                self.expected[name] = matrix.local_outcome(self.scenario(name), work)
            except Exception:
                self.rejected.add(name)
                self.differ(name, "local", traceback.format_exc().strip().splitlines()[-8:])
        self.report.ran["local"] = len(self.expected)
        self.report.seconds["local"] = time.perf_counter() - start

    def runnable(self) -> list[str]:
        return [n for n in self.cases if n not in self.rejected]

    # -- the targets ------------------------------------------------------

    def compile(self, target: str, names: list[str]) -> tuple[Path, list[str]]:
        """Compile `names` into a fresh folder; the names that compiled.
        The modules the target refuses with PC601 only are set aside (one
        compile reports them all); any other failure is compiled again one
        module at a time, so that its message names its module."""
        out = self.root / target / "compiled"
        out.mkdir(parents=True, exist_ok=True)
        proc = _pipec(["compile", "--target", target, "-o", str(out), *(str(self.files[n]) for n in names)])
        if proc.returncode == 0:
            return out, names
        codes = error_codes(proc.stdout + proc.stderr)
        refused = [n for n in names if codes.get(self.files[n].resolve()) == {"PC601"}]
        self.report.refused.setdefault(target, []).extend(refused)
        rest = [n for n in names if n not in refused]
        if refused and rest and _pipec(["compile", "--target", target, "-o", str(out),
                                        *(str(self.files[n]) for n in rest)]).returncode == 0:
            return out, rest
        ok = []
        for name in rest:
            one = _pipec(["compile", "--target", target, "-o", str(out), str(self.files[name])])
            if one.returncode == 0:
                ok.append(name)
            elif error_codes(one.stdout + one.stderr).get(self.files[name].resolve()) == {"PC601"}:
                self.report.refused.setdefault(target, []).append(name)
            else:
                self.differ(name, target, ["compile failed:"] + (one.stdout + one.stderr).strip().splitlines()[-12:])
        return out, ok

    def run_target(self, target: str) -> None:
        start = time.perf_counter()
        names = [n for n in self.runnable() if n in self.expected]
        compiled, names = self.compile(target, names)
        runner = {"airflow": self._airflow, "kubeflow": self._kubeflow, "prefect": self._prefect,
                  "dagster": self._dagster}[target]
        outcomes = _isolating(lambda group: runner(compiled, group), names)
        for name in names:
            outcome = outcomes.get(name)
            if outcome is None:
                continue
            if isinstance(outcome, str):
                self.differ(name, target, outcome.strip().splitlines()[-15:])
                continue
            expected = self.expected[name]
            found = compare.differences(expected, outcome)
            if found:
                self.differ(name, target, found)
        self.report.ran[target] = sum(outcomes.get(n) is not None for n in names)
        self.report.seconds[target] = time.perf_counter() - start

    def _airflow(self, compiled: Path, names: list[str]) -> dict:
        from targets_airflow import AirflowSession

        session = self.shared.get("airflow")
        if session is None:  # one metadata database for every batch of a run
            session = self.shared["airflow"] = AirflowSession(self.root.parent / "airflow-session", self.src)
        session.source_roots = sorted(set(session.source_roots) | set(self.src))
        runs = []
        for name in names:
            folder = session.dags / name
            folder.mkdir(exist_ok=True)
            shutil.copy(compiled / f"{name}.py", folder / f"{name}.py")
            work = self.root / "airflow" / "work" / name
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            runs.append({"id": name, "dag_id": name, "conf": self.scenario(name).context(work), "cwd": str(work),
                         "steps": self.shapes(name), "dags_folder": str(folder)})
        result = session.run({"runs": runs, "keep_going": True}, timeout=300 + TIMEOUT_PER_PIPELINE * len(names))
        outcomes = {}
        for name in names:
            if name in result.get("errors", {}):
                outcomes[name] = result["errors"][name]
                continue
            run = result["runs"][name]
            outputs = pickle.loads(bytes.fromhex(run["outputs_repr"]))
            outcomes[name] = matrix.Outcome(run["state"] == "success", run["statuses"], outputs)
        return outcomes

    def _kubeflow(self, compiled: Path, names: list[str]) -> dict:
        import targets_kubeflow
        import yaml
        from pipec.backends.kubeflow_program import context_type

        root = self.root / "kubeflow" / f"run-{names[0]}-{len(names)}"
        jobs = []
        irs = {}
        for name in names:
            work = root / name
            for sub in ("pipeline_root", "cwd"):
                (work / sub).mkdir(parents=True)
            irs[name] = self.ir(name)
            context = self.scenario(name).context(work)
            for param in irs[name].context:  # values kfp cannot carry travel as JSON text
                if param.name in context and context_type(param) == "json":
                    context[param.name] = json.dumps(context[param.name])
            jobs.append({"id": name, "yaml": str(compiled / f"{name}.yaml"), "root": str(work / "pipeline_root"),
                         "cwd": str(work / "cwd"), "context": context})
        (root / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
        (root / "run_kfp.py").write_text(KFP_BATCH, encoding="utf-8")
        (root / "tmp").mkdir()
        env = matrix.no_pipec_env()
        env.update(TMPDIR=str(root / "tmp"), HOME=str(root / "tmp"), PYTHONDONTWRITEBYTECODE="1")
        with open(root / "kfp.log", "w", encoding="utf-8") as log:
            try:
                proc = subprocess.run(
                    [sys.executable, str(root / "run_kfp.py"), str(root / "jobs.json"), str(root / "out.json")],
                    cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=TIMEOUT_PER_PIPELINE * len(names))
                failed = proc.returncode != 0
            except subprocess.TimeoutExpired:
                failed = True
        # The driver writes its results after each pipeline: what finished counts.
        done = json.loads((root / "out.json").read_text()) if (root / "out.json").exists() else {}
        if failed and not done:
            raise DriverFailed(f"kfp driver failed; see {root / 'kfp.log'}")
        outcomes = {}
        for job in jobs:
            name = job["id"]
            if name not in done:
                continue  # not reached before the driver stopped: not compared (`ran` says how many were)
            if "error" in done[name]:
                outcomes[name] = done[name]["error"]
                continue
            spec = yaml.safe_load(Path(job["yaml"]).read_text())
            try:
                outcomes[name] = targets_kubeflow.read_outcome(irs[name], Path(job["root"]), done[name]["success"], spec)
            except Exception:
                outcomes[name] = "reading the kfp.local run back failed:\n" + traceback.format_exc()
        return outcomes

    def _prefect(self, compiled: Path, names: list[str]) -> dict:
        import targets_prefect

        base = self.root / "prefect" / f"run-{names[0]}-{len(names)}"
        results = targets_prefect.run_scenarios([self.scenario(n) for n in names], base,
                                                timeout=600 + TIMEOUT_PER_PIPELINE * len(names))
        outcomes = {}
        for name in names:
            run = results["runs"][name]
            outcomes[name] = run["error"] if "error" in run else targets_prefect.outcome(run)
        return outcomes

    def _dagster(self, compiled: Path, names: list[str]) -> dict:
        import targets_dagster

        base = self.root / "dagster" / f"run-{names[0]}-{len(names)}"
        scenarios = [self.scenario(n) for n in names]
        results = targets_dagster.run_scenarios(scenarios, base, rejected=False,
                                                timeout=300 + TIMEOUT_PER_PIPELINE * len(names))
        outcomes = {}
        for scenario in scenarios:
            run = results["runs"][scenario.id]
            outcomes[scenario.id] = run["error"] if "error" in run else targets_dagster.outcome(scenario, run)
        return outcomes


ERROR_LINE = re.compile(r"^(\S.*):\d+:\d+: error: .*\[(PC\d+)\]$", re.MULTILINE)


def error_codes(output: str) -> dict[Path, set[str]]:
    """The codes of the errors `pipec compile` printed, by module (a module
    whose only code is PC601 is refused by the target, as it should be)."""
    codes: dict[Path, set[str]] = {}
    for path, code in ERROR_LINE.findall(output):
        codes.setdefault(Path(path).resolve(), set()).add(code)
    return codes


class DriverFailed(AssertionError):
    pass


def _isolating(run, names: list[str]) -> dict:
    """`run(names)`; when the whole batch fails, each half again, so that a
    pipeline that kills its orchestrator process is the only one reported."""
    if not names:
        return {}
    try:
        return run(names)
    except (AssertionError, subprocess.TimeoutExpired) as exc:
        if len(names) == 1:
            return {names[0]: f"the orchestrator process failed: {str(exc)[-3000:]}"}
        print(f"an orchestrator process failed for {len(names)} pipelines; splitting the batch:\n{str(exc)[-1500:]}")
    half = len(names) // 2
    return {**_isolating(run, names[:half]), **_isolating(run, names[half:])}


def _pipec(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(PIPEC + args, capture_output=True, text=True, timeout=600)


KFP_BATCH = textwrap.dedent("""
    import json, os, sys, traceback
    from kfp import local
    from kfp.components import load_component_from_file

    jobs_path, out_path = sys.argv[1:3]
    with open(jobs_path) as f:
        jobs = json.load(f)
    done = {}
    for job in jobs:
        os.chdir(job["cwd"])
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=job["root"])
        try:
            pipeline = load_component_from_file(job["yaml"])
            try:
                pipeline(**job["context"])
                done[job["id"]] = {"success": True}
            except RuntimeError as exc:
                print("PIPELINE FAILED:", job["id"], exc)
                done[job["id"]] = {"success": str(exc)}
        except Exception:
            done[job["id"]] = {"error": "kfp.local could not run the pipeline:\\n" + traceback.format_exc()}
        with open(out_path + ".tmp", "w") as f:
            json.dump(done, f)
        os.replace(out_path + ".tmp", out_path)
    """)


def run(pipelines: list[model.Pipeline], root: Path, targets=TARGETS, progress=print, shared=None) -> Report:
    """Everything for one batch of generated pipelines."""
    return run_cases(write_cases(pipelines, root / "src"), root, targets, progress, shared)


def run_cases(cases: list[Case], root: Path, targets=TARGETS, progress=print, shared=None) -> Report:
    """Everything for one batch; the report lists every difference.
    `shared` (a dict) keeps the Airflow session for the next batch."""
    batch = Batch(cases, root, shared)
    batch.check()
    batch.local()
    progress(f"local: {len(batch.expected)} runs in {batch.report.seconds['local']:.1f} s")
    for target in targets:
        batch.run_target(target)
        progress(f"{target}: {batch.report.ran[target]} runs in {batch.report.seconds[target]:.1f} s")
    return batch.report


def save_differences(differences: list[Difference], folder: Path) -> Path:
    """Copy each module that differs into `folder`, the differences on top."""
    folder.mkdir(parents=True, exist_ok=True)
    by_module: dict[Path, list[Difference]] = {}
    for d in differences:
        by_module.setdefault(d.file, []).append(d)
    for file, found in by_module.items():
        notes = "".join(f"# {d.target}: {line}\n" for d in found for line in d.details)
        (folder / file.name).write_text(notes + "\n" + file.read_text(encoding="utf-8"), encoding="utf-8")
    return folder
