"""Type-exact comparison of two run outcomes, listing every difference.

`matrix.strict_equal` compares types at every level of lists, tuples and
dict values; the fuzzer also needs the elements of sets and the keys of
dicts compared by type (`{1}` is not `{1.0}`, `{1: x}` is not `{"1": x}`),
dict key order (a target that reorders keys changes what a step sees) and
the sign of zero, so it has its own `exact()`.
"""

from __future__ import annotations

from typing import Any

from matrix import Outcome, comparable


def exact(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            exact(ka, kb) and exact(a[ka], b[kb]) for ka, kb in zip(a, b)
        )
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(exact(x, y) for x, y in zip(a, b))
    if isinstance(a, (set, frozenset)):
        rest = list(b)
        for x in a:
            match = next((i for i, y in enumerate(rest) if exact(x, y)), None)
            if match is None:
                return False
            rest.pop(match)
        return not rest
    if hasattr(a, "__dataclass_fields__"):
        return all(exact(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return a == b


def show(value: Any, limit: int = 300) -> str:
    text = f"{value!r} ({type(value).__name__})"
    return text if len(text) <= limit else text[:limit] + "..."


def differences(expected: Outcome, actual: Outcome) -> list[str]:
    """Every way `actual` differs from the reference `expected`."""
    found = []
    if actual.success != expected.success:
        found.append(f"run success: local {expected.success}, target {actual.success}")
    unknown = {output for outputs in actual.not_run.values() for output in outputs}
    for step in sorted(set(expected.statuses) | set(actual.statuses)):
        if step in actual.not_run:
            continue
        want, got = expected.statuses.get(step, "missing"), actual.statuses.get(step, "missing")
        if want != got:
            found.append(f"step {step}: local {want}, target {got}")
    for name in sorted(set(expected.outputs) | set(actual.outputs)):
        if name in unknown:
            continue
        if name not in actual.outputs:
            found.append(f"output {name}: missing on the target; local {show(expected.outputs[name])}")
        elif name not in expected.outputs:
            found.append(f"output {name}: only on the target: {show(actual.outputs[name])}")
        elif not exact(comparable(expected.outputs[name]), comparable(actual.outputs[name])):
            found.append(
                f"output {name}: local {show(expected.outputs[name])}, target {show(actual.outputs[name])}"
            )
    return found
