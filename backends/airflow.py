"""The `airflow` target: one Airflow 3 DAG file (`airflow.sdk`) per pipeline.

Reads only the IR.  What the generated file does:

- `dag_id` = the pipeline name; description, owner (`default_args`), tags,
  `schedule` (None when absent), `catchup=False`, a fixed `start_date`; the
  context becomes DAG `params` with JSON-schema types, overridable by the
  run's conf.
- One TaskFlow task per step.  The step's code is embedded as a string and
  executed inside the task (`_pipec_load`), so parsing the DAG imports only
  Airflow and the standard library, and nothing needs pipec.  Every value
  from the source is written as an escaped Python literal in the code; none
  goes through `op_kwargs`, so Airflow's Jinja never sees it.  Run parameters
  are read inside the task from `get_current_context()["params"]`.
- Data: a task returns {output: envelope}; small JSON values travel in XCom,
  anything else is pickled under the artifact location (settings
  `artifact_root`, `artifact_conn_id`, `xcom_max_bytes`; the environment
  variable PIPEC_ARTIFACT_ROOT overrides the root at run time; without a
  root, an executor that runs tasks on other hosts fails the producing task).
- retries → `retries` / `retry_delay`; backoff → `retry_exponential_backoff`
  plus a retry policy that gives the exact delays of the local run; timeout →
  `execution_timeout`; `when` → the task skips itself (Airflow's all_success
  trigger rule propagates the skip); `on_failure` → the fallback runs inside
  the last attempt; `foreach` → a small fan-out task (`<step>-items`,
  evaluating the predicate once) and the step mapped over its indexes.
- Mechanisms selected by settings (`MECHANISMS`, first = default):
  `packages` → the step runs in a cached virtual environment (`virtualenv`);
  `image` / `cpu` / `memory` / `gpu` → KubernetesExecutor's `pod_override`
  (`executor_config`); `none` makes either a PC601 error.  `helpers`: the
  source tree's helper modules embedded in the file (`embed`) or imported
  from the workers' path and checked when the DAG is parsed (`import`).
- What an Airflow DAG file must respect to load (ids, durations, file names,
  nesting) is checked in `airflow_limits.py`.  Step cache and the pipeline
  version are kept in the header comment.
"""

from __future__ import annotations

import functools
from importlib.resources import files

import jinja2

from pipec import ir
from pipec.backends.pylayout import (
    Call,
    Dict,
    Expr,
    Lit,
    Raw,
    statement,
)
from pipec.backends import airflow_limits
from pipec.backends.airflow_limits import literal
from pipec.backends.base import Backend, Emit, register, template_code
from pipec.backends.pyfmt import comment_lines, py_block_str, py_name, py_str

START_DATE = "datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)"
XCOM_MAX_BYTES = 65536
PARAM_TYPES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
}
# The settings that select a mechanism, their choices and defaults (the
# first): how per-step packages are installed, how images and resources
# reach a pod, and whether helper modules are embedded or imported.
MECHANISMS = {
    "packages": ("virtualenv", "none"),
    "pods": ("executor_config", "none"),
    "helpers": ("embed", "import"),
}
POD_IMPORT = "from kubernetes.client import models as k8s"
# Airflow's trigger rule for each of pipec's (`ir.TRIGGERS`).
TRIGGER_RULES = {
    "all_done": "all_done",
    "none_failed": "none_failed_min_one_success",
    "one_succeeded": "one_success",
}
# The task that decides the DAG run's state when steps run anyway.
WATCHER = "pipec-run-status"


