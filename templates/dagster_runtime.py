"""pipec's Dagster runtime: how the ops of a generated job run their steps.

The Dagster backend embeds this file's code verbatim (after this docstring)
into every definitions module it writes, after `task_runtime.py`, whose
`_pipec_load`, `_pipec_outputs` and `_pipec_same` it uses.  Dagster, the
standard library and (for object storage) universal_pathlib only, which
Dagster itself depends on; no top-level side effects.

Each op gets its inputs by name: `refs` binds each parameter of the step
function (and of its `when` predicate) to ["output", input name],
["context", key] (a field of the pipeline's context resource, overridable in
the run config) or ["default", value].  A step's op yields one output per
declared output; a skipped step yields none, so Dagster skips the ops that
consume them.  A step that others run `after` also yields a Nothing output
`done` (when it produced its outputs) that those ops take as an input.  A foreach step is three ops: `<step>__items` (the predicate,
evaluated once, then one dynamic output per element and the element count),
`<step>` mapped over the elements, and `<step>__collect`, which runs even for
an empty list (it also takes the count) and turns the per-element results,
in element order, into the step's outputs.

Retries raise `RetryRequested` with pipec's exact delay (retry k waits
`delay * backoff ** (k - 1)` seconds); a timeout runs the attempt in a worker
thread and stops waiting at the deadline, as the local run does; the
fallback runs inside the last attempt.  Values between ops go through
`_PipecIOManager`: JSON when the value comes back from JSON exactly, else a
pickle, under a base path (local folder or object-storage URL).
"""

import json
import os
import tempfile
import threading

from dagster import (
    ConfigurableIOManager,
    DynamicOutput,
    Output,
    RetryRequested,
)


class _PipecStep:
    """One step: its embedded code, bindings, retries and timeout."""

    def __init__(self, name, code, location, module, function, outputs, **options):
        self.name = name
        self.code = code
        self.location = location
        self.module = module
        self.function = function
        self.outputs = tuple(outputs)
        # The Dagster output name of each declared output, in order.
        self.outs = tuple(options.get("outs", outputs))
        self.refs = dict(options.get("refs", {}))
        self.foreach = options.get("foreach")
        self.foreach_key = options.get("foreach_key")
        self.fallback = options.get("fallback")
        self.predicate = options.get("predicate")
        self.when = dict(options.get("when", {}))
        self.retries = options.get("retries", 0)
        self.delay = options.get("delay", 1.0)
        self.backoff = options.get("backoff", 1.0)
        self.timeout = options.get("timeout")
        # The Nothing output that steps running `after` this one wait for.
        self.done = options.get("done")
        # Outputs that are files (packed to travel) and metrics (also the
        # output's metadata, shown in Dagster's UI).
        self.files = tuple(options.get("files", ()))
        self.metrics = tuple(options.get("metrics", ()))

    def load(self):
        return _pipec_load(self.code, self.location, self.module)

    def value(self, context, inputs, ref):
        """A fresh copy of the value bound by `ref` (through the envelope, as
        the other targets and the local run hand values over): a step that
        changes its inputs in place changes its own copies only; a file
        output arrives as the path of a local copy."""
        if ref[0] == "output":
            value = inputs[ref[1]]
        elif ref[0] == "context":
            value = getattr(context.resources.context, ref[1])
        else:
            value = ref[1]
        return _pipec_unpack(_pipec_loads(_pipec_dumps(value)))

    def go(self, context, module, inputs):
        """False (and a log line) when the `when` predicate is false; a
        predicate that raises fails the op without retries."""
        if self.predicate is None:
            return True
        kwargs = {k: self.value(context, inputs, r) for k, r in self.when.items()}
        try:
            go = _pipec_call(getattr(module, self.predicate), kwargs)
        except Exception as exc:
            raise RuntimeError(
                f"`when` predicate of step {self.name!r} raised {exc!r}"
            ) from exc
        if not go:
            context.log.info("pipec: skipped: the `when` condition is false")
        return bool(go)

    def attempt(self, context, module, kwargs):
        """The step's outputs from this attempt; a retry with the exact
        delay when it fails and retries are left, else the fallback."""
        try:
            value = _pipec_timed(getattr(module, self.function), kwargs, self)
            return self.typed(_pipec_outputs(self.name, self.outputs, value))
        except Exception as exc:
            retry = context.retry_number
            if retry < self.retries:
                wait = self.delay * self.backoff**retry
                raise RetryRequested(self.retries, seconds_to_wait=wait) from exc
            if self.fallback is None:
                raise
            context.log.warning(
                f"pipec: step {self.name!r} failed on its last attempt ({exc!r}); "
                f"using fallback {self.fallback!r}"
            )
        kwargs = _pipec_fallback_args(getattr(module, self.function), kwargs)
        value = _pipec_call(getattr(module, self.fallback), kwargs)
        return self.typed(_pipec_outputs(self.name, self.outputs, value))

    def typed(self, values):
        """File outputs packed, metrics checked."""
        return _pipec_typed(self.name, values, self.files, self.metrics)

    def run(self, context, inputs):
        """The op of a plain step: yields its outputs, or none when skipped."""
        module = self.load()
        if not self.go(context, module, inputs):
            return
        kwargs = {k: self.value(context, inputs, r) for k, r in self.refs.items()}
        values = self.attempt(context, module, kwargs)
        for name, out in zip(self.outputs, self.outs):
            metadata = dict(values[name]) if name in self.metrics else None
            yield Output(values[name], out, metadata=metadata)
        if self.done:
            yield Output(None, self.done)

    def fan_out(self, context, inputs):
        """The `__items` op of a foreach step: the element count, then one
        dynamic output per element; nothing when the step is skipped."""
        if self.predicate is not None and not self.go(context, self.load(), inputs):
            return
        items = self.value(context, inputs, self.refs[self.foreach])
        if not isinstance(items, (list, tuple)):
            raise ValueError(
                f"foreach parameter {self.foreach!r} of step {self.name!r} is bound "
                f"to a {type(items).__name__}, which is not a list"
            )
        if self.foreach_key is not None:
            items = _pipec_field(self.name, self.foreach, self.foreach_key, items)
        yield Output(len(items), "count")
        for index, item in enumerate(items):
            yield DynamicOutput(item, mapping_key=str(index), output_name="items")

    def run_element(self, context, element, inputs):
        """The mapped op of a foreach step: one element's outputs."""
        module = self.load()
        kwargs = {}
        for name, ref in self.refs.items():
            if name == self.foreach:
                kwargs[name] = element
            else:
                kwargs[name] = self.value(context, inputs, ref)
        return self.attempt(context, module, kwargs)

    def collect(self, results):
        """The `__collect` op: each output as the list of per-element
        results, in element order."""
        for name, out in zip(self.outputs, self.outs):
            yield Output([result[name] for result in results], out)
        if self.done:
            yield Output(None, self.done)


