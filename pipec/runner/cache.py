"""Step keys: the step cache's key, and what `--resume` compares.

A step's key hashes exactly what the step carries and is called with:

- pipec's version and the key format;
- the step's whole `CodeBlock`: the carried source (the step function, its
  fallback and `when` predicate, and the imports, constants, classes and
  helper functions they use), the names it defines, and the source of every
  helper module it imports;
- its declared outputs, its foreach parameter, its `when` bindings;
- every argument it is called with (inputs, context values, defaults), by
  parameter name in signature order, as the envelope the value travels in
  (`_pipec_dumps`: JSON keeping dict key order, else a pickle).

Editing any of it (a helper, a module constant, a helper module) gives
another key.  The arguments are hashed from the envelopes the runner hands
between steps anyway, so a key costs one hash of bytes already made.
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable

from pipec import ir
from pipec.version import __version__

KEY_VERSION = "pipec-step-key-2"


def code_digest(step: ir.Step) -> bytes:
    """What the step carries, as a digest (computed once per run and step)."""
    code = step.code
    carried = {
        "pipec": __version__,
        "key": KEY_VERSION,
        "source": code.source,
        "function": code.function,
        "fallback": code.fallback,
        "predicate": code.predicate,
        "helper_modules": list(code.helper_modules),
        "helper_sources": [list(pair) for pair in code.helper_sources],
        "outputs": list(step.outputs),
        "foreach": step.foreach,
        **({"foreach_key": step.foreach_key} if step.foreach_key is not None else {}),
        "when": [[b.param, repr(b.ref)] for b in step.when.params] if step.when else None,
    }
    text = json.dumps(carried, ensure_ascii=False, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8")).digest()


def step_key(code: bytes, arguments: Iterable[tuple[str, bytes]]) -> str:
    """The key of a step carrying `code` (its `code_digest`) called with
    `arguments`: (parameter name, envelope bytes), in signature order."""
    h = hashlib.sha256(code)
    for name, data in arguments:
        h.update(name.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()
