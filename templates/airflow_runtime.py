"""pipec's Airflow runtime: how a generated DAG's tasks run their steps.

The Airflow backend embeds this file's code verbatim (after this docstring)
into every DAG file it writes, after `task_runtime.py`, whose `_pipec_load`,
`_pipec_outputs` and envelope functions (`_pipec_json`, `_pipec_pickle`,
`_pipec_unpickle`) it uses.  The generated file defines `_PIPEC_STORE`
(where outputs that are not small JSON values go) before any task runs.

Data between tasks: each task returns a dict {output name: envelope}, which
Airflow keeps as its XCom.  An envelope is {"json": text} when the value
survives a JSON round trip with its types intact (an int stays an int, a
tuple does not pass) and is at most `_PIPEC_STORE["xcom_max_bytes"]` bytes;
anything else is pickled to the artifact location and the envelope is
{"pickle": uri}, so large payloads never reach the metadata database.  The
JSON travels as a string: Airflow neither templates nor re-interprets it.

A step with `packages` runs in a virtual environment of its own
(`_pipec_isolated`): the task writes the step's facts and inputs to a
request, the environment's Python runs this file's definitions listed in
`_PIPEC_CHILD` on it, and the task turns the answer into its outcome.  The
source tree's helper modules travel in `_PIPEC_HELPERS` and are imported
from there (`_PipecHelpers`).

Only the standard library and Airflow are imported at the top (`DAG`,
`Param` and `task` for the generated code); a step's own imports run inside
its task.
"""

import datetime
import importlib.util
import inspect
import json
import linecache
import os
import re

from airflow.sdk import (
    DAG,
    Param,
    RetryDecision,
    RetryPolicy,
    get_current_context,
    task,
)
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSkipException,
    AirflowTaskTimeout,
)


class _PipecBackoff(RetryPolicy):
    """Exact retry delays: retry k waits `delay * backoff ** (k - 1)`
    seconds, as pipec's local run does (Airflow's own exponential backoff
    rounds up to whole seconds and adds up to 100% jitter)."""

    def __init__(self, delay, backoff):
        self.delay = delay
        self.backoff = backoff

    def evaluate(self, exception, try_number, max_tries, context=None):
        seconds = self.delay * self.backoff ** (max(try_number, 1) - 1)
        return RetryDecision.retry(delay=datetime.timedelta(seconds=seconds))

    def serialize(self):
        return {"delay": self.delay, "backoff": self.backoff}


def _pipec_run(inputs, step, source, function, outputs, params, **options):
    """Run step `step` in the current task and return its output envelopes.

    `inputs` holds the return values of the upstream tasks by step name;
    `params` binds each parameter to ["output", step, name], ["context",
    key] or ["default", value].  Options: `predicate` and `when` (its
    bindings), `fallback`, `foreach` (the fanned-out parameter) with `index`
    (this element; None for the placeholder of an empty list), `packages`
    (the step runs in a virtual environment with them installed)."""
    context = get_current_context()
    facts = _pipec_facts(context)
    _pipec_helpers(_PIPEC_HELPERS)
    waits = options.pop("skip_waits", None)
    if waits is not None:  # run by none_failed: a skipped upstream step skips it
        statuses = _pipec_statuses(context["ti"], waits)
        if _pipec_blocked(statuses.values(), "all_succeeded") == "skipped":
            skipped = sorted(name for name, s in statuses.items() if s == "skipped")
            raise AirflowSkipException(f"upstream step(s) {skipped} were skipped")
    steps = options.pop("steps", None)
    if steps is not None:
        statuses = ["default", _pipec_statuses(context["ti"], steps)]
        params = {k: statuses if v[0] == "statuses" else v for k, v in params.items()}
    call = dict(
        options,
        step=step,
        source=source,
        function=function,
        outputs=outputs,
        params=params,
    )
    if options.get("packages"):
        result = _pipec_isolated(facts, inputs, call)
    else:
        result = _pipec_step(facts, inputs, call)
    for name in options.get("metrics", ()):  # shown as they are in the XCom tab
        context["ti"].xcom_push(key="metrics_" + name, value=_pipec_get(result[name]))
    return result


