"""pipec's task runtime: the few helpers every generated task uses.

Backends embed this file's code (the definitions they use: see
`backends/runtime_code.py`) into the files they generate, so the scheduler
and the workers need no pipec; the local runner imports it, so every target
and the local run share one definition of how a step's return value becomes
its outputs, and of when a value comes back from JSON exactly
(`_pipec_same`), and of the envelope a value travels in between tasks
(`_pipec_dumps` / `_pipec_loads`: JSON when JSON gives the value back
exactly, else a pickle).  Standard library only, black-formatted, one
imported name per import statement, no top-level side effects.

Objects of classes defined in carried code cross tasks: `_pipec_load`
remembers the classes each step's code defines, and `_pipec_pickle` writes a
reference to such a class with the source that defines it, so the reading
task finds the class in its own carried code (the same definition) or loads
the producer's code to get it (`_PipecUnpickler`).
"""

import ast
import contextvars
import functools
import inspect
import io
import json
import linecache
import pickle
import sys
import types
import weakref


def _pipec_load(source, filename, module_name):
    """Execute a step's embedded code as a fresh module; return the module.

    The code is registered with linecache so tracebacks show its lines."""
    module = types.ModuleType(module_name)
    module.__file__ = filename
    lines = source.splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    # In sys.modules as an imported module is, unless that would hide a
    # module not loaded here (dataclasses and typing look classes' modules
    # up there); compiled with the code's own __future__ imports only.
    previous = sys.modules.get(module_name)
    if previous is None or hasattr(previous, "__pipec_source__"):
        sys.modules[module_name] = module
    exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)
    _pipec_register(module, source)
    _PIPEC_READER.set(module)
    return module


# Carried code loaded in this process: each class it defines -> its source;
# the modules (by id, newest last); those loaded to read values, by source.
_PIPEC_CLASSES = weakref.WeakKeyDictionary()
_PIPEC_MODULES = weakref.WeakValueDictionary()
_PIPEC_FOREIGN = {}
# The code the task running in this context loaded last: values it reads take
# their classes from there first (other tasks may load copies meanwhile).
_PIPEC_READER = contextvars.ContextVar("_PIPEC_READER", default=None)


def _pipec_register(module, source):
    """Remember the classes `module` defines.  One defined exactly as a class
    loaded earlier to read a value is that class (`isinstance` agrees)."""
    todo = []
    for name, cls in list(vars(module).items()):
        if not isinstance(cls, type) or cls.__module__ != module.__name__:
            continue
        same = None
        if _PIPEC_FOREIGN:
            same = _pipec_find(cls.__qualname__, source, _PIPEC_FOREIGN.values())
        if same is None:
            todo.append(cls)
        else:
            setattr(module, name, same)
    while todo:
        cls = todo.pop()
        _PIPEC_CLASSES[cls] = source
        for value in vars(cls).values():
            if isinstance(value, type) and value.__qualname__.startswith(
                cls.__qualname__ + "."
            ):
                todo.append(value)
    module.__pipec_source__ = source
    _PIPEC_MODULES[id(module)] = module


@functools.lru_cache(maxsize=None)
def _pipec_class_text(source, name):
    """The text of top-level class `name` of `source`, decorators included."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return source.splitlines()[first - 1 : node.end_lineno]
    return None


def _pipec_find(qualname, source, modules):
    """Class `qualname` of the newest of `modules` whose source defines it as
    `source` does, or None."""
    text = _pipec_class_text(source, qualname.split(".")[0])
    for module in reversed(list(modules)):
        if module is None:  # a module gone since it was listed
            continue
        if _pipec_class_text(module.__pipec_source__, qualname.split(".")[0]) == text:
            found = module
            for part in qualname.split("."):
                found = getattr(found, part, None)
            if isinstance(found, type):
                return found
    return None


class _PipecPickler(pickle.Pickler):
    """Writes a class of carried code as (module, qualname) for the resolver,
    and collects the source defining it in `sources`."""

    def reducer_override(self, obj):
        if isinstance(obj, type) and obj in _PIPEC_CLASSES:
            self.sources[obj.__module__ + ":" + obj.__qualname__] = _PIPEC_CLASSES[obj]
            return sys.modules["_pipec_classes"].find, (
                obj.__module__,
                obj.__qualname__,
            )
        return NotImplemented


class _PipecUnpickler(pickle.Unpickler):
    """Finds a class of carried code in the code loaded in this process, else
    loads the producer's code (once per process) and takes it from there."""

    def find_class(self, module, name):
        if (module, name) == ("_pipec_classes", "find"):
            return self.carried
        return super().find_class(module, name)

    def carried(self, module_name, qualname):
        source = self.sources[module_name + ":" + qualname]
        # `valuerefs` lists the modules at once (other threads may load more).
        loaded = [ref() for ref in _PIPEC_MODULES.valuerefs()]
        found = _pipec_find(qualname, source, loaded + [_PIPEC_READER.get()])
        if found is None:
            if source not in _PIPEC_FOREIGN:
                filename = "<pipec carried " + module_name + ">"
                _PIPEC_FOREIGN[source] = _pipec_load(source, filename, module_name)
            found = _pipec_find(qualname, source, [_PIPEC_FOREIGN[source]])
        return found