@register
class AirflowBackend(Backend):
    name = "airflow"
    extension = ".py"
    SETTINGS = {
        "artifact_root": str,
        "artifact_conn_id": str,
        "xcom_max_bytes": int,
        **{key: str for key in MECHANISMS},
    }
    SUPPORTS_CACHE = False

    def __init__(self, options, diagnostics) -> None:
        super().__init__(options, diagnostics)
        self.mechanism = {key: self._mechanism(key) for key in MECHANISMS}
        self.SUPPORTS_PACKAGES = self.mechanism["packages"] != "none"
        self.SUPPORTS_RESOURCES = self.mechanism["pods"] != "none"
        self.SUPPORTS_IMAGE = self.SUPPORTS_RESOURCES

    def _mechanism(self, key: str) -> str:
        choices = MECHANISMS[key]
        value = self.options.setting(key, choices[0])
        if value not in choices:
            self.diagnostics.add(
                "PC614",
                None,
                key=key,
                target=self.name,
                expected=" or ".join(repr(c) for c in choices),
                got=repr(value),
            )
            return choices[0]
        return value

    def emit(self, pipeline: ir.Pipeline) -> Emit:
        airflow_limits.check(pipeline, self.diagnostics)
        for step in pipeline.steps:
            if step.foreach is not None and step.trigger != "all_succeeded":
                self.unsupported(step, "a trigger rule on a foreach step", "trigger")
        self.skip_waits = skip_waits(pipeline)
        template = _environment().get_template("airflow_dag.py.j2")
        pods = self.SUPPORTS_RESOURCES and any(_needs_pod(s) for s in pipeline.steps)
        text = template.render(
            header=self.header(pipeline),
            imports=_runtime_imports(bool(pipeline.timezone))
            + ("\n" + POD_IMPORT if pods else ""),
            runtime=_runtime_code(),
            store=self.store() + "\n" + self.helpers(pipeline),
            sources=[_source_block(step) for step in pipeline.steps],
            dag_open=statement(0, "with ", dag_call(pipeline), " as dag:"),
            tasks=[task_block(step, self) for step in pipeline.steps]
            + watcher_block(pipeline),
        )
        return Emit(self.filename(pipeline), text)

    def helpers(self, pipeline: ir.Pipeline) -> str:
        """The helper modules: embedded (`_PIPEC_HELPERS`), or imported from
        the workers' path, checked when the DAG is parsed."""
        if self.mechanism["helpers"] == "import":
            names = _helper_modules(pipeline)
            check = (
                "\n" + statement(0, "", Call("_pipec_require", ((None, Lit(names)),)))
                if names
                else ""
            )
            return "_PIPEC_HELPERS = {}" + check
        sources: dict[str, str] = {}
        for step in pipeline.steps:
            for name, text in step.code.helper_sources:
                sources.setdefault(name, text)
        if not sources:
            return "_PIPEC_HELPERS = {}"
        items = ",\n".join(
            f"    {py_str(name)}: {py_block_str(text)}"
            for name, text in sources.items()
        )
        return "_PIPEC_HELPERS = {\n" + items + ",\n}"

    # -- the header: provenance, and what Airflow has no place for -----------
    def header(self, pipeline: ir.Pipeline) -> str:
        lines = [
            f"Generated by pipec from {pipeline.source_path}: the Airflow DAG of pipeline",
            f"{py_str(pipeline.name)}.  Do not edit by hand; change the source and compile again.",
        ]
        kept = self.kept_metadata(pipeline)
        if kept:
            lines += ["", "Kept here because an Airflow DAG has no place for it:"]
            lines += [f"  {what}" for what in kept]
        helpers = _helper_modules(pipeline)
        if helpers and self.mechanism["helpers"] == "import":
            lines += [
                "",
                "Tasks import these modules of the source tree; put its root on the",
            ]
            lines += ["workers' path: " + ", ".join(helpers)]
        out: list[str] = []
        for line in lines:
            out += comment_lines(line)
        return "\n".join(out)

    def kept_metadata(self, pipeline: ir.Pipeline) -> list[str]:
        kept: list[str] = []
        # Only a cache the user asked for is reported: the default is no news.
        cached = [
            step.name
            for step in pipeline.steps
            if step.cache and any(name == "cache" for name, _ in step.option_spans)
        ]
        if cached and len(cached) == len(pipeline.steps) > 1:
            kept.append("step cache (cache=True): every step")
            self.note_metadata(pipeline, "the step cache of every step")
        elif cached:
            kept.append("step cache (cache=True): " + ", ".join(cached))
            self.note_metadata(pipeline, "the step cache of " + _steps(cached))
        for step in pipeline.steps:
            if step.packages and not self.SUPPORTS_PACKAGES:
                kept.append(
                    f"packages of step {step.name} (not installed): "
                    + ", ".join(step.packages)
                )
            if _needs_pod(step) and not self.SUPPORTS_RESOURCES:
                kept.append(
                    f"resources/image of step {step.name} (not applied): {_resources(step)}"
                )
        if pipeline.version is not None:
            kept.append(f"pipeline version: {pipeline.version}")
            self.note_metadata(pipeline, "the pipeline version")
        return kept

    def store(self) -> str:
        root = self.options.setting("artifact_root")
        conn_id = self.options.setting("artifact_conn_id")
        limit = self.options.setting("xcom_max_bytes", XCOM_MAX_BYTES)
        items = (
            ("root", Lit(root)),
            ("conn_id", Lit(conn_id)),
            ("xcom_max_bytes", Lit(int(limit))),
        )
        return statement(0, "_PIPEC_STORE = ", Dict(items))


