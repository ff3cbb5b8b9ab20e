"""Generated files are formatted for review (CONTRACT §5), for every target:

- every generated Python file (airflow, prefect) of every example and
  scenario is left unchanged by the pinned black (`black.format_str` with
  the default `black.Mode()`), also when the source is full of hostile
  values (hypothesis);
- every generated YAML file loads with a safe loader, has no duplicate key,
  survives a dump / load round trip with its key order, and comes out the
  same, byte for byte and key order included, when compiled again;
- the IR's JSON is in its canonical form (sorted keys, two-space indent).
"""

from __future__ import annotations

import json
from importlib import metadata

import black
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from hostile_gen import (
    TARGETS,
    compile_loaded,
    compile_outputs,
    kind,
    load_yaml,
    repo_loaded,
    repo_outputs_by_source,
    require_target,
)
from hostile_gen.strategies import ModuleSpec, hostile_modules, write_module

import yaml


def _pinned_black() -> str:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    from hostile_gen import REPO

    dev = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]["dev"]
    pins = [d.split("==", 1)[1] for d in dev if d.replace(" ", "").startswith("black==")]
    assert pins, "pipec's dev dependencies pin no black version"
    return pins[0]


def test_the_pinned_black_is_installed() -> None:
    assert metadata.version("black") == _pinned_black()


def _key_orders(data):
    """The data with every mapping turned into its list of (key, value) pairs,
    so that comparing two of them also compares key order."""
    if isinstance(data, dict):
        return [(k, _key_orders(v)) for k, v in data.items()]
    if isinstance(data, list):
        return [_key_orders(v) for v in data]
    return data


def assert_formatted(name: str, text: str) -> None:
    k = kind(name)
    assert text.endswith("\n") and not text.endswith("\n\n"), f"{name}: does not end with exactly one newline"
    if k == "python":
        formatted = black.format_str(text, mode=black.Mode())
        if formatted != text:
            import difflib

            diff = "".join(difflib.unified_diff(text.splitlines(True), formatted.splitlines(True),
                                                f"a/{name}", f"b/{name} (black)", n=1))
            raise AssertionError(f"{name}: black would reformat it:\n{diff[:4000]}")
    elif k == "yaml":
        data = load_yaml(text)
        # allow_unicode=False: pyyaml writes NEL and U+2028/9 raw otherwise and
        # reads them back as line breaks.
        again = yaml.safe_load(yaml.safe_dump(data, sort_keys=False, allow_unicode=False))
        assert _key_orders(again) == _key_orders(data), f"{name}: a dump / load round trip changes it"
    else:
        data = json.loads(text)
        canonical = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert text == canonical, f"{name}: not canonical JSON (sorted keys, indent 2)"


@pytest.mark.parametrize("target", TARGETS)
def test_every_generated_file_is_formatted(target: str) -> None:
    require_target(target)
    checked = 0
    for outputs in repo_outputs_by_source(target).values():
        for name, text in outputs.items():
            assert_formatted(name, text)
            checked += 1
    assert checked


@pytest.mark.parametrize("target", TARGETS)
def test_compiling_again_gives_the_same_text_and_key_order(target: str) -> None:
    first = compile_loaded(repo_loaded(), target).outputs
    second = compile_loaded(repo_loaded(), target).outputs
    assert list(first) == list(second)
    for name, text in first.items():
        assert second[name] == text, f"{name}: differs when compiled again"
        if kind(name) == "yaml":
            assert _key_orders(load_yaml(second[name])) == _key_orders(load_yaml(text))


@pytest.mark.parametrize("target", TARGETS)
def test_hostile_values_are_formatted_too(target: str, tmp_path_factory) -> None:
    require_target(target)
    folder = tmp_path_factory.mktemp(f"black_{target}")
    counter = iter(range(10**6))

    @settings(max_examples=20, deadline=None, database=None, report_multiple_bugs=False,
              phases=(Phase.explicit, Phase.generate),  # no shrinking: keeps the suite fast
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(hostile_modules())
    def check(spec) -> None:
        path = write_module(folder / f"case{next(counter)}", spec.source())
        result = compile_outputs([path], target)
        for name, text in result.outputs.items():
            assert_formatted(name, text)

    check()


# Literals black writes its own way: exponents without '+', wide characters
# counted twice for the line length, long collections split one per line.
FORMATTING_CASES = [
    ModuleSpec("d", "o", ["t"], {"c0": [1.5e300, 1e16, -0.0, 1e-07, 10**18]}),
    ModuleSpec("日本語の説明" * 10, "o", ["中" * 30], {"c0": "中" * 41, "c1": ["日本" * 10, "語" * 20]}),
    ModuleSpec("d", "o", ["t"], {"c0": {"k" * 30: ["v" * 30, 1, 2.5, None, True]}, "c1": "'\"" * 20}),
    ModuleSpec("e\u0301" * 40, "\u200b", ["\u202e"], {"c0": "\U0001F680" * 45, "c1": "x" * 85}),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", range(len(FORMATTING_CASES)))
def test_literals_are_formatted_as_black_formats_them(target: str, case: int, tmp_path) -> None:
    path = write_module(tmp_path, FORMATTING_CASES[case].source())
    for name, text in compile_outputs([path], target).outputs.items():
        assert_formatted(name, text)
