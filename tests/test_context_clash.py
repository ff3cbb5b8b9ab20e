"""A context key and a parameter default of the same name: the context
wins (CONTRACT §1), and pipec says so with a located note, so a constant
written at the definition is never replaced silently."""

from __future__ import annotations

import textwrap

from pipec.cli import main

SOURCE = textwrap.dedent("""\
    from pipec import Pipeline, context, step

    ctx = context(lr=0.5)


    @step(outputs=["model"])
    def train(lr=0.1):
        return lr


    @step(outputs=["kept"])
    def tune(model, lr=0.1):
        return model + lr


    pipeline = Pipeline("clash", context=ctx)
    pipeline.add_step(train)
    pipeline.add_step(tune, params={"lr": 0.2})
""")


def test_a_default_replaced_by_the_context_is_noted(tmp_path, capsys):
    src = tmp_path / "clash.py"
    src.write_text(SOURCE, encoding="utf-8")
    assert main(["check", str(src)]) == 0
    err = capsys.readouterr().err
    assert "clash.py:7:11: note: parameter 'lr' of step 'train' receives the context key 'lr', not its default 0.1" in err
    assert "[PC240]" in err and err.count("PC240") == 1  # an explicit params literal is no clash