# -- the DAG ----------------------------------------------------------------


def start_date(pipeline: ir.Pipeline) -> str:
    """The DAG's fixed start date; in the pipeline's time zone, if it has
    one (Airflow reads a cron schedule in the start date's time zone)."""
    if pipeline.timezone is None:
        return START_DATE
    return f"pendulum.datetime(2024, 1, 1, tz={py_str(pipeline.timezone)})"


def dag_call(pipeline: ir.Pipeline) -> Call:
    args: list[tuple[str | None, Expr]] = [("dag_id", Lit(pipeline.name))]
    if pipeline.description is not None:
        args.append(("description", Lit(pipeline.description)))
    args += [
        ("schedule", Lit(pipeline.schedule)),
        ("start_date", Raw(start_date(pipeline))),
        ("catchup", Raw("False")),
    ]
    if pipeline.max_parallel is not None:
        args.append(("max_active_tasks", Lit(pipeline.max_parallel)))
    if pipeline.tags:
        args.append(("tags", Lit(list(pipeline.tags))))
    if pipeline.owner is not None:
        args.append(("default_args", Dict((("owner", Lit(pipeline.owner)),))))
    if pipeline.context:
        args.append(
            ("params", Dict(tuple((p.name, _param(p)) for p in pipeline.context)))
        )
    return Call("DAG", tuple(args))


def _param(param: ir.ContextParam) -> Call:
    args: list[tuple[str | None, Expr]] = [(None, literal(param.default))]
    if param.type in PARAM_TYPES:
        args.append(("type", Lit(PARAM_TYPES[param.type])))
    return Call("Param", tuple(args))


# -- tasks ------------------------------------------------------------------


def skip_waits(pipeline: ir.Pipeline) -> set[str]:
    """The steps (of the default rule, not fanned out) with several upstream
    steps of which one may be skipped.  Airflow's all_success skips a task
    as soon as one upstream task is skipped, without waiting for the others
    (trigger_rule_dep.py), while the local run waits for every upstream
    step and lets a failure win over a skip (`_pipec_blocked`).  These
    tasks therefore run by none_failed (a failure still makes them
    upstream_failed, natively) and skip themselves when an upstream step
    was skipped."""
    may_skip: set[str] = set()
    waits: set[str] = set()
    for step in pipeline.steps:  # upstream first
        skipped_upstream = any(u in may_skip for u in step.upstream)
        if step.trigger == "all_succeeded" and step.foreach is None:
            if skipped_upstream and len(step.upstream) > 1:
                waits.add(step.name)
        if (
            step.when is not None
            or step.trigger in ("none_failed", "one_succeeded")
            or (step.trigger == "all_succeeded" and skipped_upstream)
        ):
            may_skip.add(step.name)
    return waits


