"""pipec's KFP task runtime: what every generated KFP component program adds
to the shared task runtime (`task_runtime.py`).

The kubeflow backend embeds this file's code (after this docstring) into
each component's program, so the container needs no pipec.  Standard
library only, black-formatted, one imported name per import statement, no
top-level side effects.

- Step outputs travel as KFP artifacts: the value is written to the
  artifact's path as JSON when JSON gives it back exactly (same values and
  types), else as a pickle (DataFrames, models, tuples...).  Readers tell the
  two apart by the first byte (a pickle starts with 0x80, JSON never does).
- The one output of a step annotated `-> int`, `-> float`, `-> str` or
  `-> bool` travels as a typed KFP output parameter when the value fits it
  exactly (`_pipec_fits`), with a companion "raw" artifact that is then
  empty; a value that does not fit (an int from `-> float`, a numpy
  scalar, a huge int...) goes into the raw artifact instead, and the
  parameter holds the type's zero value.  Readers take the raw artifact
  when it is not empty, else the parameter with its declared type restored
  (`_pipec_get`: KFP may hand an int back as 3.0).
- Context values travel as typed KFP parameters; lists, dicts and None as
  JSON text in STRING parameters, read back exactly (`json.loads`: ints of
  any size, dict order kept), as KFP's LIST/STRUCT values would not be.
- `_pipec_attempts` runs a step with its timeout (enforced here: KFP core has no
  per-task timeout), the retries the component does itself (only for steps
  with a fallback: KFP does not tell a container which attempt it runs) and
  the fallback after the last attempt.

- `_pipec_task` builds the function `kfp.dsl.executor_main` calls from the
  component's spec (`_pipec_spec`, read from the executor input): its
  signature declares the component's inputs and outputs with their KFP
  types.  Positional-only parameters of a step are passed by position
  (`_pipec_call`).

A pipeline's program carries only the definitions its steps reach
(`backends/runtime_code.py`): the optional features (`_pipec_attempts`,
`_pipec_install`, `_pipec_helpers`, `_pipec_run_predicate`) are handed to
`_pipec_task` by the program only when one of its steps uses them.
"""

import inspect
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time


def _pipec_write(artifact, value):
    """Write `value` at the artifact's path in the shared envelope
    (`_pipec_dumps`: JSON when exact, else pickle)."""
    data = _pipec_dumps(value)
    os.makedirs(os.path.dirname(artifact.path) or ".", exist_ok=True)
    artifact.metadata["pipec_format"] = "pickle" if data[:1] == b"\x80" else "json"
    with open(artifact.path, "wb") as f:
        f.write(data)


def _pipec_read(artifact):
    """The value an upstream step wrote with `_pipec_write`."""
    with open(artifact.path, "rb") as f:
        return _pipec_loads(f.read())


# A string longer than this travels in the raw artifact, not as a parameter.
_PIPEC_PARAMETER_LIMIT = 65536
_PIPEC_ZERO = {"int": 0, "float": 0.0, "str": "", "bool": False}


def _pipec_fits(value, kind):
    """Whether a KFP parameter of type `kind` carries `value` exactly."""
    if kind == "int":
        # KFP numbers are doubles: exact up to 2 ** 53.
        return type(value) is int and -(2**53) <= value <= 2**53
    if kind == "float":
        return type(value) is float and math.isfinite(value)
    if kind == "bool":
        return type(value) is bool
    if type(value) is not str or len(value) > _PIPEC_PARAMETER_LIMIT:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _pipec_put(artifact, value, kind):
    """The output parameter's value for `value` (declared type `kind`):
    the value itself when it fits (the raw artifact stays empty), else the
    zero value, `value` then going into the raw artifact."""
    if not _pipec_fits(value, kind):
        _pipec_write(artifact, value)
        return _PIPEC_ZERO[kind]
    os.makedirs(os.path.dirname(artifact.path) or ".", exist_ok=True)
    with open(artifact.path, "wb"):
        pass
    artifact.metadata["pipec_format"] = "parameter"
    return value


