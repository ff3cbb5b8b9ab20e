"""pipec's Prefect runtime: how the tasks of a generated flow run a step.

The Prefect backend embeds this file's code verbatim (after this docstring)
into every flow file it writes, after `task_runtime.py` and
`prefect_environment.py`, whose helpers (and `threading` import) it uses.  Prefect and the standard
library only; no top-level side effects.

Data passing: a step's task returns the dict of its named outputs, each in
the shared envelope (`_pipec_dumps`: JSON when exact, else a pickle), as
every target and the local run pass values (a foreach step's tasks return
one dict per element); a consumer's task receives the producer's result and
reads back the outputs it takes, a fresh copy each time.  A skipped step's task
ends in a `Completed(name="Skipped")` state whose result is None, so its
consumers see None and skip too.  A failed step leaves its consumers in
Prefect's `NotReady` state (upstream failed).  `_pipec_finish` turns the
final states into the flow's result.
"""

import asyncio
import hashlib

from prefect.cache_policies import INPUTS, TASK_SOURCE, CacheKeyFnPolicy
from prefect.futures import wait
from prefect.states import Completed, Failed


class _PipecStep:
    """One step: its embedded code and how its task's parameters bind."""

    def __init__(self, name, code, location, module, function, outputs, **options):
        self.name = name
        self.code = code
        self.location = location
        self.module = module
        self.function = function
        self.outputs = tuple(outputs)
        # Task parameter -> the upstream output it selects from its value.
        self.upstream = dict(options.get("upstream", {}))
        # The step function's parameters (task parameters of the same name).
        self.params = tuple(options.get("params", ()))
        self.foreach = options.get("foreach")
        # Each element is a dict; the step gets its value at this key.
        self.foreach_key = options.get("foreach_key")
        self.fallback = options.get("fallback")
        self.predicate = options.get("predicate")
        # Predicate parameter -> the task parameter that carries its value.
        self.when = dict(options.get("when", {}))
        # A foreach step's limit: at most this many elements run at once.
        limit = options.get("max_parallel")
        self.slots = threading.BoundedSemaphore(limit) if limit else None
        # A step that decides when it runs from its upstream steps' states
        # (`_PipecUpstream`): the task parameter saying whether it runs, and
        # whether an output its upstream step did not produce reads None.
        self.go = options.get("go")
        self.anyway = bool(options.get("anyway"))
        # Outputs that are files (packed to travel) and metrics (shown as a
        # table artifact keyed by the step's name).
        self.files = tuple(options.get("files", ()))
        self.metrics = tuple(options.get("metrics", ()))

    def cache_key(self, context, parameters):
        """The step's code and bindings, for the task's cache policy."""
        spec = repr((self.name, self.code, self.function, self.outputs))
        spec += repr((self.upstream, self.params, self.foreach, self.when))
        if self.foreach_key is not None:
            spec += repr(self.foreach_key)
        spec += repr((self.fallback, self.predicate))
        return hashlib.sha256(spec.encode("utf-8")).hexdigest()

    def load(self):
        return _pipec_load(self.code, self.location, self.module)

    def values(self, raw):
        """The task's parameter values with upstream outputs selected, or a
        Skipped state when an upstream step was skipped."""
        values = dict(raw)
        element = values.get(self.foreach)
        if isinstance(element, _PipecNoElements):
            return element.state(self.name)
        for param, output in self.upstream.items():
            if param == self.foreach:
                continue
            value = _pipec_select(values[param], output)
            if value is _PIPEC_SKIPPED and self.anyway:
                value = None
            elif value is _PIPEC_SKIPPED:
                return _pipec_skipped(f"an upstream step of {self.name!r} was skipped")
            values[param] = value
        if self.foreach_key is not None:
            key = self.foreach_key
            values[self.foreach] = _pipec_field(
                self.name, self.foreach, key, [element]
            )[0]
        for param in self.params:
            if param not in self.upstream or param == self.foreach:
                # A run parameter: each task gets a copy of its own.
                values[param] = _pipec_loads(_pipec_dumps(values[param]))
        return values

    async def run(self, **raw):
        """The task body: skip, or call the step function in a thread (so
        that Prefect's timeout can stop waiting for it) and name its outputs.
        The step's code is loaded first: values read take its classes."""
        if self.go is not None and not raw[self.go]:
            return _pipec_skipped(
                f"the upstream steps of {self.name!r} do not let it run"
            )
        module = self.load()
        values = self.values(raw)
        if not isinstance(values, dict):
            return values
        if self.predicate is not None and self.foreach is None:
            when = {name: values[param] for name, param in self.when.items()}
            if not _pipec_call(getattr(module, self.predicate), when):
                return _pipec_skipped(f"the `when` condition of {self.name!r} is false")
        args = {name: values[name] for name in self.params}
        function = getattr(module, self.function)
        value = await asyncio.to_thread(self.call, function, args)
        return await self.envelopes(value)

    async def envelopes(self, value):
        """The step's outputs from its return value, each in its envelope:
        file outputs packed (in a worker thread), metrics checked and shown
        as a table artifact keyed by the step's name."""
        if not self.files and not self.metrics:
            return _pipec_envelopes(self.name, self.outputs, value)
        outputs = _pipec_outputs(self.name, self.outputs, value)
        outputs = await asyncio.to_thread(
            _pipec_typed, self.name, outputs, self.files, self.metrics
        )
        if self.metrics:
            from prefect.artifacts import acreate_table_artifact

            rows = [
                {"output": name, "metric": key, "value": number}
                for name in self.metrics
                for key, number in outputs[name].items()
            ]
            key = "".join(
                c if c.isascii() and c.isalnum() else "-" for c in self.name.lower()
            )
            await acreate_table_artifact(
                rows, key=key, description=f"metrics of {self.name}"
            )
        return {name: _pipec_dumps(item) for name, item in outputs.items()}

    def call(self, function, args):
        """The step function called, once a slot is free if the step has a
        limit (the flow's tasks run in threads of one process)."""
        if self.slots is None:
            return _pipec_call(function, args)
        with self.slots:
            return _pipec_call(function, args)

    async def gate(self, **raw):
        """A foreach step's `when`, evaluated once on whole values before its
        elements are mapped: True or False; Skipped when a value it reads
        comes from a skipped step."""
        module = self.load()
        when = {}
        for name, param in self.when.items():
            value = raw[param]
            if param in self.upstream:
                value = _pipec_select(value, self.upstream[param])
                if value is _PIPEC_SKIPPED:
                    return _pipec_skipped(
                        f"an upstream step of {self.name!r} was skipped"
                    )
            when[name] = value
        predicate = getattr(module, self.predicate)
        return bool(await asyncio.to_thread(_pipec_call, predicate, when))

    async def recover(self, attempt, **raw):
        """The on_failure task body: `attempt` is the step's result, or its
        exception when its last attempt failed; then the fallback's return
        value becomes the step's outputs."""
        if not isinstance(attempt, BaseException):
            if attempt is None:
                return _pipec_skipped(f"step {self.name!r} was skipped")
            message = f"step {self.name!r} succeeded; fallback not called"
            return Completed(name="NotNeeded", message=message, data=attempt)
        module = self.load()
        values = self.values(raw)
        args = {name: values[name] for name in self.params}
        args = _pipec_fallback_args(getattr(module, self.function), args)
        fallback = getattr(module, self.fallback)
        value = await asyncio.to_thread(_pipec_call, fallback, args)
        return await self.envelopes(value)


