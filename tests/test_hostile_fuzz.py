"""Keep it true: generated hostile modules against the contract.

For every generated module — hostile values (`hostile_modules`), hostile
structure (`pipeline_sources`: names, options, nesting, `when`, retries)
and hypothesmith's random Python (`random_python_modules`) — `check`,
`graph` and `compile` for every target (in-process, as the console script
runs them) must:

- exit 0 or 2, never 3, never with a traceback;
- print every diagnostic as `path:line:col: severity: message  [CODE]`
  (only command-line problems and a file as a whole — PC002 / PC403 — have
  no line);
- write only files that load: Airflow files parse and load in `DagBag`,
  KFP YAML loads with `yaml.safe_load` and `load_component_from_file`,
  Prefect flow files import (all in one child process per test, see
  `hostile_gen/load_outputs.py`).

The suite runs a small budget (`PIPEC_HOSTILE_EXAMPLES`, default 6 per
strategy, derandomized); `scripts/hostile_fuzz.sh N` runs N per strategy by hand.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from hostile_gen import cli
from hostile_gen.strategies import hostile_modules, pipeline_sources, random_python_modules

EXAMPLES = int(os.environ.get("PIPEC_HOSTILE_EXAMPLES", "6"))
TARGETS = ("airflow", "kubeflow", "prefect", "ir")
LOADER = Path(__file__).parent / "hostile_gen" / "load_outputs.py"

_LOCATED = re.compile(r"^.+:\d+:\d+: (error|warning|note): .*  \[PC\d{3}\]$")
_WHOLE_FILE = re.compile(r"^.+: (error|warning|note): .*  \[PC(002|403)\]$")
_COMMAND_LINE = re.compile(r"^pipec: ")
_DIAGNOSTIC = re.compile(r": (error|warning|note): ")


def contract_problems(err: str, rc: int, command: list[str]) -> list[str]:
    problems = []
    if rc not in (0, 2):
        problems.append(f"exit {rc}")
    if "Traceback" in err or "internal error" in err:
        problems.append("a traceback or an internal error")
    for line in err.splitlines():
        if not _DIAGNOSTIC.search(line) or line.startswith(" "):  # progress, source lines
            continue
        if not (_LOCATED.match(line) or _WHOLE_FILE.match(line) or _COMMAND_LINE.match(line)):
            problems.append(f"a diagnostic without path:line:col: {line[:300]!r}")
    return [f"{' '.join(command[:3])}: {p}" for p in problems]


class Batch:
    """Runs the commands on each module and keeps what they wrote, by case."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self.tried = 0

    def check(self, source: str) -> None:
        self.tried += 1
        case = self.root / f"case{self.tried:05d}"
        work = case / "src"
        work.mkdir(parents=True)
        (work / "hostile_case.py").write_text(source, encoding="utf-8", errors="surrogatepass")
        problems: list[str] = []
        for command in (["check", "hostile_case.py"], ["graph", "hostile_case.py"]):
            rc, _, err = cli(command, cwd=work)
            problems += contract_problems(err, rc, command)
        for target in TARGETS:
            command = ["compile", "hostile_case.py", "--target", target, "-o", str(case / target)]
            rc, _, err = cli(command, cwd=work)
            problems += contract_problems(err, rc, command)
        assert not problems, "\n".join(problems) + "\n--- module:\n" + source[:4000]
        produced = [p for t in TARGETS if (case / t).is_dir() for p in (case / t).iterdir()]
        if produced:
            self.count += 1
        else:
            shutil.rmtree(case)

    def load_all(self) -> dict:
        if not self.count:
            return {"loaded": 0, "failures": []}
        home = self.root / "home"
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(LOADER), str(self.root)], capture_output=True, text=True,
                              env=env, timeout=1800)
        assert done.returncode == 0, done.stderr[-4000:]
        print(f"loading took {time.perf_counter() - started:.1f}s")
        return json.loads(done.stdout.strip().splitlines()[-1])


# Failures whose fix is target-limit checking at compile time (Airflow's
# tag, task and DAG id limits, KFP and Prefect name rules), owned by that
# work: reported on stdout, not failed, unless PIPEC_HOSTILE_STRICT=1 (the
# large run by hand sets it).  Remove an entry when its check lands.
KNOWN: list[re.Pattern] = []  # failures known and not fixed yet: none
STRICT = os.environ.get("PIPEC_HOSTILE_STRICT") == "1"


def _fuzz(tmp_path: Path, strategy, label: str) -> None:
    batch = Batch(tmp_path / label)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 6,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(source: str) -> None:
        batch.check(source)

    one()
    loaded = batch.load_all()
    print(f"{label}: {batch.tried} modules tried, {batch.count} produced files, {loaded['loaded']} loaded")
    failures = loaded["failures"]
    if not STRICT:
        known = [f for f in failures if any(k.search(f[1]) for k in KNOWN)]
        for path, error in known:
            print(f"known (target limits): {path}: {error.strip().splitlines()[-1]}")
        failures = [f for f in failures if f not in known]
    assert not failures, json.dumps(failures, indent=1)[:8000]


@pytest.fixture(autouse=True)
def _cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))


pytestmark = pytest.mark.slow


def test_hostile_values_keep_the_contract(tmp_path: Path) -> None:
    _fuzz(tmp_path, hostile_modules().map(lambda spec: spec.source()), "values")


def test_hostile_structure_keeps_the_contract(tmp_path: Path) -> None:
    _fuzz(tmp_path, pipeline_sources(), "structure")


def test_random_python_keeps_the_contract(tmp_path: Path) -> None:
    _fuzz(tmp_path, random_python_modules(), "random")
