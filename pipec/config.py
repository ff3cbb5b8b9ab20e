"""Where `pipec` gets its settings, besides the command line.

Three sources, all turned into data here and validated with located
diagnostics (PC502 for `--set`, PC503 for files); nothing here raises for a
mistake in the input.

`--set KEY=VALUE`
    VALUE is a YAML scalar or flow collection, read with a safe loader:
    `0.9` is a float, `3` an int, `true` a bool, `abc` a str, `[a, b]` a
    list, `{a: 1}` a dict, `null` None.  Dates are not special (`2024-01-01`
    stays a str).  When the context default is a str, the text is taken as
    written (`--set region=123` gives "123"); an int where a float is
    expected becomes a float.

`--config FILE.yaml`
    A YAML mapping.  Top-level keys are context overrides, like `--set`.  The
    one reserved key, `pipec:`, holds settings with the same shape as
    `[tool.pipec]`, restricted to `unsupported` and the per-target tables::

        threshold: 0.9
        tags: [nightly]
        pipec:
          unsupported: warn
          kubeflow: {base_image: "python:3.12-slim"}

`[tool.pipec]` in the nearest `pyproject.toml` (walking up from the cwd)
    What `pipec compile` does without FILE arguments, and defaults otherwise::

        [tool.pipec]
        modules = ["pipelines/*.py", "jobs/etl.py:etl"]  # globs, FILE[:PIPELINE]
        targets = ["airflow", "kubeflow"]               # or target = "airflow"
        out_dir = "build"        # default output folder (per target: build/<target>
                                 # when there are several targets)
        output = { airflow = "dags", kubeflow = "kfp" } # per-target folders
        unsupported = "error"    # or "warn"

        [tool.pipec.kubeflow]    # -> CompileOptions.settings of that target
        base_image = "python:3.12-slim"

    Paths are relative to the folder of that pyproject.toml.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipec.diagnostics import Diagnostics, did_you_mean
from pipec.ir import Span

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

COMMAND_LINE = "<command line>"
RESERVED_KEY = "pipec"
UNSUPPORTED_MODES = ("error", "warn")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Override:
    """One context override: `raw` is the text as written on the command line
    (None when it came typed from a file); `where` names its origin for
    messages ("--set", "config.yaml")."""

    key: str
    value: Any
    where: str
    span: Span
    raw: str | None = None


@dataclass
class Settings:
    """`unsupported` and per-target settings, from a file (None / empty when
    the file does not say)."""

    unsupported: str | None = None
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def merged(self, other: "Settings") -> "Settings":
        """`other` wins where it says something."""
        targets = {name: dict(values) for name, values in self.targets.items()}
        for name, values in other.targets.items():
            targets.setdefault(name, {}).update(values)
        return Settings(other.unsupported or self.unsupported, targets)


@dataclass
class ProjectConfig:
    """`[tool.pipec]` of a pyproject.toml (`path`); paths are relative to
    `path.parent`."""

    path: Path
    modules: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    out_dir: str | None = None
    output: dict[str, str] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def output_dir(self, target: str) -> Path | None:
        """Where files for `target` go, or None when the config does not say."""
        if target in self.output:
            return self.folder / self.output[target]
        if self.out_dir is None:
            return None
        base = self.folder / self.out_dir
        return base / target if len(self.targets) > 1 else base


# --------------------------------------------------------------------------
# YAML values


_LOADER: Any = None


def _yaml() -> tuple[Any, Any]:
    """PyYAML and the safe loader without the timestamp resolver (dates stay
    strings); imported on first use, as most runs read no YAML."""
    global _LOADER
    import yaml

    if _LOADER is None:

        class _Loader(yaml.SafeLoader):
            """The safe loader without the timestamp resolver, and without
            aliases: a value is a literal, and an alias can make it refer
            to itself (`&a [*a]`) or grow exponentially."""

            def compose_node(self, parent, index):  # type: ignore[override]
                if self.check_event(yaml.AliasEvent):
                    event = self.peek_event()
                    raise yaml.composer.ComposerError(
                        None,
                        None,
                        "YAML aliases (*name) are not accepted in values",
                        event.start_mark,
                    )
                return super().compose_node(parent, index)

        _Loader.yaml_implicit_resolvers = {
            first: [
                (tag, regexp)
                for tag, regexp in resolvers
                if tag != "tag:yaml.org,2002:timestamp"
            ]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }
        _LOADER = _Loader
    return yaml, _LOADER


def is_literal(value: Any) -> bool:
    """str, int, finite float, bool, None, and lists / dicts (str keys) of
    those (NaN and infinities are no JSON, and `float('nan')` is no literal
    in source either)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if value is None or isinstance(value, (str, int, bool)):
        return True
    if isinstance(value, list):
        return all(is_literal(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_literal(v) for k, v in value.items())
    return False


def parse_set(text: str, diagnostics: Diagnostics) -> Override | None:
    """`KEY=VALUE` from the command line, or None after reporting PC502."""
    span = Span(COMMAND_LINE, 0, 0)
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY_RE.match(key):
        diagnostics.add(
            "PC502",
            span,
            text=text,
            detail="expected KEY=VALUE with KEY a context key name",
        )
        return None
    yaml, loader = _yaml()
    try:
        value = yaml.load(raw, Loader=loader) if raw.strip() else ""
    except yaml.YAMLError as exc:
        detail = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        diagnostics.add(
            "PC502", span, text=text, detail=f"the value is not valid YAML ({detail})"
        )
        return None
    if not is_literal(value):
        diagnostics.add(
            "PC502",
            span,
            text=text,
            detail="the value is not a str, finite number, bool, null, list or dict",
        )
        return None
    return Override(key, value, "--set", span, raw=raw)


def parse_sets(texts: list[str], diagnostics: Diagnostics) -> list[Override]:
    overrides = [parse_set(text, diagnostics) for text in texts]
    return [o for o in overrides if o is not None]


# --------------------------------------------------------------------------
# --config FILE.yaml


def load_config_file(
    path: Path, display: str, diagnostics: Diagnostics
) -> tuple[list[Override], Settings]:
    """Context overrides and settings from a YAML file; `display` is the path
    as printed in diagnostics."""
    span = Span(display, 0, 0)
    yaml, loader = _yaml()
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=loader)
    except OSError as exc:
        diagnostics.add(
            "PC503", span, detail=f"cannot read '{display}': {exc.strerror or exc}"
        )
        return [], Settings()
    except UnicodeDecodeError:
        diagnostics.add("PC503", span, detail=f"'{display}' is not UTF-8 text")
        return [], Settings()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            span = Span(display, mark.line + 1, mark.column + 1)
        diagnostics.add(
            "PC503", span, detail=getattr(exc, "problem", None) or "not valid YAML"
        )
        return [], Settings()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        diagnostics.add(
            "PC503",
            span,
            detail=f"'{display}' must hold a mapping of context keys to values",
        )
        return [], Settings()
    overrides: list[Override] = []
    settings = Settings()
    for key, value in data.items():
        if key == RESERVED_KEY:
            settings = _settings(
                value,
                f"'{RESERVED_KEY}:' in {display}",
                _key_span(text, (RESERVED_KEY,), display) or span,
                diagnostics,
                ("unsupported",),
                lambda keys: _key_span(text, (RESERVED_KEY, *keys), display),
            )
        elif not isinstance(key, str) or not _KEY_RE.match(key):
            diagnostics.add(
                "PC503",
                span,
                detail=f"key {key!r} in '{display}' is not a context key name",
            )
        elif not is_literal(value):
            diagnostics.add(
                "PC503",
                span,
                detail=f"value of '{key}' in '{display}' is not a literal",
            )
        else:
            overrides.append(Override(key, value, display, span))
    return overrides, settings


