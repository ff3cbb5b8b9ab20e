"""The options of @step, @retry and Pipeline, as data: their names and
defaults, and what each accepts.

An `OptionSpec` pairs a check on the (statically evaluated, or live) value
with the words used in the PC202 / PC304 message.  The runtime library
(`pipec.language`) and the frontend both read this module, so they agree by
construction; it imports nothing of pipec.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

# Options of @step, with their defaults.
STEP_OPTIONS: dict[str, Any] = {
    "name": None,
    "inputs": None,
    "outputs": (),
    "retries": 0,
    "retry_delay": 1.0,
    "retry_backoff": 1.0,
    "timeout": None,
    "cache": None,
    "image": None,
    "packages": (),
    "cpu": None,
    "memory": None,
    "gpu": None,
    "foreach": None,
    "after": (),
    "trigger": "all_succeeded",
    "final": False,
    "max_parallel": None,
    "cache_ttl": None,
    "foreach_key": None,
    "params": None,
    "files": None,
    "metrics": (),
}
TRIGGERS = ("all_succeeded", "all_done", "none_failed", "one_succeeded")
RETRY_OPTIONS: dict[str, Any] = {"max_attempts": 3, "delay": 1.0, "backoff": 2.0}
PIPELINE_OPTIONS: dict[str, Any] = {
    "context": None,
    "schedule": None,
    "description": None,
    "owner": None,
    "tags": (),
    "enable_cache": True,
    "version": None,
    "timezone": None,
    "max_parallel": None,
}
SCHEDULE_ALIASES = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")



@dataclass(frozen=True)
class OptionSpec:
    expected: str
    check: Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# The longest wait pipec writes: every target turns a delay into a duration
# (Airflow a timedelta, KFP an integer of seconds), and a float too large
# for one (1e309 is infinity) cannot be one.  About 31 years.
MAX_SECONDS = 1e9


def _is_seconds(value: Any) -> bool:
    return _is_number(value) and 0 <= value <= MAX_SECONDS


def _is_factor(value: Any) -> bool:
    return _is_number(value) and 1 <= value <= MAX_SECONDS


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_names(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, str) and v for v in value
    )


def is_identifier(value: Any) -> bool:
    """Names that backends write into generated code unquoted, written as
    Python reads them (NFKC-normalised: "ｘ" is "x" to Python, so it could
    not name anything distinct from "x")."""
    return (
        isinstance(value, str)
        and value.isidentifier()
        and not keyword.iskeyword(value)
        and (value.isascii() or unicodedata.normalize("NFKC", value) == value)
    )


def _is_identifiers(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(is_identifier(v) for v in value)


def _is_wiring(value: Any) -> bool:
    """`inputs={"df": "raw_data"}`: parameter -> output name."""
    return isinstance(value, dict) and all(
        is_identifier(k) and is_identifier(v) for k, v in value.items()
    )


def is_json_value(value: Any) -> bool:
    """A literal every target carries exactly: str, int, finite float, bool,
    None, and lists and string-keyed dicts of those (no tuple: JSON would
    hand it back as a list)."""
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    if type(value) is list:
        return all(is_json_value(v) for v in value)
    if type(value) is dict:
        return all(isinstance(k, str) and is_json_value(v) for k, v in value.items())
    return False


def _is_files(value: Any) -> bool:
    """`files=["model"]` or `files={"model": "Model"}` (the type is checked
    where the step is read, with its own message)."""
    if isinstance(value, dict):
        return all(is_identifier(k) and isinstance(t, str) for k, t in value.items())
    return _is_identifiers(value)


def _is_constants(value: Any) -> bool:
    """`params={"b": 3}`: parameter -> literal."""
    return isinstance(value, dict) and all(
        is_identifier(k) and is_json_value(v) for k, v in value.items()
    )


def is_pipeline_name(value: Any) -> bool:
    """Pipeline names become file names and DAG / flow ids."""
    return (
        isinstance(value, str)
        and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", value) is not None
    )


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


STEP_SPECS: dict[str, OptionSpec] = {
    "name": OptionSpec("a Python identifier", is_identifier),
    "inputs": OptionSpec(
        "a list of Python identifiers, or a dict {parameter: output name} of them",
        _optional(lambda v: _is_identifiers(v) or _is_wiring(v)),
    ),
    "outputs": OptionSpec("a list of Python identifiers", _optional(_is_identifiers)),
    "retries": OptionSpec("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "retry_delay": OptionSpec("a number of seconds from 0 to 1e9", _is_seconds),
    "retry_backoff": OptionSpec("a number from 1 to 1e9", _is_factor),
    "timeout": OptionSpec(
        "a number of seconds > 0 or None", _optional(lambda v: _is_number(v) and v > 0)
    ),
    "cache": OptionSpec(
        "True, False or None", _optional(lambda v: isinstance(v, bool))
    ),
    "image": OptionSpec("a string or None", _optional(_is_str)),
    "packages": OptionSpec("a list of requirement strings", _optional(_is_names)),
    "cpu": OptionSpec(
        "a string or a number > 0",
        _optional(lambda v: _is_str(v) or (_is_number(v) and v > 0)),
    ),
    "memory": OptionSpec("a string or None", _optional(_is_str)),
    "gpu": OptionSpec(
        "an integer >= 0 or None", _optional(lambda v: _is_int(v) and v >= 0)
    ),
    # Several names (nested fan-out) pass here and are reported as
    # unsupported where the step is read.
    "foreach": OptionSpec(
        "a parameter name",
        _optional(lambda v: is_identifier(v) or (_is_identifiers(v) and len(v) > 1)),
    ),
    "foreach_key": OptionSpec("a string (a key of each element)", _optional(_is_str)),
    "params": OptionSpec(
        "a dict {parameter: literal} of JSON values (str, int, float, bool,"
        " None, lists, dicts with string keys)",
        _optional(_is_constants),
    ),
    "after": OptionSpec("a list of step names", _optional(_is_identifiers)),
    "trigger": OptionSpec(
        "one of " + ", ".join(repr(t) for t in TRIGGERS), lambda v: v in TRIGGERS
    ),
    "final": OptionSpec("True or False", lambda v: isinstance(v, bool)),
    "max_parallel": OptionSpec("an integer >= 1 or None", _optional(lambda v: _is_int(v) and v >= 1)),
    "cache_ttl": OptionSpec(
        "a number of seconds > 0 or None", _optional(lambda v: _is_number(v) and v > 0)
    ),
    "files": OptionSpec(
        "a list of output names, or a dict {output name: artifact type}", _optional(_is_files)
    ),
    "metrics": OptionSpec("a list of output names", _optional(_is_identifiers)),
}

# Options only `pipeline.add_step(fn, ...)` takes; with STEP_SPECS, what
# add_step accepts (every @step option overrides the decorator's there).
ADD_STEP_ONLY_SPECS: dict[str, OptionSpec] = {}
ADD_STEP_SPECS: dict[str, OptionSpec] = {**STEP_SPECS, **ADD_STEP_ONLY_SPECS}

RETRY_SPECS: dict[str, OptionSpec] = {
    "max_attempts": OptionSpec("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "delay": OptionSpec("a number of seconds from 0 to 1e9", _is_seconds),
    "backoff": OptionSpec("a number from 1 to 1e9", _is_factor),
}

PIPELINE_SPECS: dict[str, OptionSpec] = {
    "name": OptionSpec("a name of letters, digits, '_', '-' and '.'", is_pipeline_name),
    "schedule": OptionSpec("a cron string or None", _optional(_is_str)),
    "description": OptionSpec("a string or None", _optional(_is_str)),
    "owner": OptionSpec("a string or None", _optional(_is_str)),
    "tags": OptionSpec("a list of strings", _optional(_is_names)),
    "enable_cache": OptionSpec("True or False", lambda v: isinstance(v, bool)),
    "version": OptionSpec(
        "a string or None", _optional(lambda v: _is_str(v) or _is_number(v))
    ),
    "timezone": OptionSpec("an IANA time zone name (e.g. 'Europe/Paris') or None", _optional(_is_str)),
    "max_parallel": OptionSpec("an integer >= 1 or None", _optional(lambda v: _is_int(v) and v >= 1)),
}

# Options whose value is an expression, not a literal: handled by the caller.
PIPELINE_EXPRESSION_OPTIONS = ("context",)

assert set(STEP_SPECS) == set(STEP_OPTIONS)
assert set(RETRY_SPECS) == set(RETRY_OPTIONS)
assert set(PIPELINE_SPECS) | set(PIPELINE_EXPRESSION_OPTIONS) == set(
    PIPELINE_OPTIONS
) | {"name"}
