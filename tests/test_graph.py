"""`pipec graph` in its three formats, and escaping of every name."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest

from pipec import graph, ir
from pipec.cli import main
from pipec.compile import load_specs

REPO = Path(__file__).resolve().parent.parent
TRAINING = str(REPO / "examples" / "training.py")
FANOUT = str(REPO / "examples" / "fanout.py")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_text():
    code, out, err = cli("graph", TRAINING)
    assert (code, err) == (0, "")
    assert out == (
        "pipeline ml_training (5 steps, training.py)\n"
        "  1. load\n"
        "       -> raw\n"
        "  2. split\n"
        "       <- load: raw\n"
        "       -> X_train, X_test, y_train, y_test\n"
        "  3. train  [retries=2, timeout=600s]\n"
        "       <- split: X_train, y_train\n"
        "       -> model\n"
        "  4. evaluate\n"
        "       <- train: model\n"
        "       <- split: X_test, y_test\n"
        "       -> accuracy\n"
        "  5. register  [when]\n"
        "       <- train: model\n"
        "       <- evaluate: accuracy\n"
        "       -> registered\n"
    )


def test_mermaid():
    code, out, _ = cli("graph", TRAINING, "--format", "mermaid")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    s0["load"]' in lines
    assert '    s4{{"register<br/><small>when</small>"}}' in lines
    assert '    s1 -->|"X_train, y_train"| s2' in lines
    assert '    s3 -.->|"accuracy"| s4' in lines


def test_dot():
    code, out, _ = cli("graph", TRAINING, "--format", "dot")
    assert code == 0
    assert out.startswith('digraph "ml_training" {\n') and out.endswith("}\n")
    assert '  s0 -> s1 [label="raw"];' in out
    assert '  s2 [label="train\\nretries=2, timeout=600s"];' in out
    assert 'style="rounded,dashed"' in out


def test_several_pipelines_make_one_document():
    _, mermaid, _ = cli("graph", FANOUT, "-f", "mermaid")
    assert mermaid.count("flowchart TD") == 1 and mermaid.count("subgraph") == 2
    assert re.search(r'\[\["fit<br/><small>foreach \w+</small>"\]\]', mermaid)
    _, dot, _ = cli("graph", FANOUT, "-f", "dot")
    assert (
        dot.count("digraph") == 1
        and "subgraph cluster_0" in dot
        and "subgraph cluster_1" in dot
    )
    assert "peripheries=2" in dot
    _, text, _ = cli("graph", FANOUT + ":shard_processing")
    assert text.startswith("pipeline shard_processing (3 steps") and "[foreach " in text


def test_deterministic():
    assert cli("graph", FANOUT, "-f", "dot") == cli("graph", FANOUT, "-f", "dot")


def test_input_error_exits_2():
    code, out, err = cli("graph", FANOUT + ":nope")
    assert code == 2 and out == "" and "[PC402]" in err


@pytest.fixture
def hostile() -> ir.Pipeline:
    """The training pipeline with names no frontend would accept."""
    pipeline = load_specs([TRAINING]).selected[0].pipeline
    nasty = 'a"]; b\\ <x> | #1 {{y}}\nz'
    steps = list(pipeline.steps)
    steps[0] = dataclasses.replace(steps[0], name=nasty, outputs=('r"aw',))
    steps[1] = dataclasses.replace(
        steps[1],
        params=tuple(
            (
                dataclasses.replace(b, ref=ir.OutputRef(nasty, 'r"aw'))
                if isinstance(b.ref, ir.OutputRef)
                else b
            )
            for b in steps[1].params
        ),
    )
    return dataclasses.replace(pipeline, name='p"q', steps=tuple(steps))


def test_mermaid_escapes(hostile):
    out = graph.to_mermaid([hostile])
    labels = re.findall(r'"([^"]*)"', out)
    assert all("\n" not in label and "<x>" not in label for label in labels)
    assert "#34;" in out and "#10;" in out
    assert '-->|"r#34;aw"|' in out


def test_dot_escapes(hostile):
    out = graph.to_dot([hostile])
    assert '\\"' in out and "\\\\" in out
    for line in out.splitlines():
        assert line.count('"') % 2 == 0 or '\\"' in line
    assert 'label="a\\"]; b\\\\ <x> | #1 {{y}}\\nz"' in out


def test_text_escapes(hostile):
    out = graph.to_text([hostile])
    assert "\\n" in out and len(out.splitlines()) == len(
        graph.to_text([hostile]).splitlines()
    )
    assert all(line.isprintable() for line in out.splitlines())


def test_ordering_only_edges_and_run_anyway_marks():
    scenarios = Path(__file__).parent / "scenarios"
    code, out, _ = cli("graph", str(scenarios / "after.py"))
    assert code == 0
    assert "  3. announce\n       <- load (order only)\n" in out
    assert "       <- announce: note\n       <- train (order only)\n" in out
    code, out, _ = cli("graph", str(scenarios / "after.py"), "--format", "dot")
    assert 's0 -> s2 [label="after", style=dashed];' in out
    code, out, _ = cli("graph", str(scenarios / "anyway.py"))
    assert "cleanup  [trigger=all_done]" in out
    assert "report  [final]" in out
    assert "<- pick (order only)" in out  # the final step runs after every step