def task_block(step: ir.Step, backend: AirflowBackend) -> str:
    """The task definitions of one step and the lines that wire them."""
    name = py_name(step.name)
    inputs = Dict(tuple((up, Raw("out_" + py_name(up))) for up in step.upstream))
    extra: tuple[tuple[str, Expr], ...] = ()
    if step.packages and backend.SUPPORTS_PACKAGES:
        extra = (("packages", Lit(list(step.packages))),)
    if step.files:
        extra += (("files", Lit(list(step.file_outputs))),)
    if step.metrics:
        extra += (("metrics", Lit(list(step.metrics))),)
    pod = backend.SUPPORTS_RESOURCES and _needs_pod(step)
    if step.foreach is None:
        trigger = None
        if step.name in backend.skip_waits:
            extra += (("skip_waits", Lit(list(step.upstream))),)
            trigger = "none_failed"
        run = _run_call(step, extra)
        defs = [
            _task_def(
                step,
                step.name,
                "task_" + name,
                ("inputs",),
                run,
                pod=pod,
                trigger=trigger,
            )
        ]
        wiring = [
            statement(1, f"out_{name} = ", Call("task_" + name, ((None, inputs),)))
        ]
        return "\n\n".join(defs + ["\n".join(wiring)])
    fan_out = _fan_out_call(step)
    run = _run_call(
        step,
        extra
        + (("foreach", Lit(step.foreach)),)
        + _foreach_key(step)
        + (("index", Raw("index")),),
    )
    defs = [
        _task_def(
            step,
            step.name + "-items",
            "items_" + name,
            ("inputs",),
            fan_out,
            retries=False,
        ),
        _task_def(
            step,
            step.name,
            "task_" + name,
            ("inputs", "index"),
            run,
            pod=pod,
            limit=step.max_parallel,
        ),
    ]
    wiring = [
        statement(1, f"index_{name} = ", Call("items_" + name, ((None, inputs),))),
        statement(
            1, f"partial_{name} = ", Call(f"task_{name}.partial", (("inputs", inputs),))
        ),
        statement(
            1,
            f"out_{name} = ",
            Call(f"partial_{name}.expand", (("index", Raw("index_" + name)),)),
        ),
    ]
    return "\n\n".join(defs + ["\n".join(wiring)])


def _task_def(
    step: ir.Step,
    task_id: str,
    function: str,
    params: tuple[str, ...],
    body: Call,
    retries: bool = True,
    pod: bool = False,
    limit: int | None = None,
    trigger: str | None = None,
) -> str:
    """`limit`: at most this many mapped instances of the task at once;
    `trigger`: the task's trigger rule, for a step of the default rule."""
    args = _task_args(step, task_id, retries)
    if trigger is not None:
        args.append(("trigger_rule", Lit(trigger)))
    if pod:
        args.append(("executor_config", pod_override(step)))
    if limit is not None:
        args.append(("max_active_tis_per_dagrun", Lit(limit)))
    decorator = statement(1, "@", Call("task", tuple(args)))
    signature = statement(
        1, "def ", Call(function, tuple((None, Raw(p)) for p in params)), ":"
    )
    return "\n".join([decorator, signature, statement(2, "return ", body)])


def _task_args(step: ir.Step, task_id: str, retries: bool) -> list[tuple[str, Expr]]:
    args: list[tuple[str, Expr]] = [("task_id", Lit(task_id))]
    policy = step.retry if retries else ir.RetryPolicy()
    args.append(("retries", Lit(policy.retries)))
    if policy.retries:
        args.append(("retry_delay", _seconds(policy.delay)))
        if policy.backoff != 1.0:
            args.append(("retry_exponential_backoff", Lit(float(policy.backoff))))
            args.append(
                (
                    "retry_policy",
                    Call(
                        "_PipecBackoff",
                        ((None, Lit(policy.delay)), (None, Lit(policy.backoff))),
                    ),
                )
            )
    if retries and step.timeout is not None:
        args.append(("execution_timeout", _seconds(step.timeout)))
    if step.trigger != "all_succeeded":
        args.append(("trigger_rule", Lit(TRIGGER_RULES[step.trigger])))
    return args


