"""No input can inject code into a generated file (CONTRACT §5), for every
target.

Values (hypothesis): pipeline modules whose description, owner, tags and
context values are full of quotes, backslashes, line breaks of every kind,
template and shell syntax, control characters, wide, combining and emoji
text and very long strings.  For each, on every target:

- every generated Python file parses, every YAML loads (without duplicate
  keys) and every JSON loads;
- the output has exactly the structure of the output for the same module
  with harmless placeholder strings (a value that broke out of its string
  literal, comment or YAML scalar would add or change code or keys);
- every value comes back exactly (same type, same text), at its place:
  a literal of the generated Python, pipelineInfo.description and the root
  parameters' defaultValue of the KFP YAML, the deployment of the Prefect
  YAML, the IR's fields; metadata a format has no place for is kept in the
  header comment, recoverably.

Names (fixed lists): pipeline, step, output and context-key names that
shadow what generated code uses, non-ASCII identifiers, names that collide
once lower-cased or dashed.  A name the contract allows compiles to valid
output (or, where a target cannot represent it, is a located error); a name
it does not allow is a located error (exit 2) and no output.
"""

from __future__ import annotations

import ast
import sys
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from hostile_gen import (
    TARGETS,
    cli,
    comment_lines,
    compile_outputs,
    kfp_structure_problems,
    kind,
    parse,
    require_target,
    snapshot,
    top_level_rebinds,
)
from hostile_gen.strategies import TEMPLATE, ModuleSpec, hostile_modules, write_module

HYPOTHESIS = dict(
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: keeps the suite fast
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    report_multiple_bugs=False,
)

# Pipeline metadata a target has no place for (CONTRACT §4: kept in the
# output's header comment).  Everything else must arrive as data.
HEADER_ONLY = {"kubeflow": {"owner", "tags"}, "prefect": {"owner", "tags"}, "dagster": {"owner"}}


# --------------------------------------------------------------------------
# Comparing values and structures


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also compares types (1 != 1.0 != True, list != tuple)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return sorted(map(repr, a)) == sorted(map(repr, b)) and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return a == b


