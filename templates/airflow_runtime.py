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

Only the standard library and Airflow are imported at the top (`DAG`,
`Param` and `task` for the generated code); a step's own imports run inside
its task.
"""

import datetime
import inspect
import json
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
    (this element; None for the placeholder of an empty list)."""
    context = get_current_context()
    module = _pipec_load(source, "<pipec step " + step + ">", "_pipec_step_" + step)
    if options.get("predicate"):
        _pipec_when(context, inputs, module, step, options)
    kwargs = {name: _pipec_value(context, inputs, ref) for name, ref in params.items()}
    foreach = options.get("foreach")
    if foreach is not None:
        if options.get("index") is None:
            return None
        kwargs[foreach] = _pipec_items(step, foreach, kwargs[foreach])[options["index"]]
    try:
        values = _pipec_outputs(
            step, outputs, _pipec_call(getattr(module, function), kwargs)
        )
    except (Exception, AirflowTaskTimeout):
        fallback = options.get("fallback")
        ti = context["ti"]
        if fallback is None or ti.try_number <= ti.max_tries:
            raise
        print(
            f"pipec: step {step!r} failed on its last attempt; using fallback {fallback!r}"
        )
        values = _pipec_outputs(
            step, outputs, _pipec_call(getattr(module, fallback), kwargs)
        )
    return {name: _pipec_put(context, name, value) for name, value in values.items()}


def _pipec_fan_out(inputs, step, source, items, **options):
    """The map indexes of a foreach step: one per element of the list bound
    by `items`, or a single placeholder (None) for an empty list, because
    Airflow skips a task mapped over nothing while pipec runs it with empty
    outputs.  The step's `when` predicate is evaluated here, once."""
    context = get_current_context()
    if options.get("predicate"):
        module = _pipec_load(source, "<pipec step " + step + ">", "_pipec_step_" + step)
        _pipec_when(context, inputs, module, step, options)
    values = _pipec_items(
        step, options.get("foreach"), _pipec_value(context, inputs, items)
    )
    return list(range(len(values))) or [None]


def _pipec_when(context, inputs, module, step, options):
    """Skip the task when the step's predicate is false; a predicate that
    raises fails the step without retries (as in the local run)."""
    kwargs = {
        name: _pipec_value(context, inputs, ref)
        for name, ref in options["when"].items()
    }
    try:
        go = _pipec_call(getattr(module, options["predicate"]), kwargs)
    except Exception as exc:
        raise AirflowFailException(
            f"`when` predicate of step {step!r} raised {exc!r}"
        ) from exc
    if not go:
        raise AirflowSkipException(f"`when` predicate of step {step!r} is false")


def _pipec_items(step, foreach, value):
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"foreach parameter {foreach!r} of step {step!r} is bound to a "
            f"{type(value).__name__}, which is not a list"
        )
    return value


def _pipec_value(context, inputs, ref):
    """The value a binding refers to: a run parameter (the DAG's params,
    overridden by the run's conf), a default, or an upstream output (the
    list of per-element results when the producer is a foreach step)."""
    kind = ref[0]
    if kind == "context":
        return context["params"][ref[1]]
    if kind == "default":
        return ref[1]
    result = inputs[ref[1]]
    if isinstance(result, dict):
        return _pipec_get(result[ref[2]])
    return [_pipec_get(each[ref[2]]) for each in result if each is not None]


def _pipec_call(fn, kwargs):
    """Call `fn` with `kwargs`, passing positional-only parameters by
    position."""
    kwargs = dict(kwargs)
    args = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind != param.POSITIONAL_ONLY or param.name not in kwargs:
            break
        args.append(kwargs.pop(param.name))
    return fn(*args, **kwargs)


def _pipec_put(context, name, value):
    """The envelope of output `name`: inline JSON, or a pickled artifact."""
    text = _pipec_json(value)
    if text is not None and len(text.encode("utf-8")) <= _PIPEC_STORE["xcom_max_bytes"]:
        return {"json": text}
    ti = context["ti"]
    parts = [ti.dag_id, ti.run_id, ti.task_id, str(ti.map_index), name + ".pickle"]
    uri = (
        _pipec_artifact_root()
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
    with _pipec_path(envelope["pickle"]).open("rb") as f:
        return _pipec_unpickle(f.read())


def _pipec_artifact_root():
    """PIPEC_ARTIFACT_ROOT from the environment, else the compiled setting,
    else the folder `pipec-artifacts` in AIRFLOW_HOME."""
    root = os.environ.get("PIPEC_ARTIFACT_ROOT") or _PIPEC_STORE["root"]
    if not root:
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