def watcher_block(pipeline: ir.Pipeline) -> list[str]:
    """A step that runs anyway can end the DAG run after a failed step, and
    Airflow decides a run's state by its last tasks: this task, after every
    task, fails the run when one failed (or could not run), as the local run
    does, and is skipped otherwise (Airflow's "watcher" pattern)."""
    if all(step.trigger == "all_succeeded" for step in pipeline.steps):
        return []
    args = (
        ("task_id", Lit(WATCHER)),
        ("trigger_rule", Lit("one_failed")),
        ("retries", Lit(0)),
    )
    lines = [
        statement(1, "@", Call("task", args)),
        statement(1, "def ", Call("pipec_run_status", ()), ":"),
        statement(2, "", Call("_pipec_run_failed", ())),
    ]
    outs = Call(
        "",
        tuple((None, Raw("out_" + py_name(s.name))) for s in pipeline.steps),
        "[",
        "]",
    )
    wiring = statement(1, "", outs, " >> pipec_run_status()")
    return ["\n".join(lines), wiring]


def pod_override(step: ir.Step) -> Dict:
    """KubernetesExecutor's pod override: the step's image on the task's
    container ("base"), its cpu, memory and gpu as limits."""
    limits = {}
    if step.resources.cpu is not None:
        limits["cpu"] = step.resources.cpu
    if step.resources.memory is not None:
        limits["memory"] = step.resources.memory
    if step.resources.gpu:
        limits["nvidia.com/gpu"] = str(step.resources.gpu)
    container: list[tuple[str | None, Expr]] = [("name", Lit("base"))]
    if step.image is not None:
        container.append(("image", Lit(step.image)))
    if limits:
        resources = Call("k8s.V1ResourceRequirements", (("limits", Lit(limits)),))
        container.append(("resources", resources))
    spec = Call(
        "k8s.V1PodSpec",
        (
            (
                "containers",
                Call(
                    "", ((None, Call("k8s.V1Container", tuple(container))),), "[", "]"
                ),
            ),
        ),
    )
    return Dict((("pod_override", Call("k8s.V1Pod", (("spec", spec),))),))


def _needs_pod(step: ir.Step) -> bool:
    return not step.resources.is_empty() or step.image is not None


def _helper_modules(pipeline: ir.Pipeline) -> list[str]:
    return _unique(m for step in pipeline.steps for m in step.code.helper_modules)


def _seconds(value: float) -> Call:
    return Call("datetime.timedelta", (("seconds", Lit(value)),))


def _run_call(step: ir.Step, extra: tuple[tuple[str, Expr], ...]) -> Call:
    args: list[tuple[str | None, Expr]] = [
        (None, Raw("inputs")),
        ("step", Lit(step.name)),
        ("source", Raw("SOURCE_" + py_name(step.name))),
        ("function", Lit(step.code.function)),
        ("outputs", Lit(list(step.outputs))),
        ("params", _bindings(step.params)),
    ]
    if step.when is not None and step.foreach is None:
        args += _predicate_args(step)
    if step.fallback is not None:
        args.append(("fallback", Lit(step.code.fallback)))
    if any(isinstance(b.ref, ir.StatusesRef) for b in step.params):
        args.append(("steps", Lit(list(step.upstream))))
    return Call("_pipec_run", tuple(args) + extra)


def _fan_out_call(step: ir.Step) -> Call:
    binding = step.param(step.foreach)
    args: list[tuple[str | None, Expr]] = [
        (None, Raw("inputs")),
        ("step", Lit(step.name)),
        ("source", Raw("SOURCE_" + py_name(step.name))),
        ("items", Lit(_ref(binding.ref))),
        ("foreach", Lit(step.foreach)),
        *_foreach_key(step),
    ]
    if step.when is not None:
        args += _predicate_args(step)
    return Call("_pipec_fan_out", tuple(args))


