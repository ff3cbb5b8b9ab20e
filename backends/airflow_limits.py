"""What an Airflow DAG file must respect to load, checked at compile time.

Each check reports a located diagnostic (PC604, PC613) instead of writing a
file that Airflow would refuse: DAG and task ids (at most 250 characters of
`[\\w.-]`, Airflow's `validate_key`), durations that `datetime.timedelta`
cannot hold, a file name that shadows a module the DAG or its tasks import
(the DAG folder is on the workers' path), tags longer than Airflow's 100
characters, and step names that are one
Python name after NFKC normalisation.  `literal()` writes deeply nested
values through `json.loads`, under the parser's nesting limit.
"""

from __future__ import annotations

import ast
import datetime
import functools
import json
import re
import sys
import unicodedata

from pipec import ir
from pipec.backends.pylayout import Expr, Lit, Raw
from pipec.backends.base import template_code
from pipec.backends.pyfmt import py_str
from pipec.diagnostics import Diagnostics

ID_LEN = 250  # airflow.models.base.ID_LEN
TAG_LEN = 100  # airflow.models.dag.TAG_MAX_LEN
KEY = re.compile(r"^[\w.-]+$")
MAX_SECONDS = datetime.timedelta.max.total_seconds()
# Deeper literals go through json.loads: CPython's parser refuses more
# than 200 nested brackets, and the DAG file adds a few of its own.
MAX_DEPTH = 64
TARGET = "airflow"


def check(pipeline: ir.Pipeline, diagnostics: Diagnostics) -> None:
    _check_key(
        pipeline.span,
        f"pipeline name {pipeline.name!r}",
        "DAG id",
        pipeline.name,
        diagnostics,
    )
    _check_file_name(pipeline, diagnostics)
    for tag in pipeline.tags:
        if len(tag) > TAG_LEN:
            diagnostics.add(
                "PC604",
                pipeline.span,
                what=f"pipeline tag {tag[:20]!r}...",
                target=TARGET,
                detail=f"it has {len(tag)} characters; Airflow allows {TAG_LEN}",
            )
    seen: dict[str, str] = {}
    for step in pipeline.steps:
        ids = [step.name] + ([step.name + "-items"] if step.foreach else [])
        for task_id in ids:
            _check_key(
                step.span, f"step name {step.name!r}", "task id", task_id, diagnostics
            )
        folded = unicodedata.normalize("NFKC", step.name)
        if folded in seen:
            diagnostics.add(
                "PC604",
                step.span,
                what=f"step name {step.name!r}",
                target=TARGET,
                detail=f"it is the same Python name as step {seen[folded]!r}",
            )
        seen.setdefault(folded, step.name)
        _check_seconds(step, diagnostics)


def _check_key(span, what, kind, key, diagnostics) -> None:
    if len(key) > ID_LEN:
        detail = f"the {kind} {key[:20]!r}... has {len(key)} characters; Airflow allows {ID_LEN}"
    elif not KEY.match(key):
        detail = f"a {kind} may hold only letters, digits, '_', '.' and '-'"
    else:
        return
    diagnostics.add("PC604", span, what=what, target=TARGET, detail=detail)


def _check_file_name(pipeline: ir.Pipeline, diagnostics: Diagnostics) -> None:
    shadowed = imported_modules(pipeline)
    if pipeline.name in shadowed:
        diagnostics.add(
            "PC604",
            pipeline.span,
            what=f"pipeline name {pipeline.name!r}",
            target=TARGET,
            detail=(
                f"its DAG file {pipeline.name}.py would shadow the module "
                f"{pipeline.name!r} that the DAG or its tasks import; rename the pipeline"
            ),
        )


def imported_modules(pipeline: ir.Pipeline) -> set[str]:
    names = set(_runtime_modules()) | {"airflow", "kubernetes", "pendulum"}
    names |= set(sys.stdlib_module_names)
    for step in pipeline.steps:
        names |= {m.split(".")[0] for m in step.code.imported_modules}
        names |= {m.split(".")[0] for m in step.code.helper_modules}
    return names


@functools.lru_cache(maxsize=None)
def _runtime_modules() -> frozenset[str]:
    """Every top-level module the runtimes import, at top level or inside."""
    names: set[str] = set()
    for template in ("task_runtime.py", "airflow_runtime.py"):
        for node in ast.walk(ast.parse(template_code(template))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
    return frozenset(names)


def _check_seconds(step: ir.Step, diagnostics: Diagnostics) -> None:
    durations = [("timeout", "timeout", step.timeout)]
    policy = step.retry
    if policy.retries:
        try:
            longest = max(policy.delay_before(k) for k in range(1, policy.retries + 1))
        except OverflowError:
            longest = float("inf")
        durations.append(("retry delay", "retry_delay", longest))
    for label, option, value in durations:
        if value is not None and not value <= MAX_SECONDS:
            diagnostics.add(
                "PC613",
                step.option_span(option),
                option=label,
                step=step.name,
                value=f"{value:g}",
                target=TARGET,
                limit=f"{MAX_SECONDS:g}",
            )


def literal(value: object) -> Expr:
    """`value` as a literal, or through json.loads when deeply nested."""
    if _depth(value) <= MAX_DEPTH:
        return Lit(value)
    return Raw(f"json.loads({py_str(json.dumps(value, allow_nan=False))})")


def _depth(value: object) -> int:
    """Nesting depth of lists and dicts, without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            depth += 1
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth) for child in children)
    return deepest