def _pipec_get(value, artifact, kind):
    """An output that `_pipec_put` passed: the raw artifact's value when it
    is not empty, else the parameter with its declared type restored."""
    with open(artifact.path, "rb") as f:
        if f.read(1):
            return _pipec_read(artifact)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool" and isinstance(value, str):
        return value.lower() == "true"
    if kind == "bool":
        return bool(value)
    return value


def _pipec_install(packages):
    """pip-install the step's declared packages (never through a shell)."""
    if packages:
        command = [sys.executable, "-m", "pip", "install", "--quiet"]
        command += ["--no-warn-script-location", *packages]
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
        subprocess.run(command, check=True, env=env)


def _pipec_helpers(helpers):
    """Write the embedded helper modules of the source tree into a fresh
    folder and put it first on the path, so the step's imports find them."""
    if not helpers:
        return
    root = tempfile.mkdtemp(prefix="pipec-helpers-")
    names = [name for name, _ in helpers]
    for name, text in helpers:
        parts = name.split(".")
        if any(other.startswith(name + ".") for other in names):
            path = os.path.join(root, *parts, "__init__.py")
        else:
            path = os.path.join(root, *parts[:-1], parts[-1] + ".py")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    sys.path.insert(0, root)


def _pipec_timed(function, kwargs, timeout):
    """Call `function(**kwargs)`; raise TimeoutError after `timeout` s."""
    if not timeout:
        return _pipec_call(function, kwargs)

    def expired(signum, frame):
        raise TimeoutError(f"step timed out after {timeout} seconds")

    previous = signal.signal(signal.SIGALRM, expired)
    # A timer beyond about three years overflows the platform's time_t, and
    # no task runs that long: such a timeout is set to that.
    signal.setitimer(signal.ITIMER_REAL, min(timeout, 1e8))
    try:
        return _pipec_call(function, kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _pipec_attempts(module, spec, kwargs):
    """Run a step that has a timeout or a fallback: its timeout per attempt,
    the in-component retries, and the fallback's value after the last
    attempt failed."""
    function = getattr(module, spec["function"])
    fallback = getattr(module, spec["fallback"]) if spec["fallback"] else None
    attempts = spec["attempts"] if fallback else 1
    for attempt in range(1, attempts + 1):
        try:
            return _pipec_timed(function, kwargs, spec["timeout"])
        except Exception as exc:
            print(f"step {spec['step']!r} attempt {attempt} failed: {exc!r}")
            if attempt < attempts:
                time.sleep(spec["delay"] * spec["backoff"] ** (attempt - 1))
            elif fallback is None:
                raise
    print(f"step {spec['step']!r}: calling fallback {spec['fallback']!r}")
    return _pipec_call(fallback, kwargs)


def _pipec_module(spec):
    """The step's code, loaded as a fresh module."""
    filename = "<pipec step " + spec["step"] + ">"
    return _pipec_load(spec["source"], filename, "pipec_step_" + spec["function"])


def _pipec_run_step(spec, kwargs, outputs, index=None, result=None, call=None):
    """Run one step (or element `index` of a foreach step) and write its
    outputs (a dict output name -> output artifact, the raw artifact for an
    output that travels as a parameter).  `call` (`_pipec_attempts`, for a step
    with a timeout or a fallback) runs the step; without it, the step is
    called once.  With `result` (the wrapper's NamedTuple of output
    parameters), return the output parameters."""
    if index is not None:
        items = kwargs[spec["foreach"]]
        if spec.get("foreach_key") is not None:
            items = _pipec_field(
                spec["step"], spec["foreach"], spec["foreach_key"], items
            )
        kwargs[spec["foreach"]] = items[int(index)]
    module = _pipec_module(spec)
    if call is None:
        value = _pipec_call(getattr(module, spec["function"]), kwargs)
    else:
        value = call(module, spec, kwargs)
    parameters = {}
    for name, item in _pipec_outputs(spec["step"], spec["outputs"], value).items():
        kind = spec["parameters"].get(name)
        if kind is None:
            _pipec_write(outputs[name], item)
        else:
            parameters[name] = _pipec_put(outputs[name], item, kind)
    return result(**parameters) if result is not None else None


def _pipec_run_predicate(spec, kwargs):
    """Evaluate the step's `when` predicate: True runs the step."""
    module = _pipec_module(spec)
    return bool(_pipec_call(getattr(module, spec["predicate"]), kwargs))


def _pipec_spec():
    """The spec of the step this task runs: the JSON text of the component's
    `pipec-spec` input, read from the executor input KFP passes."""
    text = sys.argv[sys.argv.index("--executor_input") + 1]
    return json.loads(json.loads(text)["inputs"]["parameterValues"]["pipec-spec"])


def _pipec_arg(arg):
    """An argument entry of the spec: (name, kind, context type, raw)."""
    return (list(arg) + ["str", ""])[:4]


def _pipec_value(kwargs, arg):
    """The value the step gets for one of the component's inputs."""
    name, kind, ctype, raw = _pipec_arg(arg)
    value = kwargs[name]
    if kind == "artifact":
        return _pipec_read(value)
    if kind == "artifacts":
        return [_pipec_read(item) for item in value if os.path.getsize(item.path)]
    if kind == "param":
        return _pipec_get(value, kwargs[raw], ctype)
    if ctype == "json":
        return json.loads(value)
    return value


def _pipec_invoke(spec, features, kwargs, returns):
    """Run the component's role: list the element indices, evaluate the
    step's `when`, or run the step (one element of it).

    The element indices of an empty list are `[-1]`: kfp.local (2.17) gives
    a loop of no iteration no outputs, so its consumers fail.  Iteration -1
    runs nothing and writes empty artifacts, which the readers of the
    collected outputs skip (a written output is never empty)."""
    outputs, index = {}, None
    for arg in spec["args"]:
        name, kind, ctype, raw = _pipec_arg(arg)
        if kind == "output":
            outputs[name] = kwargs[name]
        elif kind == "param_output":
            outputs[name] = kwargs[raw]
        elif kind == "index":
            index = int(kwargs[name])
    if index is not None and index < 0:
        for artifact in outputs.values():
            os.makedirs(os.path.dirname(artifact.path) or ".", exist_ok=True)
            with open(artifact.path, "wb"):
                pass
        return None
    if spec.get("packages"):
        features["install"](spec["packages"])
    if spec.get("helpers"):
        features["helpers"](spec["helpers"])
    values = {}
    for arg in spec["args"]:
        if _pipec_arg(arg)[1] not in ("output", "param_output", "index"):
            values[arg[0]] = _pipec_value(kwargs, arg)
    # Literals given where the step is added (`params`), as JSON values.
    values.update(spec.get("constants", {}))
    if spec["role"] == "items":
        items = values[spec["foreach"]]
        if spec.get("foreach_key") is not None:
            items = _pipec_field(
                spec["step"], spec["foreach"], spec["foreach_key"], items
            )
        return list(range(len(items))) or [-1]
    if spec["role"] == "predicate":
        return features["predicate"](spec, values)
    call = features.get("call") if "timeout" in spec else None
    return _pipec_run_step(spec, values, outputs, index, returns, call)


def _pipec_task(spec, **features):
    """The function `kfp.dsl.executor_main` calls for `spec`: its signature
    declares the component's inputs and outputs with the types KFP reads
    (context values and output parameters typed, outputs artifacts)."""
    import typing

    from kfp import dsl

    types = {
        "str": str,
        "int": int,
        "float": float,
        "bool": bool,
        "json": str,
    }
    kinds = {
        "artifact": dsl.Input[dsl.Artifact],
        "artifacts": dsl.Input[typing.List[dsl.Artifact]],
        "index": int,
        "output": dsl.Output[dsl.Artifact],
    }
    annotations, fields = {}, []
    for arg in spec["args"]:
        name, kind, ctype, raw = _pipec_arg(arg)
        if kind in ("context", "param"):
            annotations[name] = types[ctype]
        elif kind == "param_output":
            fields.append((name, types[ctype]))
        else:
            annotations[name] = kinds[kind]
        if raw:
            annotations[raw] = (dsl.Input if kind == "param" else dsl.Output)[
                dsl.Artifact
            ]
    returns = {"predicate": bool, "items": list}.get(spec["role"])
    if fields:
        returns = typing.NamedTuple("Outputs", fields)

    def task(**kwargs):
        return _pipec_invoke(spec, features, kwargs, returns)

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter(n, keyword, annotation=a) for n, a in annotations.items()
    ]
    empty = inspect.Signature.empty
    task.__signature__ = inspect.Signature(
        parameters, return_annotation=returns or empty
    )
    task.__annotations__ = dict(annotations, **({"return": returns} if returns else {}))
    return task