def _pipec_facts(context):
    """What a step needs from the task's context, as plain data: the run
    parameters (a conf key that is no context key fails the run, as in the
    local run), the task instance's identity, and whether this is its last
    try.  A task in an isolated environment gets these instead of a
    context."""
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    unknown = sorted(str(key) for key in conf if key not in context["dag"].params)
    if unknown:
        raise AirflowFailException(
            f"run conf key(s) {unknown} are no context key of this pipeline; "
            f"its context has: {sorted(context['dag'].params)}"
        )
    ti = context["ti"]
    return {
        "params": dict(context["params"]),
        "ti": [ti.dag_id, ti.run_id, ti.task_id, str(ti.map_index)],
        "last_try": ti.try_number > ti.max_tries,
        "executors": _pipec_executors(),
    }


def _pipec_step(facts, inputs, call):
    """The step's work in this process: bind, call (the fallback after the
    last try failed), and store its outputs."""
    step = call["step"]
    module = _pipec_load(
        call["source"], "<pipec step " + step + ">", "_pipec_step_" + step
    )
    if call.get("predicate"):
        _pipec_when(facts, inputs, module, step, call)
    kwargs = {
        name: _pipec_value(facts, inputs, ref) for name, ref in call["params"].items()
    }
    foreach = call.get("foreach")
    if foreach is not None:
        if call.get("index") is None:
            return None
        items = _pipec_items(step, foreach, kwargs[foreach], call.get("foreach_key"))
        kwargs[foreach] = items[call["index"]]
    fallback = call.get("fallback")

    def outputs(function, arguments):
        value = _pipec_call(function, arguments)
        return _pipec_typed(
            step,
            _pipec_outputs(step, call["outputs"], value),
            call.get("files", ()),
            call.get("metrics", ()),
        )

    try:
        if call.get("fallback_only"):
            raise AirflowTaskTimeout(f"step {step!r} timed out")
        values = outputs(getattr(module, call["function"]), kwargs)
    except (Exception, AirflowTaskTimeout):
        if fallback is None or not facts["last_try"]:
            raise
        print(
            f"pipec: step {step!r} failed on its last attempt; using fallback {fallback!r}"
        )
        function = getattr(module, call["function"])
        values = outputs(
            getattr(module, fallback), _pipec_fallback_args(function, kwargs)
        )
    return {name: _pipec_put(facts, name, value) for name, value in values.items()}


def _pipec_fan_out(inputs, step, source, items, **options):
    """The map indexes of a foreach step: one per element of the list bound
    by `items`, or a single placeholder (None) for an empty list, because
    Airflow skips a task mapped over nothing while pipec runs it with empty
    outputs.  The step's `when` predicate is evaluated here, once."""
    facts = _pipec_facts(get_current_context())
    _pipec_helpers(_PIPEC_HELPERS)
    if options.get("predicate"):
        module = _pipec_load(source, "<pipec step " + step + ">", "_pipec_step_" + step)
        _pipec_when(facts, inputs, module, step, options)
    values = _pipec_items(
        step,
        options.get("foreach"),
        _pipec_value(facts, inputs, items),
        options.get("foreach_key"),
    )
    return list(range(len(values))) or [None]


def _pipec_when(facts, inputs, module, step, options):
    """Skip the task when the step's predicate is false; a predicate that
    raises fails the step without retries (as in the local run)."""
    kwargs = {
        name: _pipec_value(facts, inputs, ref) for name, ref in options["when"].items()
    }
    try:
        go = _pipec_call(getattr(module, options["predicate"]), kwargs)
    except Exception as exc:
        raise AirflowFailException(
            f"`when` predicate of step {step!r} raised {exc!r}"
        ) from exc
    if not go:
        raise AirflowSkipException(f"`when` predicate of step {step!r} is false")


