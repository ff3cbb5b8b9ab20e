"""The frontend's on-disk cache (`pipec.frontend.cache`): a module whose
inputs are unchanged is not parsed again, and the cached result is the
result; any change to the module or to a module of the tree it follows is a
miss; changes elsewhere are not."""

from __future__ import annotations

from pathlib import Path

import libcst
import pytest

from pipec import frontend, ir

STEPS = """\
from pipec import step
from helpers import scale

@step(outputs=["raw"])
def load(data_path: str) -> list:
    return [scale(1), 2]
"""

HELPERS = """\
def scale(x):
    return 2 * x
"""

PIPELINE = """\
from pipec import Pipeline, context, step
from steps import load

ctx = context(data_path="data.csv", opts={"b": 1, "a": [2, 3]})

@step(inputs=["raw"], outputs=["total"])
def total(raw):
    return sum(raw)

p = Pipeline("cached", context=ctx).add_step(load).add_step(total)
"""

BROKEN = """\
from pipec import Pipeline, step

@step(retires=3)
def one():
    return 1

p = Pipeline("broken").add_step(one)
"""


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PIPEC_NO_CACHE", raising=False)
    monkeypatch.delenv("PIPEC_CACHE_DIR", raising=False)
    (tmp_path / "steps.py").write_text(STEPS, encoding="utf-8")
    (tmp_path / "helpers.py").write_text(HELPERS, encoding="utf-8")
    (tmp_path / "unrelated.py").write_text("X = 1\n", encoding="utf-8")
    (tmp_path / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    return tmp_path


class ParseCounter:
    """Counts `libcst.parse_module` calls; `forbid()` makes them fail."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.forbidden = False
        original = libcst.parse_module

        def parse_module(*args, **kwargs):
            if self.forbidden:
                raise AssertionError("the cached module was parsed again")
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(libcst, "parse_module", parse_module)

    def forbid(self) -> None:
        self.forbidden = True


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> ParseCounter:
    return ParseCounter(monkeypatch)


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json"))


def test_hit_gives_the_same_result_without_parsing(
    tree: Path, parses: ParseCounter
) -> None:
    first = frontend.load(tree / "pipeline.py")
    assert first.ok and parses.calls == 3  # pipeline, steps, helpers
    assert _entries(tree / ".pipec" / "cache" / "frontend")
    parses.forbid()
    second = frontend.load(tree / "pipeline.py")
    assert second.module == first.module
    assert ir.to_json(second.module) == ir.to_json(first.module)
    assert second.diagnostics == first.diagnostics
    assert second.fingerprint == first.fingerprint != ""
    assert second.root == first.root


def test_dict_literals_keep_their_order(tree: Path) -> None:
    first = frontend.load(tree / "pipeline.py")
    second = frontend.load(tree / "pipeline.py")
    [pipeline] = second.module.pipelines
    assert list(pipeline.context_param("opts").default) == ["b", "a"]
    assert first.module.pipelines[0].context == pipeline.context


def test_changing_the_module_is_a_miss(tree: Path, parses: ParseCounter) -> None:
    first = frontend.load(tree / "pipeline.py")
    source = tree / "pipeline.py"
    source.write_text(source.read_text().replace('"cached"', '"renamed"'))
    second = frontend.load(source)
    assert parses.calls == 6
    assert second.module.pipelines[0].name == "renamed"
    assert second.fingerprint != first.fingerprint


@pytest.mark.parametrize("dependency", ["steps.py", "helpers.py"])
def test_changing_an_imported_module_is_a_miss(
    tree: Path, parses: ParseCounter, dependency: str
) -> None:
    first = frontend.load(tree / "pipeline.py")
    with (tree / dependency).open("a") as out:
        out.write("\nEXTRA = 1\n")
    second = frontend.load(tree / "pipeline.py")
    assert parses.calls == 6
    assert second.fingerprint != first.fingerprint
    [step] = [s for s in second.module.pipelines[0].steps if s.name == "load"]
    helpers = dict(step.code.helper_sources)["helpers"]
    # The step carries the helper module's source: it must be the new one.
    assert ("EXTRA = 1" in helpers) == (dependency == "helpers.py")


def test_unrelated_changes_are_hits(tree: Path, parses: ParseCounter) -> None:
    first = frontend.load(tree / "pipeline.py")
    (tree / "unrelated.py").write_text("X = 2\n")
    (tree / "new_module.py").write_text("Y = 1\n")
    parses.forbid()
    second = frontend.load(tree / "pipeline.py")
    assert second.module == first.module
    assert second.fingerprint == first.fingerprint


def test_a_module_appearing_where_an_import_looked_is_a_miss(
    tree: Path, parses: ParseCounter
) -> None:
    source = PIPELINE.replace("from steps", "import extra\nfrom steps")
    (tree / "pipeline.py").write_text(source.replace("sum(raw)", "extra.f(raw)"))
    first = frontend.load(tree / "pipeline.py")
    assert first.module.pipelines[0].steps[1].code.helper_modules == ()
    calls = parses.calls
    (tree / "extra.py").write_text("f = sum\n")  # `extra` is now in the tree
    second = frontend.load(tree / "pipeline.py")
    assert parses.calls > calls
    assert second.module.pipelines[0].steps[1].code.helper_modules == ("extra",)


def test_errors_are_cached_and_reported_the_same(
    tree: Path, parses: ParseCounter
) -> None:
    (tree / "broken.py").write_text(BROKEN)
    first = frontend.load(tree / "broken.py")
    assert not first.ok and first.module is None
    assert [d.code for d in first.diagnostics] == ["PC201"]
    parses.forbid()
    second = frontend.load(tree / "broken.py")
    assert second.module is None
    assert second.diagnostics == first.diagnostics


def test_syntax_errors_are_cached_too(tree: Path, parses: ParseCounter) -> None:
    (tree / "bad.py").write_text("def f(:\n    pass\n")
    first = frontend.load(tree / "bad.py")
    assert [d.code for d in first.diagnostics] == ["PC001"]
    parses.forbid()
    assert frontend.load(tree / "bad.py").diagnostics == first.diagnostics


def test_disabled_cache_parses_every_time_and_writes_nothing(
    tree: Path, parses: ParseCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPEC_NO_CACHE", "1")
    first = frontend.load(tree / "pipeline.py")
    second = frontend.load(tree / "pipeline.py")
    assert parses.calls == 6
    assert first.module == second.module and first.fingerprint == second.fingerprint
    assert not (tree / ".pipec").exists()


def test_cache_dir_from_the_environment(
    tree: Path, parses: ParseCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tree.parent / f"{tree.name}-cache"
    monkeypatch.setenv("PIPEC_CACHE_DIR", str(folder))
    frontend.load(tree / "pipeline.py")
    assert _entries(folder) and not (tree / ".pipec").exists()
    parses.forbid()
    assert frontend.load(tree / "pipeline.py").ok


def test_corrupt_entries_are_ignored(tree: Path, parses: ParseCounter) -> None:
    first = frontend.load(tree / "pipeline.py")
    folder = tree / ".pipec" / "cache" / "frontend"
    for entry in _entries(folder):
        entry.write_text('{"format": 1, "key": "x"')  # cut short
    second = frontend.load(tree / "pipeline.py")
    assert parses.calls == 6 and second.module == first.module
    for entry in _entries(folder):  # rewritten: a hit again
        entry.write_bytes(b"\xff\xfe not json")
    assert frontend.load(tree / "pipeline.py").module == first.module


def test_unwritable_cache_is_no_error(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tree / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("PIPEC_CACHE_DIR", str(blocker / "cache"))
    assert frontend.load(tree / "pipeline.py").ok
    assert frontend.load(tree / "pipeline.py").ok


def test_no_temporary_files_are_left(tree: Path) -> None:
    frontend.load(tree / "pipeline.py")
    frontend.load(tree / "steps.py")
    folder = tree / ".pipec" / "cache" / "frontend"
    assert all(p.suffix == ".json" for p in folder.iterdir())


def test_any_string_round_trips(tree: Path, parses: ParseCounter) -> None:
    source = PIPELINE.replace(
        'data_path="data.csv"', 'data_path="\\u00e9 \\U0001f600 \\r\\n \\x00"'
    )
    (tree / "pipeline.py").write_text(source, encoding="utf-8")
    first = frontend.load(tree / "pipeline.py")
    parses.forbid()
    second = frontend.load(tree / "pipeline.py")
    assert second.module == first.module
    value = second.module.pipelines[0].context_param("data_path").default
    assert value == "\u00e9 \U0001f600 \r\n \x00"


def test_entries_hold_the_ir_as_to_data_gives_it() -> None:
    import json

    examples = Path(__file__).parent.parent / "examples"
    modules = [frontend.load(path).module for path in sorted(examples.glob("*.py"))]
    assert len([m for m in modules if m is not None]) >= 5
    for module in modules:
        if module is not None:
            assert ir.dumps(module) == json.dumps(ir.to_data(module))
            assert ir.from_json(ir.dumps(module)) == module
    with pytest.raises(TypeError):
        ir.dumps(object())