def _key_span(text: str, keys: tuple, display: str) -> Span | None:
    """Where the mapping key at path `keys` is in YAML `text` (None when
    it cannot be found)."""
    yaml, loader = _yaml()
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.YAMLError:
        return None
    mark = None
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(key):
                mark, node = key_node.start_mark, value_node
                break
        else:
            return None
    return Span(display, mark.line + 1, mark.column + 1) if mark else None


def _settings(
    data: Any,
    where: str,
    span: Span,
    diagnostics: Diagnostics,
    keys: tuple[str, ...],
    locate=None,
) -> Settings:
    """`unsupported` and per-target tables from a mapping; other keys in
    `keys` are allowed and ignored here (the caller reads them)."""
    from pipec.backends.base import get, targets

    settings = Settings()
    if not isinstance(data, dict):
        diagnostics.add("PC503", span, detail=f"{where} must be a table")
        return settings
    for key, value in data.items():
        if key == "unsupported":
            if value not in UNSUPPORTED_MODES:
                diagnostics.add(
                    "PC503",
                    span,
                    detail=f"unsupported in {where} must be 'error' or 'warn', not {value!r}",
                )
            else:
                settings.unsupported = value
        elif key in keys:
            continue
        elif isinstance(key, str) and get(key) is not None:
            if not isinstance(value, dict):
                diagnostics.add(
                    "PC503",
                    span,
                    detail=f"settings for target '{key}' in {where} must be a table",
                )
            else:
                backend = get(key)
                checked = _target_settings(
                    backend, value, where, span, diagnostics,
                    (lambda inner, key=key: locate((key, inner))) if locate else None,
                )
                settings.targets.setdefault(backend.name, {}).update(checked)
        else:
            hint = did_you_mean(str(key), list(keys) + ["unsupported"] + targets())
            diagnostics.add(
                "PC503", span, detail=f"unknown key '{key}' in {where}{hint}"
            )
    return settings