def _pipec_items(step, foreach, value, key=None):
    """The elements of a foreach step: the list bound to `foreach`, or the
    `key` of each of its elements (`foreach_key`)."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"foreach parameter {foreach!r} of step {step!r} is bound to a "
            f"{type(value).__name__}, which is not a list"
        )
    return value if key is None else _pipec_field(step, foreach, key, value)


def _pipec_value(facts, inputs, ref):
    """The value a binding refers to: a run parameter (the DAG's params,
    overridden by the run's conf), a default, or an upstream output (the
    list of per-element results when the producer is a foreach step)."""
    kind = ref[0]
    if kind == "context":
        return facts["params"][ref[1]]
    if kind == "default":
        return ref[1]
    result = inputs[ref[1]]
    if result is None:  # its step produced nothing (a step that runs anyway)
        return None
    if isinstance(result, dict):  # a file output: the path of a local copy
        return _pipec_unpack(_pipec_get(result[ref[2]]))
    return [_pipec_get(each[ref[2]]) for each in result if each is not None]


def _pipec_statuses(ti, steps):
    """{step: succeeded | failed | skipped | upstream_failed} of `steps`,
    read from this DAG run's task instances (a foreach step's mapped
    instances `step_<index>` and its `step-items` task together)."""
    names = {"success": "succeeded", "failed": "failed", "skipped": "skipped"}
    found = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id])
    states = found.get(ti.run_id, {})
    out = {}
    for step in steps:
        mine = [
            str(getattr(state, "value", state))
            for key, state in states.items()
            if key in (step, step + "-items")
            or (
                key.startswith(step + "_")
                and key[len(step) + 1 :].isdigit()
                and key not in steps
            )
        ]
        mine = [names.get(state, state) for state in mine]
        if states.get(step + "-items") == "failed" or "failed" in mine:
            out[step] = "failed"
        elif "upstream_failed" in mine:
            out[step] = "upstream_failed"
        elif mine and all(state == "skipped" for state in mine):
            out[step] = "skipped"
        else:
            out[step] = "succeeded"
    return out


def _pipec_run_failed():
    """The run-state task: it runs only when a task failed or could not run."""
    raise AirflowFailException("a step of this run failed or could not run")


def _pipec_put(facts, name, value):
    """The envelope of output `name`: inline JSON, or a pickled artifact."""
    text = _pipec_json(value)
    if text is not None and len(text.encode("utf-8")) <= _PIPEC_STORE["xcom_max_bytes"]:
        return {"json": text}
    parts = facts["ti"] + [name + ".pickle"]
    uri = (
        _pipec_artifact_root(facts, name)
        + "/"
        + "/".join(re.sub(r"[^\w.-]", "_", p) for p in parts)
    )
    path = _pipec_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(_pipec_pickle(value))
    return {"pickle": uri}


def _pipec_get(envelope):
    if "json" in envelope:
        return json.loads(envelope["json"])
    try:
        with _pipec_path(envelope["pickle"]).open("rb") as f:
            return _pipec_unpickle(f.read())
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"artifact {envelope['pickle']} is not here: was it written on "
            f"another host?  Set PIPEC_ARTIFACT_ROOT (or the setting "
            f"airflow.artifact_root) to a location every worker reaches"
        ) from exc


def _pipec_executors():
    """The class names of the executors Airflow is configured with."""
    from airflow.sdk.configuration import conf

    text = conf.get("core", "executor", fallback="") or "LocalExecutor"
    return [e.split(":")[-1].strip().rsplit(".", 1)[-1] for e in text.split(",")]


def _pipec_artifact_root(facts, name):
    """PIPEC_ARTIFACT_ROOT from the environment, else the compiled setting,
    else the folder `pipec-artifacts` in AIRFLOW_HOME, which only the tasks
    of one host see: with an executor that runs tasks on other hosts, the
    output fails its task, naming the setting."""
    root = os.environ.get("PIPEC_ARTIFACT_ROOT") or _PIPEC_STORE["root"]
    if not root:
        local = ("LocalExecutor", "SequentialExecutor", "DebugExecutor")
        remote = [e for e in facts["executors"] if e not in local]
        if remote:
            raise AirflowFailException(
                f"output {name!r} is no small JSON value, so it is stored as an "
                f"artifact, and executor {remote[0]} runs tasks on other hosts: "
                f"set PIPEC_ARTIFACT_ROOT (or the setting airflow.artifact_root) "
                f"to a location every worker reaches, e.g. s3://bucket/pipec"
            )
        home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
        root = os.path.join(home, "pipec-artifacts")
    if "://" not in root:
        root = os.path.abspath(root)
    return root.rstrip("/")


def _pipec_path(uri):
    """A local path, or Airflow's ObjectStoragePath for a URL (s3://,
    gs://, file://, ...) with the configured connection."""
    if "://" not in uri:
        import pathlib

        return pathlib.Path(uri)
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(uri, conn_id=_PIPEC_STORE["conn_id"])