class _PipecNoElements:
    """Stands for the element list of a foreach step whose list is not
    available: the upstream step was skipped, or its value is not a list."""

    def __init__(self, reason):
        self.reason = reason

    def state(self, step):
        if self.reason == "skipped":
            return _pipec_skipped(f"the foreach list of {step!r} was skipped")
        if self.reason == "false":
            return _pipec_skipped(f"the `when` condition of {step!r} is false")
        if self.reason == "raised":
            raise RuntimeError(
                f"the `when` predicate of {step!r} raised (see its task)"
            )
        raise TypeError(f"foreach step {step!r}: {self.reason}")


_PIPEC_SKIPPED = _PipecNoElements("skipped")


def _pipec_envelopes(step, names, value):
    """The step's outputs from its return value, each in its envelope."""
    outputs = _pipec_outputs(step, names, value)
    return {name: _pipec_dumps(item) for name, item in outputs.items()}


def _pipec_skipped(message):
    return Completed(name="Skipped", message=message, data=None)


def _pipec_select(result, output):
    """Output `output` of an upstream result: a dict of outputs, or a list of
    them (a foreach step), or None (a skipped step)."""
    if isinstance(result, list):
        if any(item is None for item in result):
            return _PIPEC_SKIPPED
        return [_pipec_loads(item[output]) for item in result]
    if result is None:
        return _PIPEC_SKIPPED
    return _pipec_unpack(_pipec_loads(result[output]))  # a file: a local copy


