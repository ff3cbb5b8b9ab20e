"""The code a step carries computes what the module computes.

Each case is a pipeline module whose steps take no parameters: every step's
carried code (`ir.CodeBlock.source`, loaded as the targets load it) is run
and its result compared, type-exactly, with the step function of the module
itself, imported and called as the local run calls it."""

from __future__ import annotations

import runpy
import textwrap
from pathlib import Path

from pipec.frontend import load
from templates.task_runtime import _pipec_load, _pipec_same


def carried_and_local(tmp_path: Path, text: str, name: str = "pipeline.py"):
    """{step name: (carried result, local result)} for `text`'s pipelines."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    result = load(path)
    assert result.ok, [d.format() for d in result.diagnostics]
    namespace = runpy.run_path(str(path), run_name="pipeline_under_test")
    found = {}
    for pipeline in result.module.pipelines:
        for step in pipeline.steps:
            function = namespace[step.code.function]
            local = getattr(function, "__wrapped__", function)()
            module = _pipec_load(step.code.source, f"<{step.name}>", f"carried_{step.name}")
            found[step.name] = (getattr(module, step.code.function)(), local)
    return found, result


def assert_same(found: dict) -> None:
    for step, (carried, local) in found.items():
        assert _pipec_same(carried, local), (step, carried, local)


def test_identifiers_are_nfkc_normalised(tmp_path: Path) -> None:
    found, _ = carried_and_local(
        tmp_path,
        """
        from pipec import Pipeline, step


        def h():
            return "helper"


        def b():
            return "first"


        def ｂ():
            return "second"


        @step(outputs=["x"])
        def uses_helper():
            return ｈ()


        @step(outputs=["y"])
        def uses_b():
            return b()


        pipeline = Pipeline("nfkc").add_step(uses_helper).add_step(uses_b)
        """,
    )
    assert found["uses_helper"][1] == "helper"
    assert found["uses_b"][1] == "second"
    assert_same(found)


def test_positional_only_parameters_are_marked(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.py"
    path.write_text(
        textwrap.dedent(
            """
            from pipec import Pipeline, context, step, when


            @step(outputs=["a"])
            def load(n, /, scale, *, shift=0):
                return n * scale + shift


            @step(outputs=["b"])
            @when(lambda a, /: a > 0)
            def use(a):
                return a


            pipeline = Pipeline("p", context=context(n=2, scale=3))
            pipeline.add_step(load).add_step(use)
            """
        ),
        encoding="utf-8",
    )
    from pipec import ir

    module = load(path).module
    load_step, use_step = module.pipelines[0].steps
    assert [(b.param, b.positional) for b in load_step.params] == [
        ("n", True),
        ("scale", False),
        ("shift", False),
    ]
    assert [(b.param, b.positional) for b in use_step.when.params] == [("a", True)]
    assert [b.positional for b in use_step.params] == [False]
    # Written only where it is true, and read back.
    text = ir.to_json(module)
    assert text.count('"positional"') == 2
    assert ir.from_json(text) == module


def test_statements_that_change_a_carried_name_travel_with_it(tmp_path: Path) -> None:
    found, result = carried_and_local(
        tmp_path,
        """
        import random

        from pipec import Pipeline, step

        SETTINGS = {"scale": 1}
        SETTINGS["scale"] = 10
        LABELS = ["a"]
        LABELS.append("x")
        X = 1
        X += 1
        COUNTS = []
        for i in range(3):
            COUNTS.append(i * i)


        class Box:
            pass


        BOX = Box()
        setattr(BOX, "value", 5)
        BOX.other = 6
        GONE = {"a": 1, "b": 2}
        del GONE["a"]


        class Registry:
            def __init__(self):
                self.items = []

            def add(self, fn):
                self.items.append(fn.__name__)
                return fn


        REGISTRY = Registry()


        @REGISTRY.add
        def first():
            return 1


        def fill(target):
            target.extend([7, 8])


        EXTRA = []
        fill(EXTRA)
        random.seed(3)
        if __name__ == "__main__":
            LABELS.append("only when run as a script")


        @step(outputs=["a"])
        def settings():
            return SETTINGS["scale"], LABELS, X, COUNTS


        @step(outputs=["b"])
        def objects():
            return BOX.value, BOX.other, GONE, REGISTRY.items, EXTRA


        @step(outputs=["c"])
        def seeded():
            return random.random()


        @step(outputs=["d"])
        def uses_itself():
            return sorted(STEPS)


        STEPS = {}
        STEPS["uses_itself"] = uses_itself


        pipeline = Pipeline("changes").add_step(settings).add_step(objects)
        pipeline.add_step(seeded).add_step(uses_itself)
        """,
    )
    assert found["settings"][1] == (10, ["a", "x"], 2, [0, 1, 4])
    assert found["objects"][1] == (5, 6, {"b": 2}, ["first"], [7, 8])
    assert found["uses_itself"][1] == ["uses_itself"]
    assert_same(found)
    assert not result.diagnostics