def _pipec_isolated(facts, inputs, call):
    """Run the step in a virtual environment with its packages installed
    (Airflow's own `prepare_virtualenv`, as `@task.virtualenv` does), kept
    per set of packages under PIPEC_VENV_ROOT (default: `pipec-venvs` in
    AIRFLOW_HOME).  The step's inputs are read and its outputs stored in
    that environment, so objects of those packages never need them here.
    The worker's own packages stay visible after the environment's."""
    import subprocess
    import tempfile

    python = _pipec_venv(call["packages"])
    with tempfile.TemporaryDirectory(prefix="pipec-call-") as folder:
        request = os.path.join(folder, "request.pickle")
        result = os.path.join(folder, "result.pickle")
        with open(request, "wb") as f:
            pickle.dump([facts, inputs, call, _PIPEC_STORE, _PIPEC_HELPERS], f)
        script = os.path.join(folder, "step.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(_pipec_child_code())
        try:
            subprocess.run([python, script, request, result], check=False)
        except AirflowTaskTimeout:
            if not (call.get("fallback") and facts["last_try"]):
                raise
            call = dict(call, fallback_only=True)
            with open(request, "wb") as f:
                pickle.dump([facts, inputs, call, _PIPEC_STORE, _PIPEC_HELPERS], f)
            subprocess.run([python, script, request, result], check=False)
        if not os.path.exists(result):
            raise RuntimeError(f"step {call['step']!r} exited its environment")
        with open(result, "rb") as f:
            kind, value = pickle.load(f)
    if kind == "skip":
        raise AirflowSkipException(value)
    if kind == "fail":
        raise AirflowFailException(value)
    if kind == "error":
        raise RuntimeError(f"step {call['step']!r} failed:\n{value}")
    return value


def _pipec_venv(packages):
    """The python of the cached environment with `packages` installed."""
    import fcntl
    import hashlib
    import subprocess
    import sys

    from airflow.providers.standard.utils.python_virtualenv import (
        prepare_virtualenv,
    )

    key = json.dumps([sorted(packages), sys.version, sys.executable])
    root = os.environ.get("PIPEC_VENV_ROOT") or os.path.join(
        os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"),
        "pipec-venvs",
    )
    folder = os.path.join(root, hashlib.sha256(key.encode()).hexdigest()[:16])
    os.makedirs(root, exist_ok=True)
    with open(folder + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = os.path.join(folder, "pipec-ready.json")
        if not os.path.exists(marker):
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            prepare_virtualenv(
                venv_directory=folder,
                python_bin=sys.executable,
                system_site_packages=False,
                requirements=sorted(packages),
            )
            python = os.path.join(folder, "bin", "python")
            code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
            site = subprocess.run(
                [python, "-c", code], capture_output=True, text=True, check=True
            ).stdout.strip()
            parent = [p for p in sys.path if p and os.path.isdir(p)]
            with open(os.path.join(site, "_pipec_worker.pth"), "w") as f:
                f.write("\n".join(parent) + "\n")
            with open(marker, "w") as f:
                f.write(key)
    return os.path.join(folder, "bin", "python")


# What runs in a step's virtual environment: these definitions, then
# `_pipec_child_main` on the request the task wrote.
_PIPEC_CHILD = (
    "_pipec_load",
    "_pipec_register",
    "_pipec_class_text",
    "_pipec_find",
    "_PipecPickler",
    "_PipecUnpickler",
    "_pipec_pickle",
    "_pipec_unpickle",
    "_pipec_outputs",
    "_pipec_typed",
    "_pipec_file_path",
    "_pipec_pack",
    "_pipec_unpack",
    "_pipec_same",
    "_pipec_step",
    "_pipec_when",
    "_pipec_items",
    "_pipec_field",
    "_pipec_value",
    "_pipec_fallback_args",
    "_pipec_call",
    "_pipec_json",
    "_pipec_put",
    "_pipec_get",
    "_pipec_artifact_root",
    "_pipec_path",
    "_PipecHelpers",
    "_pipec_helpers",
    "_pipec_child_main",
)


def _pipec_child_code():
    """The script a step's virtual environment runs, from this file's own
    definitions."""
    head = [
        "import ast",
        "import contextvars",
        "import functools",
        "import importlib.util",
        "import inspect",
        "import io",
        "import json",
        "import linecache",
        "import os",
        "import pickle",
        "import re",
        "import sys",
        "import types",
        "import weakref",
        "",
        "from airflow.sdk.exceptions import (",
        "    AirflowFailException,",
        "    AirflowSkipException,",
        "    AirflowTaskTimeout,",
        ")",
        "",
        "_PIPEC_CLASSES = weakref.WeakKeyDictionary()",
        "_PIPEC_MODULES = weakref.WeakValueDictionary()",
        "_PIPEC_FOREIGN = {}",
        '_PIPEC_READER = contextvars.ContextVar("_PIPEC_READER", default=None)',
    ]
    parts = [inspect.getsource(globals()[name]) for name in _PIPEC_CHILD]
    tail = "_pipec_child_main(sys.argv[1], sys.argv[2])\n"
    return "\n".join(head) + "\n\n\n" + "\n\n".join(parts) + "\n\n" + tail


def _pipec_child_main(request, result):
    """Run the step of `request` and write ("ok", envelopes), ("skip",
    message), ("fail", message) or ("error", traceback) to `result`."""
    import traceback

    with open(request, "rb") as f:
        facts, inputs, call, store, helpers = pickle.load(f)
    globals()["_PIPEC_STORE"] = store
    _pipec_helpers(helpers)
    try:
        out = ("ok", _pipec_step(facts, inputs, call))
    except AirflowSkipException as exc:
        out = ("skip", str(exc))
    except AirflowFailException as exc:
        out = ("fail", str(exc))
    except BaseException:
        out = ("error", traceback.format_exc())
    with open(result, "wb") as f:
        pickle.dump(out, f)


class _PipecHelpers:
    """Imports the source tree's helper modules from the copies embedded in
    the DAG file (`_PIPEC_HELPERS`: dotted name -> source), before anything
    on the path."""

    def __init__(self, helpers):
        self.helpers = helpers

    def find_spec(self, name, path=None, target=None):
        if name not in self.helpers:
            return None
        package = any(other.startswith(name + ".") for other in self.helpers)
        return importlib.util.spec_from_loader(name, self, is_package=package)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        filename = "<pipec helper " + module.__name__ + ">"
        source = self.helpers[module.__name__]
        linecache.cache[filename] = (
            len(source),
            None,
            source.splitlines(True),
            filename,
        )
        module.__file__ = filename
        exec(compile(source, filename, "exec"), module.__dict__)


def _pipec_helpers(helpers):
    """Make the embedded helper modules importable (once per process)."""
    import sys

    if helpers and not any(isinstance(f, _PipecHelpers) for f in sys.meta_path):
        sys.meta_path.insert(0, _PipecHelpers(helpers))


def _pipec_require(names):
    """Fail the DAG's parse, naming the module, when a helper module of the
    source tree that the tasks import is not on this host's path.  Finds the
    modules without running them."""
    import importlib.machinery

    for name in names:
        parts = name.split(".")
        path = None
        for depth, part in enumerate(parts, 1):
            spec = importlib.machinery.PathFinder.find_spec(part, path)
            path = spec.submodule_search_locations if spec else None
            if spec is None or (path is None and depth < len(parts)):
                raise ModuleNotFoundError(
                    f"the tasks of this DAG import {name!r} from the pipeline's "
                    f"source tree, which is not on the path: put the source root "
                    f"on the PYTHONPATH of the scheduler and the workers, or "
                    f"compile with the setting airflow.helpers = 'embed'",
                    name=name,
                )