def _pipec_pickle(value):
    """`value` pickled; with the sources defining the classes of carried code
    that it uses, when it uses some."""
    if not _PIPEC_CLASSES:
        return pickle.dumps(value, protocol=4)
    # What a pickle names for a class of carried code (the unpickler
    # replaces it): one per process, whichever copy of this code made it.
    if "_pipec_classes" not in sys.modules:

        def find(module, qualname):
            raise pickle.UnpicklingError("read carried classes with _pipec_unpickle")

        find.__module__, find.__qualname__ = "_pipec_classes", "find"
        sys.modules["_pipec_classes"] = types.SimpleNamespace(find=find)
    buffer = io.BytesIO()
    pickler = _PipecPickler(buffer, protocol=4)
    pickler.sources = {}
    pickler.dump(value)
    if not pickler.sources:
        return buffer.getvalue()
    return pickle.dumps(("__pipec_envelope__", pickler.sources, buffer.getvalue()))


def _pipec_unpickle(data):
    """The value `_pipec_pickle` wrote."""
    value = pickle.loads(data)
    if type(value) is tuple and len(value) == 3 and value[0] == "__pipec_envelope__":
        unpickler = _PipecUnpickler(io.BytesIO(value[2]))
        unpickler.sources = value[1]
        return unpickler.load()
    return value


