"""Steps that run anyway on KFP: the spec shapes the KFP SDK writes for
`ignore_upstream_failure()` and `dsl.ExitHandler` (compared with the SDK's
own output for the same pipeline), and a located PC601 that says why for
what KFP cannot express.  The runs themselves are the `cleanup` scenarios of
the differential matrix (tests/test_kubeflow.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

import matrix  # noqa: E402
import targets_kubeflow  # noqa: E402

from pipec.backends.base import CompileOptions  # noqa: E402
from pipec.backends.kubeflow import KubeflowBackend  # noqa: E402
from pipec.backends.kubeflow_check import check_references  # noqa: E402
from pipec.diagnostics import Diagnostics  # noqa: E402
from pipec.frontend import load  # noqa: E402

CLEANUP = next(s for s in matrix.SCENARIOS if s.id == "cleanup")

# The `nightly` pipeline of tests/scenarios/cleanup.py, written with the KFP
# SDK (`@dsl.component` reads its functions' source: a real file).
SDK_PIPELINE = '''
from kfp import dsl


@dsl.component
def divide(divisor: int) -> float:
    return 1 / divisor


@dsl.component
def double(ratio: float) -> float:
    return ratio * 2


@dsl.component
def cleanup(label: str) -> str:
    return "cleaned " + label


@dsl.component
def report(label: str) -> dict:
    return {"label": label, "final": True}


@dsl.pipeline(name="nightly")
def nightly(divisor: int = 0, label: str = "nightly"):
    final = report(label=label)
    with dsl.ExitHandler(final):
        first = divide(divisor=divisor)
        double(ratio=first.output)
        cleanup(label=label).after(first).ignore_upstream_failure()
'''


def _sdk_spec(tmp_path: Path) -> dict:
    from kfp import compiler

    path = tmp_path / "sdk_nightly.py"
    path.write_text(SDK_PIPELINE, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("sdk_nightly", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "sdk.yaml"
    compiler.Compiler().compile(module.nightly, str(out))
    return yaml.safe_load(out.read_text(encoding="utf-8"))


def _shape(dag: dict) -> dict:
    """Per task: its component's kind, dependent tasks, trigger policy and
    where each parameter input comes from (the kind of source and its name)."""
    shape = {}
    for name, task in dag["tasks"].items():
        sources = {}
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            (kind, value), = source.items()
            sources[key] = (kind, value if isinstance(value, str) else value.get("producerTask"))
        shape[name] = {
            "dependentTasks": sorted(task.get("dependentTasks", [])),
            "triggerPolicy": task.get("triggerPolicy"),
            "parameters": sources,
        }
    return shape


def test_exit_handler_and_ignore_upstream_failure_as_the_kfp_sdk_writes_them(tmp_path):
    sdk = _sdk_spec(tmp_path)
    _, text = targets_kubeflow.compile_scenario(CLEANUP)
    ours = yaml.safe_load(text)
    assert check_references(ours) == []
    # The root: the exit handler's group and the exit task after it.
    assert _shape(ours["root"]["dag"]) == _shape(sdk["root"]["dag"])
    assert ours["root"]["dag"]["tasks"]["report"]["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    # The group: every other step, reading the context through its channels.
    group, sdk_group = ours["components"]["comp-exit-handler-1"], sdk["components"]["comp-exit-handler-1"]
    assert group["inputDefinitions"] == sdk_group["inputDefinitions"]
    body, sdk_body = _shape(group["dag"]), _shape(sdk_group["dag"])
    assert sorted(body) == sorted(sdk_body) == ["cleanup", "divide", "double"]
    for task in ("divide", "cleanup"):
        assert body[task] == sdk_body[task]
    assert body["cleanup"]["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    # `double` also reads the raw artifact of a parameter output (see kubeflow.py).
    assert body["double"]["dependentTasks"] == sdk_body["double"]["dependentTasks"] == ["divide"]
    assert body["double"]["parameters"]["ratio"] == sdk_body["double"]["parameters"]["ratio"][:1] + ("divide",)


def _compile(source: str, tmp_path: Path, unsupported: str = "error") -> tuple[str, Diagnostics]:
    path = tmp_path / "pipe.py"
    path.write_text(source, encoding="utf-8")
    (pipeline,) = load(path).module.pipelines
    diagnostics = Diagnostics()
    emit = KubeflowBackend(CompileOptions(unsupported=unsupported), diagnostics).compile(pipeline)
    return emit.text, diagnostics


def _messages(diagnostics: Diagnostics, code: str = "PC601") -> list[tuple[int, str]]:
    return sorted((d.line, d.message) for d in diagnostics if d.code == code)


def test_what_kfp_cannot_express_is_a_located_pc601_that_says_why(tmp_path):
    source = (matrix.SCENARIO_DIR / "anyway.py").read_text(encoding="utf-8")
    lines = source.splitlines()
    _, diagnostics = _compile(source, tmp_path)
    found = _messages(diagnostics)

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if text in line)

    expected_lines = {
        line_of('@step(trigger="all_done", outputs=["cleaned"])'): ["reads outputs of its upstream steps",
                                                                    "after 2 upstream steps"],
        line_of('@step(inputs=["big", "notice"], trigger="none_failed"'): ["trigger='none_failed'"],
        line_of('trigger="one_succeeded", outputs=["picked"]'): ["trigger='one_succeeded'"],
        line_of('trigger="none_failed", outputs=["careful"]'): ["trigger='none_failed'"],
        line_of('trigger="one_succeeded", outputs=["lonely"]'): ["trigger='one_succeeded'"],
        line_of("@step(final=True"): ["the statuses of the other steps", "reads outputs of other steps"],
    }
    assert sorted({line for line, _ in found}) == sorted(expected_lines)
    for line, needles in expected_lines.items():
        messages = [m for at, m in found if at == line]
        assert len(messages) == len(needles), messages
        for needle in needles:
            assert any(needle in m for m in messages), (needle, messages)
    assert all("which target 'kubeflow' cannot express" in m for _, m in found)
    assert any("PipelineTaskFinalStatus" in m for _, m in found)
    assert any("no other trigger rule" in m for _, m in found)


def test_warned_the_spec_still_loads_and_says_what_it_does(tmp_path):
    source = (matrix.SCENARIO_DIR / "anyway.py").read_text(encoding="utf-8")
    text, diagnostics = _compile(source, tmp_path, "warn")
    assert not _messages(diagnostics) and _messages(diagnostics, "PC602")
    spec = yaml.safe_load(text)
    assert check_references(spec) == []
    # No exit handler for a final step that reads other steps' outputs.
    assert "exit-handler-1" not in spec["root"]["dag"]["tasks"]


STATUS_ONLY = '''
from pipec import Pipeline, context, step

ctx = context(n=1)


@step(outputs=["x"])
def first(n: int) -> int:
    return n


@step(after=["first", "second"], trigger="all_done")
def tidy():
    return None


@step(after=["first"])
def second():
    return None


@step(final=True)
def report(statuses: dict = None):
    return statuses


pipeline = Pipeline("status_only", context=ctx)
for s in (first, second, tidy, report):
    pipeline.add_step(s)
'''


def test_an_exit_task_gets_no_per_step_statuses(tmp_path):
    text, diagnostics = _compile(STATUS_ONLY, tmp_path, "warn")
    warned = _messages(diagnostics, "PC602")
    lines = STATUS_ONLY.splitlines()
    tidy = lines.index('@step(after=["first", "second"], trigger="all_done")') + 1
    assert [line for line, _ in warned] == [tidy, lines.index("@step(final=True)") + 1]
    assert "after 2 upstream steps" in warned[0][1] and "runs only after its upstream steps succeeded" in warned[0][1]
    assert "PipelineTaskFinalStatus" in warned[1][1] and warned[1][1].endswith("it gets None")
    spec = yaml.safe_load(text)
    # Still an exit handler: the exit task gets None for `statuses`.
    assert sorted(spec["root"]["dag"]["tasks"]) == ["exit-handler-1", "report"]
    body = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert "triggerPolicy" not in body["tidy"]
    assert check_references(spec) == []