def _pipec_timed(fn, kwargs, step):
    """Call `fn`; with a timeout, in a daemon thread that the op stops
    waiting for at the deadline (Python cannot stop the thread itself)."""
    if step.timeout is None:
        return _pipec_call(fn, kwargs)
    box = {}

    def target():
        try:
            box["value"] = _pipec_call(fn, kwargs)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"pipec-{step.name}", daemon=True)
    worker.start()
    worker.join(step.timeout)
    if worker.is_alive():
        raise TimeoutError(f"step {step.name!r} timed out after {step.timeout:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class _PipecIOManager(ConfigurableIOManager):
    """Op outputs as files: `<base>/<run id>/<step key>/<output>[/<mapping
    key>].json` when the value comes back from JSON exactly, else `.pickle`.
    The base is the environment variable PIPEC_ARTIFACT_ROOT, else
    `base_path`, else `$DAGSTER_HOME/storage/pipec`; a URL (s3://, gs://,
    ...) is object storage through universal_pathlib and fsspec."""

    base_path: str = ""

    def _path(self, identifier):
        root = os.environ.get("PIPEC_ARTIFACT_ROOT") or self.base_path
        if not root:
            home = os.environ.get("DAGSTER_HOME") or tempfile.gettempdir()
            root = os.path.join(home, "storage", "pipec")
        if "://" in root:
            from upath import UPath

            return UPath(root.rstrip("/"), *identifier)
        import pathlib

        return pathlib.Path(os.path.abspath(root), *identifier)

    def handle_output(self, context, obj):
        path = self._path(context.get_identifier())
        path.parent.mkdir(parents=True, exist_ok=True)
        text = _pipec_json(obj)
        if text is not None:
            path.with_name(path.name + ".json").write_text(text, encoding="utf-8")
        else:
            path.with_name(path.name + ".pickle").write_bytes(_pipec_pickle(obj))

    def load_input(self, context):
        path = self._path(context.upstream_output.get_identifier())
        text_path = path.with_name(path.name + ".json")
        if text_path.exists():
            return json.loads(text_path.read_text(encoding="utf-8"))
        return _pipec_unpickle(path.with_name(path.name + ".pickle").read_bytes())
