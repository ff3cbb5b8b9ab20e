"""pipec's task runtime: the few helpers every generated task uses.

Backends embed this file's code (the definitions they use: see
`backends/runtime_code.py`) into the files they generate, so the scheduler
and the workers need no pipec; the local runner imports it, so every target
and the local run share one definition of how a step's return value becomes
its outputs, and of when a value comes back from JSON exactly
(`_pipec_same`).  Standard library only, black-formatted, one imported name
per import statement, no top-level side effects.
"""

import linecache
import types


def _pipec_load(source, filename, module_name):
    """Execute a step's embedded code as a fresh module; return the module.

    The code is registered with linecache so tracebacks show its lines."""
    module = types.ModuleType(module_name)
    module.__file__ = filename
    lines = source.splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


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