class _Blank(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Constant("S") if isinstance(node.value, str) else node


def shape(name: str, parsed: Any) -> Any:
    """The structure of a parsed output with every string blanked."""
    if kind(name) == "python":
        return ast.dump(_Blank().visit(parsed))
    return _data_shape(parsed)


def _data_shape(data: Any) -> Any:
    if isinstance(data, dict) and data.get("node") == "Span":
        return "SPAN"  # the IR's source positions move with the length of the values
    if isinstance(data, dict):
        return ("map", sorted(repr((_data_shape(k), _data_shape(v))) for k, v in data.items()))
    if isinstance(data, list):
        return ("seq", [_data_shape(v) for v in data])
    if isinstance(data, str):
        return "S"
    return (type(data).__name__, repr(data))


def python_literals(tree: ast.Module) -> list[Any]:
    """Every literal of a generated module (and the JSON inside its strings)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Constant, ast.List, ast.Dict, ast.Tuple, ast.UnaryOp)):
            continue
        try:
            value = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        found.append(value)
        if isinstance(value, str) and value[:1] in '{["':
            try:
                found.append(json.loads(value))
            except ValueError:
                pass
    return found


def _has_none(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_none(v) for v in value)
    if isinstance(value, dict):
        return any(_has_none(v) for v in value.values())
    return value is None


def data_nodes(data: Any) -> list[Any]:
    found = [data]
    if isinstance(data, str) and data[:1] in '{["n':
        try:
            found.append(json.loads(data))
        except ValueError:
            pass
    if isinstance(data, dict):
        for k, v in data.items():
            found += data_nodes(k) + data_nodes(v)
    elif isinstance(data, list):
        for v in data:
            found += data_nodes(v)
    return found


def everything(outputs: dict[str, str]) -> list[Any]:
    found = []
    for name, text in outputs.items():
        parsed = parse(name, text)
        found += python_literals(parsed) if kind(name) == "python" else data_nodes(parsed)
    return found


def recoverable(value: str, comments: list[str]) -> bool:
    """`value` can be read back from a comment: written as it is (when it is
    one printable line), or as a Python or JSON string literal."""
    from pipec.backends.pyfmt import py_str

    forms = [repr(value), json.dumps(value), json.dumps(value, ensure_ascii=False), py_str(value)]
    if value.isprintable() and value == value.strip():
        forms.append(value)
    return any(form in comment for comment in comments for form in forms)


# --------------------------------------------------------------------------
# Values


def _compile_pair(folder: Path, spec: ModuleSpec, target: str) -> tuple[dict[str, str], dict[str, str]]:
    hostile = compile_outputs([write_module(folder / "hostile", spec.source())], target).outputs
    benign = compile_outputs([write_module(folder / "benign", spec.benign().source())], target).outputs
    return dict(hostile), dict(benign)


def _check_places(target: str, spec: ModuleSpec, outputs: dict[str, str]) -> None:
    for name, text in outputs.items():
        data = parse(name, text)
        if kind(name) == "json":
            pipeline = data["pipelines"][0]
            assert pipeline["description"] == spec.description
            assert pipeline["owner"] == spec.owner
            assert pipeline["tags"] == spec.tags
            defaults = {p["name"]: p["default"] for p in pipeline["context"]}
            for key, value in spec.context.items():
                assert strict_equal(defaults[key], value), f"context {key}: {defaults[key]!r} != {value!r}"
        elif target == "kubeflow" and kind(name) == "yaml":
            assert data["pipelineInfo"].get("description") == spec.description, "pipelineInfo.description"
            params = data["root"]["inputDefinitions"]["parameters"]
            for key, value in spec.context.items():
                got = params[key].get("defaultValue")
                if params[key].get("parameterType") == "STRING" and not isinstance(value, str):
                    # kubeflow's documented encoding of lists, dicts and None
                    # (backends/kubeflow_program.py): JSON text in a STRING.
                    assert isinstance(got, str) and (value is None or isinstance(value, (list, dict))), (
                        f"root parameter {key}: {got!r} for {value!r}"
                    )
                    got = json.loads(got)
                assert strict_equal(got, value), f"root parameter {key}: defaultValue {got!r} != {value!r}"
        elif target == "prefect" and kind(name) == "yaml":
            deployment = data["deployments"][0]
            if "description" in deployment or not TEMPLATE.search(spec.description):
                assert deployment.get("description") == spec.description, "deployment description"
            for key, value in spec.context.items():
                got = deployment.get("parameters", {}).get(key, "<absent>")
                if got != "<absent>" or not TEMPLATE.search(repr(value)):
                    assert strict_equal(got, value), f"deployment parameter {key}: {got!r} != {value!r}"


def check_hostile_values(target: str, spec: ModuleSpec, folder: Path) -> None:
    hostile, benign = _compile_pair(folder, spec, target)
    assert list(hostile) == list(benign), "hostile values changed which files are written"
    for name, text in hostile.items():
        parsed = parse(name, text)  # parses / loads, or raises
        assert shape(name, parsed) == shape(name, parse(name, benign[name])), (
            f"{name}: a value changed the structure of the output (it escaped its literal or comment)")
        if kind(name) == "python":
            assert not top_level_rebinds(parsed), f"{name}: top-level names bound twice"
    found = everything(hostile)
    header_only = HEADER_ONLY.get(target, set())
    for what, value in spec.strings().items():
        if what.split()[0] in header_only:
            continue
        assert any(strict_equal(f, value) for f in found), f"{what} {value!r} does not arrive exactly"
    for key, value in spec.context.items():
        assert any(strict_equal(f, value) for f in found), f"context {key} = {value!r} does not arrive exactly"
    _check_places(target, spec, hostile)


@pytest.mark.parametrize("target", TARGETS)
def test_hostile_values_arrive_exactly_and_inject_nothing(target: str, tmp_path_factory) -> None:
    require_target(target)
    counter = itertools.count()

    @settings(max_examples=30, **HYPOTHESIS)
    @given(hostile_modules())
    def check(spec: ModuleSpec) -> None:
        check_hostile_values(target, spec, tmp_path_factory.mktemp(f"{target}_{next(counter)}"))

    check()


# Explicit cases that once were (or easily are) wrong, checked every run.
EXPLICIT = [
    ModuleSpec("line one\nline two\r\nthree\rfour\u2028five\x85six", "o\nschemaVersion: evil", ["a\nb: c"],
               {"c0": "x\ry", "c1": "{{ ds }}"}),
    ModuleSpec("\rimport os\r", "'''\"\"\"\\", ["#", "yes", "null"], {"c0": "\x00\x1b[31m", "c1": 1.5e300}),
    ModuleSpec("日本語の説明" * 20, "e\u0301\u0308", ["🚀", "ｆｕｌｌ"], {"c0": "中" * 60, "c1": {"k'": ["\\", None]}}),
    ModuleSpec("x\x85y", "o\x85", ["t\x85u"], {"c0": "a\x85b", "c1": {"\x85": "\x85"}, "c2": ["\n\x85"]}),
    ModuleSpec("${HOME} $(id) `id`", "%s %(x)s {0}", ["- x", "? y"], {"c0": "", "c1": [1e16, -0.0, 10**18]}),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", range(len(EXPLICIT)))
def test_explicit_hostile_values(target: str, case: int, tmp_path: Path) -> None:
    require_target(target)
    check_hostile_values(target, EXPLICIT[case], tmp_path)


@pytest.mark.parametrize("target", TARGETS)
def test_metadata_without_a_place_is_kept_recoverably_in_the_header(target: str, tmp_path_factory) -> None:
    """Owner and tags a format has no field for are in the header comment,
    readable back exactly (no two different values give the same header)."""
    require_target(target)
    counter = itertools.count()
    header_only = HEADER_ONLY.get(target, set())

    @settings(max_examples=20, **HYPOTHESIS)
    @given(hostile_modules())
    def check(spec: ModuleSpec) -> None:
        folder = tmp_path_factory.mktemp(f"meta_{target}_{next(counter)}")
        outputs = compile_outputs([write_module(folder, spec.source())], target).outputs
        found = everything(outputs)
        comments = [c for name, text in outputs.items() for c in comment_lines(name, text)]
        for what, value in spec.strings().items():
            field = what.split()[0]
            if field in header_only and not any(strict_equal(f, value) for f in found):
                assert recoverable(value, comments), f"{what} {value!r} is not recoverable from the header:\n" + \
                    "\n".join(comments[:12])

    check()


# --------------------------------------------------------------------------
# Names


NAMES_MODULE = '''\
from pipec import Pipeline, context, step

ctx = context({key}=1, seed=2)


@step(outputs=[{output!r}])
def {function}(seed, {key}):
    return seed + {key}


@step(name={step!r}, inputs=[{output!r}], outputs=["result"])
def consume({output}):
    return {output}


pipeline = Pipeline({pipeline!r}, context=ctx)
pipeline.add_step({function}).add_step(consume)
'''

# Identifiers that shadow what generated code imports or defines, or that
# mean something to an orchestrator.
SHADOWING = [
    "json", "os", "sys", "re", "types", "pickle", "inspect", "linecache", "datetime", "pendulum", "dag", "DAG",
    "task", "flow", "Param", "params", "RetryPolicy", "get_current_context", "_pipec_load", "_pipec_outputs",
    "print", "str", "list", "dict", "len", "self", "kwargs", "context", "ti", "ds", "run_id", "conf", "dag_run",
    "logical_date", "match", "case", "type", "_", "__name__", "__builtins__", "__file__", "x" * 150,
]


def _runtime_names() -> list[str]:
    """The top-level names of the runtime code the backends embed
    (templates/*_runtime.py): a step named like one must not replace it."""
    from hostile_gen import REPO

    names: list[str] = []
    for path in sorted((REPO / "templates").glob("*_runtime.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            for name in _top_names(node):
                if name not in names and name not in SHADOWING and name.isidentifier():
                    names.append(name)
    return names


def _top_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    return []


RUNTIME = _runtime_names()
UNICODE = ["données", "日本語", "ステップ", "ñ", "Ωmega"]
# Where a target cannot represent a name it may refuse it with a located
# error; everywhere else the name must compile.
MAY_REFUSE_UNICODE = {"airflow", "kubeflow"}


def _names_source(name: str, where: str) -> str:
    names = {"key": "k", "output": "produced", "function": "produce", "step": "consumer", "pipeline": "names_case"}
    if where == "pipeline":
        names["pipeline"] = name
    elif where == "step":
        names["function"] = name
        names["step"] = name + "_2"
    elif where == "output":
        names["output"] = name
    elif where == "key":
        names["key"] = name
    return NAMES_MODULE.format(**names)


def _located_error(stderr: str, filename: str) -> bool:
    return re.search(rf"^{re.escape(filename)}:[1-9]\d*:\d+: error: .*\[PC\d+\]$", stderr, re.MULTILINE) is not None


def check_valid_name(target: str, name: str, where: str, folder: Path, may_refuse: bool) -> None:
    path = write_module(folder, _names_source(name, where), "names_case.py")
    rc, _, err = cli(["compile", str(path), "--target", target, "-o", str(folder / "out")], cwd=folder)
    assert "Traceback" not in err and "internal error" not in err, err
    written = snapshot(folder / "out")
    if rc == 2 and may_refuse:
        assert _located_error(err, "names_case.py"), f"refused without a located error:\n{err}"
        assert not written, "refused, but wrote files"
        return
    assert rc == 0, f"{where} name {name!r}: exit {rc}\n{err}"
    assert written
    for filename, data in written.items():
        text = data.decode("utf-8")
        parsed = parse(filename, text)
        if kind(filename) == "python":
            assert not top_level_rebinds(parsed), f"{filename}: names bound twice at top level: {top_level_rebinds(parsed)}"
            _assert_no_shadowed_module(filename, parsed)
        elif target == "kubeflow":
            assert not kfp_structure_problems(parsed), kfp_structure_problems(parsed)
            assert len(parsed["root"]["dag"]["tasks"]) >= 2
            for program in _kfp_programs(parsed):
                assert not top_level_rebinds(program), f"{filename}: an embedded program binds {top_level_rebinds(program)} twice"
        if kind(filename) == "json":
            pipeline = parsed["pipelines"][0]
            if where == "step":
                assert [s["name"] for s in pipeline["steps"]] == [name, name + "_2"]
            if where == "pipeline":
                assert pipeline["name"] == name
    if where == "pipeline" and target in ("airflow", "prefect", "dagster"):
        texts = [d.decode("utf-8") for f, d in written.items() if f.endswith(".py")]
        assert any(name in python_literals(ast.parse(t)) for t in texts), f"pipeline name {name!r} is not in the output"
    if where == "pipeline" and target == "kubeflow":
        (doc,) = [parse(f, d.decode("utf-8")) for f, d in written.items()]
        info = doc["pipelineInfo"]
        assert info["name"] in (name, name.replace("_", "-")) or info.get("displayName") == name, (
            f"pipelineInfo {info} keeps the pipeline name neither as its name (dashes for underscores) nor exactly "
            "as its displayName")


def _kfp_programs(doc: dict) -> list[ast.Module]:
    """The Python programs embedded in the executors' command lines."""
    programs = []
    for executor in ((doc.get("deploymentSpec") or {}).get("executors") or {}).values():
        container = executor.get("container") or {}
        for arg in (container.get("command") or []) + (container.get("args") or []):
            if isinstance(arg, str) and "\n" in arg:
                try:
                    programs.append(ast.parse(arg))
                except SyntaxError:
                    pass  # the shell launcher
    return programs


def _assert_no_shadowed_module(filename: str, tree: ast.Module) -> None:
    """No function parameter or local name hides a module the function body
    uses as a module (`json.dumps(...)` with a parameter named `json`)."""
    modules = {(a.asname or a.name).split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = fn.args
        params = {a.arg for a in args.args + args.kwonlyargs + args.posonlyargs}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a}
        local_imports = {(a.asname or a.name).split(".")[0] for n in ast.walk(fn)
                         if isinstance(n, ast.Import) for a in n.names}
        used_as_module = {n.value.id for n in ast.walk(fn)
                          if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
        clash = (params & (modules | local_imports) & used_as_module)
        assert not clash, f"{filename}: parameters of {fn.name}() hide the modules {sorted(clash)} it uses"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("where", ["step", "output", "key"])
def test_shadowing_names_compile_to_valid_output(target: str, where: str, tmp_path: Path) -> None:
    require_target(target)
    failures = []
    # Output names only ever travel as strings and keys: the runtime's names
    # matter for step names and context keys, which become Python names.
    names = SHADOWING + UNICODE + ([] if where == "output" else RUNTIME)
    for index, name in enumerate(names):
        may_refuse = name in UNICODE and target in MAY_REFUSE_UNICODE
        if where == "key" and name.startswith("__") and name.endswith("__"):
            may_refuse = True  # a dunder context key: a located refusal is fine too
        if where == "key" and target == "dagster":
            from pipec.backends.dagster import reserved

            # a field name Dagster's Config class keeps for itself: located PC601
            may_refuse = may_refuse or reserved(name)
        try:
            check_valid_name(target, name, where, tmp_path / f"n{index}", may_refuse)
        except AssertionError as exc:
            failures.append(f"{where} name {name!r}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
    assert not failures, "\n".join(failures)


VALID_PIPELINE_NAMES = ["dag", "DAG", "flow", "json", "1x", "a.b", "a-b", "a.b-c_d", "_", "a..b", "a-",
                        "None", "class", "import", "__init__", "x" * 120]


@pytest.mark.parametrize("target", TARGETS)
def test_valid_pipeline_names_compile_to_valid_output(target: str, tmp_path: Path) -> None:
    require_target(target)
    failures = []
    for index, name in enumerate(VALID_PIPELINE_NAMES):
        try:
            # A Prefect flow or Airflow DAG file named like a standard module
            # would shadow it where it runs (its folder is on the path): a
            # located refusal.
            refuse = target == "kubeflow" or (
                target in ("prefect", "airflow") and name in sys.stdlib_module_names
            )
            check_valid_name(target, name, "pipeline", tmp_path / f"p{index}", refuse)
        except AssertionError as exc:
            failures.append(f"pipeline name {name!r}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
    assert not failures, "\n".join(failures)


COLLIDING_STEPS = '''\
from pipec import Pipeline, step


@step(name={first!r}, outputs=["a"])
def one():
    return 1


@step(name={second!r}, outputs=["b"])
def two():
    return 2


@step(inputs=["a", "b"], outputs=["c"])
def three(a, b):
    return a + b


collide = Pipeline("collide")
collide.add_step(one).add_step(two).add_step(three)
'''


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("pair", [("train", "Train"), ("a_b", "a__b"), ("step", "step_"), ("x", "_x"),
                                  ("three_when", "three"), ("one_items", "one")])
def test_names_that_collide_once_normalised_stay_distinct(target: str, pair: tuple[str, str], tmp_path: Path) -> None:
    """Distinct step names stay distinct tasks (or the target says it cannot,
    with a located error); never one task silently replacing another."""
    require_target(target)
    first, second = pair
    path = write_module(tmp_path, COLLIDING_STEPS.format(first=first, second=second), "collide.py")
    rc, _, err = cli(["compile", str(path), "--target", target, "-o", "out"], cwd=tmp_path)
    assert "Traceback" not in err and "internal error" not in err, err
    if rc == 2:
        assert _located_error(err, "collide.py"), err
        return
    assert rc == 0, err
    for filename, data in snapshot(tmp_path / "out").items():
        parsed = parse(filename, data.decode("utf-8"))
        if kind(filename) == "python":
            assert not top_level_rebinds(parsed), f"{filename}: {top_level_rebinds(parsed)} bound twice"
            literals = python_literals(parsed)
            assert first in literals and second in literals, f"{filename}: step names lost"
        elif filename.endswith(".yaml") and target == "kubeflow":
            assert not kfp_structure_problems(parsed), kfp_structure_problems(parsed)
            tasks = parsed["root"]["dag"]["tasks"]
            assert len(tasks) == 3, f"three steps (no when, no foreach) but tasks {list(tasks)}"
        elif kind(filename) == "json":
            assert [s["name"] for s in parsed["pipelines"][0]["steps"]] == [first, second, "three"]


INVALID = {
    "pipeline": ["", "a/b", "../evil", "a b", "x\ny", "$(id)", "{{ x }}", "名前", ".hidden", "-x", "a\\b", "a:b",
                 "a\x00b", "p;rm -rf ~", "x\r"],
    "step": ["class", "a-b", "1a", "a b", "", "x\n", "__import__('os')", "名 前", "a.b", "None"],
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("where", sorted(INVALID))
def test_invalid_names_are_located_errors_and_write_nothing(target: str, where: str, tmp_path: Path) -> None:
    require_target(target)
    failures = []
    for index, name in enumerate(INVALID[where]):
        names = {"key": "k", "output": "produced", "function": "produce", "step": "consumer", "pipeline": "ok"}
        names[where] = name
        folder = tmp_path / f"i{index}"
        path = write_module(folder, NAMES_MODULE.format(**names), "names_case.py")
        rc, _, err = cli(["compile", str(path), "--target", target, "-o", "out"], cwd=folder)
        if rc != 2 or not _located_error(err, "names_case.py") or snapshot(folder / "out") or "Traceback" in err:
            failures.append(f"{where} name {name!r}: exit {rc}, wrote {sorted(snapshot(folder / 'out'))}, "
                            f"stderr: {err[:300]!r}")
    assert not failures, "\n".join(failures)