def _target_settings(
    backend: Any, value: dict, where: str, span: Span, diagnostics: Diagnostics,
    locate=None,
) -> dict:
    """The settings of `backend` in `value` that it declares (`SETTINGS`:
    key -> type), each of its type; PC503 for the others."""
    declared = getattr(backend, "SETTINGS", None)
    if declared is None:
        return dict(value)
    kept = {}
    for key, item in value.items():
        at = (locate(key) if locate else None) or span
        expected = declared.get(key)
        if expected is None:
            hint = did_you_mean(str(key), list(declared))
            known = ", ".join(declared) or "none"
            diagnostics.add(
                "PC503",
                at,
                detail=f"unknown setting {key!r} for target '{backend.name}' in {where}"
                f"{hint or f'; it reads: {known}'}",
            )
        elif not isinstance(item, expected) or isinstance(item, bool) and expected is int:
            diagnostics.add(
                "PC503",
                at,
                detail=f"setting '{key}' for target '{backend.name}' in {where} must "
                f"be {'a string' if expected is str else 'an integer'}, not {item!r}",
            )
        else:
            kept[key] = item
    return kept


# --------------------------------------------------------------------------
# [tool.pipec]

_PROJECT_KEYS = ("modules", "targets", "target", "out_dir", "output")


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in `start` or a folder above it."""
    folder = start.resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if path.is_file():
            return path
    return None


def load_project(start: Path, diagnostics: Diagnostics) -> ProjectConfig | None:
    """`[tool.pipec]` of the nearest pyproject.toml, or None when there is no
    pyproject.toml or it has no such table."""
    path = find_pyproject(start)
    if path is None:
        return None
    display = _display(path, start)
    span = Span(display, 0, 0)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        diagnostics.add("PC503", span, detail=f"cannot read '{display}': {exc}")
        return None
    table = data.get("tool", {}).get("pipec")
    if table is None:
        return None
    where = f"[tool.pipec] of '{display}'"
    config = ProjectConfig(
        path, settings=_settings(table, where, span, diagnostics, _PROJECT_KEYS)
    )
    if not isinstance(table, dict):
        return config
    config.modules = _str_list(
        table.get("modules", []), "modules", where, span, diagnostics
    )
    targets = table.get("targets", [table["target"]] if "target" in table else [])
    config.targets = _str_list(targets, "targets", where, span, diagnostics)
    if "out_dir" in table:
        if isinstance(table["out_dir"], str):
            config.out_dir = table["out_dir"]
        else:
            diagnostics.add(
                "PC503", span, detail=f"out_dir in {where} must be a string"
            )
    config.output = _output_table(table.get("output", {}), where, span, diagnostics)
    return config


def _str_list(
    value: Any, key: str, where: str, span: Span, diagnostics: Diagnostics
) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        diagnostics.add(
            "PC503", span, detail=f"{key} in {where} must be a list of strings"
        )
        return []
    return list(value)


def _output_table(
    value: Any, where: str, span: Span, diagnostics: Diagnostics
) -> dict[str, str]:
    from pipec.backends.base import get, targets

    if not isinstance(value, dict):
        diagnostics.add(
            "PC503",
            span,
            detail=f"output in {where} must be a table of target = folder",
        )
        return {}
    output: dict[str, str] = {}
    for target, folder in value.items():
        backend = get(target)
        if backend is None:
            hint = did_you_mean(target, targets())
            diagnostics.add(
                "PC503",
                span,
                detail=f"output in {where} names unknown target '{target}'{hint}",
            )
        elif not isinstance(folder, str):
            diagnostics.add(
                "PC503",
                span,
                detail=f"output.{target} in {where} must be a folder name",
            )
        else:
            output[backend.name] = folder
    return output


def _display(path: Path, start: Path) -> str:
    try:
        return path.resolve().relative_to(start.resolve()).as_posix()
    except ValueError:
        import os

        return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