def _pipec_cache(step):
    """Cache keyed on the task's inputs, its source and the step's code."""
    return INPUTS + TASK_SOURCE + CacheKeyFnPolicy(cache_key_fn=step.cache_key)


def _pipec_status(run):
    """(status, result) of a step's task run, or of its list of runs."""
    runs = run if isinstance(run, list) else [run]
    wait(runs)
    statuses, results = [], []
    for future in runs:
        state = future.state
        if state.is_completed():
            result = state.result()
            statuses.append("skipped" if result is None else "succeeded")
            results.append(result)
        elif state.is_pending():
            statuses.append("upstream_failed")
        else:
            statuses.append("failed")
    for status in ("failed", "upstream_failed", "skipped"):
        if status in statuses:
            return status, None
    return "succeeded", results if isinstance(run, list) else results[0]


class _PipecUpstream:
    """The upstream steps of a step with a trigger rule, an `after` list or
    the final step, once they have ended (the flow waits for them): their
    statuses and results, and whether the step runs (`_pipec_blocked`, the
    rule the local run applies).  When it does not, its task is skipped
    (`go` False) or waits for a failed upstream run and is never ready
    (upstream_failed), as Prefect leaves a consumer of a failed task."""

    def __init__(self, trigger, runs):
        self.statuses, self.results, failed = {}, {}, []
        for name, run in runs.items():
            status, result = _pipec_status(run)
            self.statuses[name] = status
            self.results[name] = result
            if status in ("failed", "upstream_failed"):
                failed.append(run)
        blocked = _pipec_blocked(list(self.statuses.values()), trigger)
        self.go = blocked is None
        self.wait_for = failed[:1] if blocked == "upstream_failed" else []

    def given(self, name):
        """Upstream step `name`'s result; None when it produced nothing."""
        return self.results[name]


def _pipec_elements(run, output):
    """The list a foreach step maps over, from its upstream step's run."""
    status, result = _pipec_status(run)
    if status == "succeeded":
        elements = _pipec_select(result, output)
        if isinstance(elements, list):
            return elements
        kind = type(elements).__name__
        return [_PipecNoElements(f"{output!r} is a {kind}, not a list")]
    if status == "skipped":
        return [_PIPEC_SKIPPED]
    # Failed upstream: the mapped task waits for it and is never ready.
    return [None]


def _pipec_gated(gate, elements, *upstream):
    """(elements, what they wait for) of a foreach step with a `when`, from
    its gate task's run: the elements when the condition held, else one
    element standing for the skip or the failure.  With the gate not run
    (a value it reads failed), the tasks wait for it and are never ready."""
    status, result = _pipec_status(gate)
    if status == "succeeded" and result:
        return elements, list(upstream)
    if status == "succeeded":
        return [_PipecNoElements("false")], list(upstream)
    if status == "skipped":
        return [_PIPEC_SKIPPED], list(upstream)
    if status == "failed":
        return [_PipecNoElements("raised")], list(upstream)
    return [None], list(upstream) + [gate]


def _pipec_fanout(elements, runs):
    """The elements of a foreach step that also takes outputs of the
    upstream steps `runs`.  Given no element, the step's status still comes
    from those runs by the rule every step shares (`_pipec_blocked`): an
    empty `.map` creates no task, so nothing would wait for a failed run
    and the step would seem to succeed.  One element then stands for the
    skip, or waits (through the step's other arguments) for the failed run
    and is never ready."""
    if elements:
        return elements
    status = _pipec_blocked([_pipec_status(run)[0] for run in runs], "all_succeeded")
    if status == "upstream_failed":
        return [None]
    if status == "skipped":
        return [_PIPEC_SKIPPED]
    return elements


def _pipec_finish(runs):
    """The flow's result: every step's status and outputs; a Failed state
    (with the same data) when a step failed."""
    statuses, outputs = {}, {}
    for step, run in runs:
        status, result = _pipec_status(run)
        statuses[step.name] = status
        if status != "succeeded":
            continue
        if step.foreach is not None:
            for name in step.outputs:
                outputs[name] = [_pipec_loads(item[name]) for item in result]
        else:
            outputs.update({name: _pipec_loads(data) for name, data in result.items()})
    failed = [name for name, status in statuses.items() if status == "failed"]
    outcome = {"success": not failed, "statuses": statuses, "outputs": outputs}
    if failed:
        return Failed(message=f"step(s) failed: {', '.join(failed)}", data=outcome)
    return outcome