def _pipec_json(value):
    """`value` as JSON text when it comes back from JSON exactly, else None."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return text if _pipec_same(json.loads(text), value) else None


def _pipec_dumps(value):
    """The envelope of a value handed between tasks, as bytes: JSON text
    when JSON gives the value back exactly (same values, types and dict key
    order), else `_pipec_pickle` (which starts with 0x80, as JSON never
    does).  An unpicklable value (a generator, a lock) raises here."""
    text = _pipec_json(value)
    if text is not None:
        return text.encode("utf-8")
    return _pipec_pickle(value)


def _pipec_loads(data):
    """The value of an envelope `_pipec_dumps` wrote: a fresh copy."""
    if data[:1] == b"\x80":
        return _pipec_unpickle(data)
    return json.loads(data.decode("utf-8"))


def _pipec_call(fn, kwargs):
    """`fn(**kwargs)`, its positional-only parameters (`def f(x, /)`) passed
    by position: an unbound one before a bound one gets its own default."""
    kwargs = dict(kwargs)
    code = getattr(fn, "__code__", None)
    if code is not None and not code.co_posonlyargcount:
        return fn(**kwargs)  # the common case, without inspect's cost
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a callable without a signature
        return fn(**kwargs)
    args, defaults = [], []
    for param in params:
        if param.kind != param.POSITIONAL_ONLY:
            break
        if param.name in kwargs:
            args += defaults + [kwargs.pop(param.name)]
            defaults = []
        elif param.default is not param.empty:
            defaults.append(param.default)
        else:
            break
    return fn(*args, **kwargs)


def _pipec_outputs(step, names, value):
    """The outputs of step `step`, declared as `names`, from its return value.

    None declared: the value is ignored.  One: the value itself.  Several: a
    tuple or list of that length in that order, or a dict with exactly those
    keys."""
    names = list(names)
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: value}
    if isinstance(value, dict):
        if sorted(value) != sorted(names):
            raise ValueError(
                f"step {step!r} returned a dict with keys {sorted(value)!r}; "
                f"expected exactly {sorted(names)!r}"
            )
        return {name: value[name] for name in names}
    if isinstance(value, (tuple, list)) and len(value) == len(names):
        return dict(zip(names, value))
    if isinstance(value, (tuple, list)):
        got = f"a {type(value).__name__} of length {len(value)}"
    else:
        got = type(value).__name__
    raise ValueError(
        f"step {step!r} declares {len(names)} outputs {names!r}; it must return "
        f"a tuple or list of that length or a dict with those keys, not {got}"
    )


def _pipec_typed(step, values, files, metrics):
    """The outputs `values` of step `step` as they travel: each file output
    (`files`: its names) packed (`_pipec_pack`), each metrics output
    (`metrics`) checked to be a dict of str -> int / float."""
    if not files and not metrics:
        return values
    values = dict(values)
    for name in metrics:
        value = values[name]
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and type(v) in (int, float) for k, v in value.items()
        ):
            raise TypeError(
                f"output {name!r} of step {step!r} holds metrics: it must be a dict "
                f"of str -> int or float, not {value!r:.200}"
            )
    for name in files:
        values[name] = _pipec_pack(step, name, values[name])
    return values


def _pipec_file_path(step, name, value):
    """The path a file output's value names: a str or os.PathLike naming an
    existing file or directory, else the step fails."""
    import os

    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"output {name!r} of step {step!r} is a file output: the step must "
            f"return the path of a file or directory (a str or os.PathLike), "
            f"not a {type(value).__name__}"
        )
    path = os.fsdecode(os.fspath(value))
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"output {name!r} of step {step!r} is a file output, but the path it "
            f"returned, {path!r}, names no file or directory (the working "
            f"directory is {os.getcwd()!r})"
        )
    return os.path.abspath(path)


def _pipec_pack(step, name, value):
    """A file output as a value every target carries: ("__pipec_file__",
    its base name, a tar of the file or directory), the same bytes for the
    same contents (entries sorted, no times or owners), so caches keyed on
    inputs see the contents."""
    import os
    import tarfile

    path = _pipec_file_path(step, name, value)
    base = os.path.basename(path.rstrip(os.sep)) or name

    def plain(info):
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(path, arcname=base, filter=plain)
    return ("__pipec_file__", base, buffer.getvalue())


def _pipec_unpack(value, folder=None):
    """What a step gets for `value`: for a packed file output, the path of a
    copy (the same base name, a directory stays one) in `folder` (default: a
    fresh temporary folder); any other value as it is."""
    import os
    import tarfile
    import tempfile

    if type(value) is not tuple or len(value) != 3 or value[0] != "__pipec_file__":
        return value
    folder = folder or tempfile.mkdtemp(prefix="pipec-file-")
    with tarfile.open(fileobj=io.BytesIO(value[2])) as tar:
        if hasattr(tarfile, "data_filter"):  # no path outside `folder`
            tar.extractall(folder, filter="data")
        else:
            tar.extractall(folder)
    return os.path.join(folder, value[1])


def _pipec_fallback_args(function, kwargs):
    """The arguments a fallback is called with: the same as the step
    function's, `kwargs` and the function's own defaults (left to its
    signature when the step is called), in its signature order (read from
    its code object, as this file imports no `inspect`)."""
    code = getattr(function, "__code__", None)
    if code is None:
        return dict(kwargs)
    positional = code.co_varnames[: code.co_argcount]
    keyword = code.co_varnames[
        code.co_argcount : code.co_argcount + code.co_kwonlyargcount
    ]
    values = function.__defaults__ or ()
    defaults = dict(zip(positional[len(positional) - len(values) :], values))
    defaults.update(function.__kwdefaults__ or {})
    out = {}
    for name in positional + keyword:
        if name in kwargs:
            out[name] = kwargs[name]
        elif name in defaults:
            out[name] = defaults[name]
    return out


def _pipec_field(step, foreach, key, items):
    """The elements a foreach step with `foreach_key` gets: `key` of each
    element of `items`; an element that is no dict with that key fails the
    step, as a value that is no list does."""
    picked = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or key not in item:
            raise ValueError(
                f"foreach parameter {foreach!r} of step {step!r}: element {index} "
                f"is a {type(item).__name__} without key {key!r}"
            )
        picked.append(item[key])
    return picked


def _pipec_collect(step, names, results):
    """Outputs of a foreach step: each declared output becomes the list of
    the per-element results, in element order."""
    per_element = [_pipec_outputs(step, names, value) for value in results]
    return {name: [outputs[name] for outputs in per_element] for name in names}


def _pipec_blocked(statuses, trigger):
    """The status of a step whose upstream steps ended with `statuses`
    without running it, or None when it runs, by its trigger rule (the
    rules of Airflow's all_success, all_done, none_failed_min_one_success
    and one_success, decided once every upstream step has ended):

    - all_succeeded: upstream_failed when one failed (or could not run),
      else skipped when one was skipped (skips propagate);
    - all_done: always runs;
    - none_failed: upstream_failed when one failed (or could not run),
      else skipped when all were skipped, else runs;
    - one_succeeded: runs when one succeeded (or was cached), else skipped
      when all were skipped, else upstream_failed.

    A step without upstream steps always runs."""
    statuses = list(statuses)
    if not statuses or trigger == "all_done":
        return None
    failed = "failed" in statuses or "upstream_failed" in statuses
    all_skipped = all(status == "skipped" for status in statuses)
    if trigger == "one_succeeded":
        if any(s in ("succeeded", "cached") for s in statuses):
            return None
        return "skipped" if all_skipped else "upstream_failed"
    if failed:
        return "upstream_failed"
    if trigger == "none_failed":
        return "skipped" if all_skipped else None
    return "skipped" if "skipped" in statuses else None


def _pipec_same(a, b):
    """Equality that also compares types (1 != 1.0 != True, list != tuple)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_pipec_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_pipec_same(x, y) for x, y in zip(a, b))
    return a == b
