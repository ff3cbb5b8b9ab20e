"""Cache keys for steps.

A step's key hashes what determines its outputs: the source of its function
(and of its fallback and `when` predicate), its declared outputs and foreach
parameter, and the value of every argument it is called with (its inputs and
its bound context values and defaults).  Values that are plain JSON (str,
int, float, bool, None, lists and str-keyed dicts of those) hash as sorted
JSON, so the key does not depend on dict order or the hash seed; anything
else hashes as its pickle.  A value that cannot be pickled means no key: the
step simply runs, uncached.

Module-level helpers the step calls are not part of the key: changing a
helper does not invalidate the cache (delete `<store>/cache/` to force it).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import marshal
import pickle
from typing import Any, Callable, Mapping

KEY_VERSION = b"pipec-cache-1"


def source_of(fn: Callable | None) -> bytes:
    """The source text of `fn`; its code object's bytes when the source is
    not available (functions made by exec, in a REPL...)."""
    if fn is None:
        return b"-"
    try:
        return inspect.getsource(fn).encode("utf-8")
    except (OSError, TypeError):
        pass
    code = getattr(fn, "__code__", None)
    if code is not None:
        return marshal.dumps(code)
    return repr(type(fn).__qualname__).encode("utf-8")


def _is_plain(value: Any) -> bool:
    if value is None or type(value) in (str, int, float, bool):
        return True
    if type(value) is list:
        return all(_is_plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _is_plain(v) for k, v in value.items())
    return False


def value_digest(value: Any) -> bytes:
    """A stable digest of one value; raises when it cannot be pickled."""
    if _is_plain(value):
        data = b"json:" + json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")
    else:
        data = b"pickle:" + pickle.dumps(value, protocol=4)
    return hashlib.sha256(data).digest()


def cache_key(step: Any, arguments: Mapping[str, Any]) -> str | None:
    """The cache key of `step` (a `pipec.language.Step`) called with
    `arguments` (parameter name → value), or None when an argument cannot be
    hashed."""
    h = hashlib.sha256(KEY_VERSION)
    for part in (source_of(step.fn), source_of(step.fallback), source_of(step.when)):
        h.update(hashlib.sha256(part).digest())
    h.update(json.dumps([list(step.outputs), step.foreach]).encode("utf-8"))
    try:
        for name in sorted(arguments):
            h.update(name.encode("utf-8") + b"\0" + value_digest(arguments[name]))
    except Exception:  # unpicklable (locks, generators, lambdas...): no caching
        return None
    return h.hexdigest()