def _pipec_artifacts(spec, **features):
    """`_pipec_task` for a pipeline with file outputs or metrics.  Spec
    arguments of kind "file" (an input that is a file output of type
    `context type`), "file_output" (an output the step returns the path of)
    and "metrics" (the Metrics artifact of output `raw`) are KFP's typed
    artifacts: a file output's file or directory is copied into its artifact
    (its base name in the metadata), a file input is copied to a fresh local
    folder and passed as that path, and metrics become the Metrics
    artifact's metadata (as `Metrics.log_metric` writes them)."""
    from kfp import dsl

    typed = ("file", "file_output", "metrics")
    args = [_pipec_arg(arg) for arg in spec["args"]]
    plain = dict(spec, args=[a for a in spec["args"] if _pipec_arg(a)[1] not in typed])
    plain["args"] += [[a[0], "output"] for a in args if a[1] == "file_output"]
    inner = inspect.signature(_pipec_task(plain, **features))
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        p
        for p in inner.parameters.values()
        if p.name not in dict((a[0], a) for a in args if a[1] == "file_output")
    ]
    for name, kind, ctype, raw in args:
        if kind in typed:
            kind_class = dsl.Metrics if kind == "metrics" else getattr(dsl, ctype)
            io = dsl.Input if kind == "file" else dsl.Output
            parameters.append(
                inspect.Parameter(name, keyword, annotation=io[kind_class])
            )
    returns = inner.return_annotation
    returns = None if returns is inspect.Signature.empty else returns

    def task(**kwargs):
        call = dict(plain, constants=dict(plain.get("constants", {})))
        files, metrics = {}, {}
        for name, kind, ctype, raw in args:
            if kind == "file":
                artifact = kwargs.pop(name)
                base = artifact.metadata.get("pipec_name") or os.path.basename(
                    artifact.path
                )
                copy = os.path.join(tempfile.mkdtemp(prefix="pipec-file-"), base)
                _pipec_copy(artifact.path, copy)
                call["constants"][name] = copy
            elif kind == "file_output":
                files[name] = kwargs[name]
                path = os.path.join(tempfile.mkdtemp(prefix="pipec-out-"), name)
                kwargs[name] = types.SimpleNamespace(path=path, metadata={})
            elif kind == "metrics":
                metrics[raw] = kwargs.pop(name)
        result = _pipec_invoke(call, features, kwargs, returns)
        for name, artifact in files.items():
            source = _pipec_file_path(spec["step"], name, _pipec_read(kwargs[name]))
            _pipec_copy(source, artifact.path)
            artifact.metadata["pipec_name"] = os.path.basename(source.rstrip(os.sep))
        for name, artifact in metrics.items():
            value = _pipec_read(kwargs[name])
            _pipec_typed(spec["step"], {name: value}, (), (name,))
            artifact.metadata.update(value)
        return result

    task.__signature__ = inner.replace(parameters=parameters)
    task.__annotations__ = {p.name: p.annotation for p in parameters}
    if returns is not None:
        task.__annotations__["return"] = returns
    return task


def _pipec_copy(source, target):
    """Copy the file or directory `source` to the path `target`."""
    import shutil

    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    if os.path.isdir(source):
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copyfile(source, target)