def _foreach_key(step: ir.Step) -> tuple[tuple[str, Expr], ...]:
    if step.foreach_key is None:
        return ()
    return (("foreach_key", Lit(step.foreach_key)),)


def _predicate_args(step: ir.Step) -> list[tuple[str, Expr]]:
    return [
        ("predicate", Lit(step.code.predicate)),
        ("when", _bindings(step.when.params)),
    ]


def _bindings(bindings: tuple[ir.Binding, ...]) -> Expr:
    """{param: ref} for every binding with a value to pass; a default is left
    to the function's own signature (JSON in the DAG file would not carry it
    type-exactly: a tuple would arrive as a list)."""
    out = {}
    for binding in bindings:
        ref = binding.ref
        if isinstance(ref, ir.DefaultValue):
            continue
        out[binding.param] = _ref(ref)
    return literal(out)


def _ref(ref: ir.Ref) -> list:
    if isinstance(ref, ir.OutputRef):
        return ["output", ref.step, ref.output]
    if isinstance(ref, ir.ContextRef):
        return ["context", ref.key]
    if isinstance(ref, ir.StatusesRef):
        return ["statuses"]
    return ["default", ref.value]


# -- pieces of text ---------------------------------------------------------


def _source_block(step: ir.Step) -> str:
    where = f"{step.span.path}:{step.span.line}"
    comment = comment_lines(
        f"Step {py_str(step.name)} ({where}): its code, run inside its task."
    )
    return (
        "\n".join(comment)
        + f"\nSOURCE_{py_name(step.name)} = "
        + py_block_str(step.code.source)
    )


@functools.lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: files("pipec.templates").joinpath(name).read_text("utf-8")
        ),
        keep_trailing_newline=True,
        trim_blocks=True,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
    )


def _split_runtime(name: str) -> tuple[list[str], str]:
    """A runtime module's import lines and its code, without its docstring."""
    lines = template_code(name).split("\n")
    first_def = next(
        i for i, line in enumerate(lines) if line.startswith(("def ", "class ", "@"))
    )
    imports = "\n".join(lines[:first_def]).strip("\n")
    return imports.split("\n"), "\n".join(lines[first_def:])


@functools.lru_cache(maxsize=None)
def _runtime_imports(pendulum: bool = False) -> str:
    """The imports of both runtimes: plain `import x` lines merged and sorted
    (with `pendulum`, Airflow's time zone library, for a time zone), then the
    Airflow runtime's `from airflow...` imports as written."""
    common, _ = _split_runtime("task_runtime.py")
    airflow, _ = _split_runtime("airflow_runtime.py")
    extra = ["import pendulum"] if pendulum else []
    plain = sorted(
        {line for line in common + airflow + extra if line.startswith("import ")}
    )
    rest = [line for line in airflow if line and not line.startswith("import ")]
    assert all(line.startswith("import ") for line in common if line)
    return "\n".join(plain) + "\n\n" + "\n".join(rest)


@functools.lru_cache(maxsize=None)
def _runtime_code() -> str:
    return (
        _split_runtime("task_runtime.py")[1]
        + "\n\n\n"
        + _split_runtime("airflow_runtime.py")[1]
    )


def _unique(items) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _steps(names: list[str]) -> str:
    return ("step " if len(names) == 1 else "steps ") + ", ".join(
        f"'{n}'" for n in names
    )


def _resources(step: ir.Step) -> str:
    parts = [
        f"{k}={v}"
        for k, v in (
            ("cpu", step.resources.cpu),
            ("memory", step.resources.memory),
            ("gpu", step.resources.gpu),
            ("image", step.image),
        )
        if v
    ]
    return ", ".join(parts)
