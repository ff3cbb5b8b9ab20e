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
reference to such a class together with the source that defines it, so the
reading task finds the class in its own carried code (the same definition)
or loads the producer's code to get it (`_PipecUnpickler`).
"""

import ast
import hashlib
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
    exec(compile(source, filename, "exec"), module.__dict__)
    _pipec_register(module, source)
    return module


# Classes defined by carried code loaded in this process -> its source.
_PIPEC_CLASSES = weakref.WeakKeyDictionary()
# Modules loaded by `_pipec_load`, newest last, to find classes in (weakly
# held: a task's module goes away with the task).
_PIPEC_MODULES = weakref.WeakValueDictionary()
# Producer code loaded to read values of its classes, by source digest.
_PIPEC_FOREIGN = {}
# The text of each top-level class definition, by (source digest, name).
_PIPEC_DEFINITIONS = {}
# The module the resolver of carried classes lives in (`_pipec_carried`).
_PIPEC_RESOLVER = "_pipec_carried_classes"
_PIPEC_ENVELOPE = "__pipec_envelope__"


def _pipec_register(module, source):
    """Remember the classes `module` (loaded from `source`) defines, nested
    ones included.  A top-level class defined exactly as one that was loaded
    earlier to read a value (the task read its inputs before loading its own
    code) is that class: the module's name is bound to it, so values and
    code agree on it (`isinstance`, `==`)."""
    name = module.__name__
    todo = []
    for attribute, value in list(vars(module).items()):
        if not isinstance(value, type) or value.__module__ != name:
            continue
        same = _pipec_same_class(source, value) if _PIPEC_FOREIGN else None
        if same is not None:
            setattr(module, attribute, same)
        else:
            todo.append(value)
    while todo:
        cls = todo.pop()
        if cls.__module__ == name and cls not in _PIPEC_CLASSES:
            _PIPEC_CLASSES[cls] = source
            todo.extend(v for v in vars(cls).values() if isinstance(v, type))
    module.__pipec_source__ = source
    _PIPEC_MODULES[id(module)] = module


def _pipec_same_class(source, cls):
    """The class loaded to read a value that is defined exactly as `cls`
    (defined in `source`), or None."""
    text = _pipec_definition(source, cls.__qualname__)
    for foreign in reversed(list(_PIPEC_FOREIGN.values())):
        other = getattr(foreign, cls.__qualname__, None)
        if isinstance(other, type) and other.__qualname__ == cls.__qualname__:
            if _pipec_definition(foreign.__pipec_source__, cls.__qualname__) == text:
                return other
    return None


def _pipec_carried(module_name, qualname):
    """The carried class `qualname` (a value read without its envelope's
    sources: the definition loaded in this process under `module_name`)."""
    for module in reversed(list(_PIPEC_MODULES.values())):
        if module.__name__ == module_name:
            return _pipec_attribute(module, qualname)
    raise pickle.UnpicklingError(f"class {qualname!r} of carried code is not loaded")


def _pipec_attribute(module, qualname):
    value = module
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def _pipec_resolver():
    """`_pipec_carried`, as registered once per process under a module name
    of its own, so that a pickle can name it (every embedded copy of this
    runtime in a process uses the first copy's function)."""
    module = sys.modules.get(_PIPEC_RESOLVER)
    if module is None:
        module = types.ModuleType(_PIPEC_RESOLVER)
        _pipec_carried.__module__ = _PIPEC_RESOLVER
        _pipec_carried.__qualname__ = "find"
        module.find = _pipec_carried
        sys.modules[_PIPEC_RESOLVER] = module
    return module.find


class _PipecPickler(pickle.Pickler):
    """A pickler that writes a class of carried code as a call of the
    resolver with (module name, qualified name), and collects the source of
    each such class in `sources`."""

    def __init__(self, file, sources):
        super().__init__(file, protocol=4)
        self.sources = sources
        self.resolver = _pipec_resolver()

    def reducer_override(self, obj):
        if isinstance(obj, type) and obj in _PIPEC_CLASSES:
            self.sources[obj.__module__ + ":" + obj.__qualname__] = _PIPEC_CLASSES[obj]
            return self.resolver, (obj.__module__, obj.__qualname__)
        return NotImplemented


class _PipecUnpickler(pickle.Unpickler):
    """Reads what `_PipecPickler` wrote: a carried class is taken from the
    carried code loaded in this process when one module there defines it
    with the same source text, else from the producer's code, loaded once
    per process."""

    def __init__(self, file, sources):
        super().__init__(file)
        self.sources = sources

    def find_class(self, module, name):
        if module == _PIPEC_RESOLVER and name == "find":
            return self.carried
        return super().find_class(module, name)

    def carried(self, module_name, qualname):
        source = self.sources[module_name + ":" + qualname]
        wanted = _pipec_definition(source, qualname)
        for module in reversed(list(_PIPEC_MODULES.values())):
            mine = getattr(module, "__pipec_source__", None)
            if mine is None or _pipec_definition(mine, qualname) != wanted:
                continue
            try:
                return _pipec_attribute(module, qualname)
            except AttributeError:
                continue
        key = hashlib.sha256(source.encode("utf-8")).hexdigest()
        module = _PIPEC_FOREIGN.get(key)
        if module is None:
            filename = "<pipec carried " + module_name + " " + key[:12] + ">"
            module = _PIPEC_FOREIGN[key] = _pipec_load(source, filename, module_name)
        return _pipec_attribute(module, qualname)


def _pipec_definition(source, qualname):
    """The source text of the top-level class that `qualname` is or is
    nested in, with its decorators (None when `source` has none)."""
    name = qualname.split(".")[0]
    key = (hashlib.sha256(source.encode("utf-8")).digest(), name)
    if key not in _PIPEC_DEFINITIONS:
        text = None
        for node in ast.parse(source).body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                lines = source.splitlines()
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                text = "\n".join(lines[first - 1 : node.end_lineno])
        _PIPEC_DEFINITIONS[key] = text
    return _PIPEC_DEFINITIONS[key]


def _pipec_pickle(value):
    """`value` pickled; when it holds objects of classes of carried code,
    wrapped with the sources that define those classes."""
    if not _PIPEC_CLASSES:
        return pickle.dumps(value, protocol=4)
    buffer = io.BytesIO()
    sources = {}
    _PipecPickler(buffer, sources).dump(value)
    if not sources:
        return buffer.getvalue()
    return pickle.dumps((_PIPEC_ENVELOPE, 1, sources, buffer.getvalue()), protocol=4)


def _pipec_unpickle(data):
    """The value `_pipec_pickle` wrote."""
    value = pickle.loads(data)
    if (
        type(value) is tuple
        and len(value) == 4
        and value[0] == _PIPEC_ENVELOPE
        and value[1] == 1
    ):
        return _PipecUnpickler(io.BytesIO(value[3]), value[2]).load()
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
    raise ValueError(
        f"step {step!r} declares {len(names)} outputs {names!r}; it must return "
        f"a tuple or list of that length or a dict with those keys, "
        f"not {type(value).__name__}"
    )


def _pipec_collect(step, names, results):
    """Outputs of a foreach step: each declared output becomes the list of
    the per-element results, in element order."""
    per_element = [_pipec_outputs(step, names, value) for value in results]
    return {name: [outputs[name] for outputs in per_element] for name in names}


def _pipec_same(a, b):
    """Equality that also compares types (1 != 1.0 != True, list != tuple)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_pipec_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_pipec_same(x, y) for x, y in zip(a, b))
    return a == b
