"""`pipec graph`: the DAG of pipelines, from the IR, as text, Mermaid or DOT.

Deterministic: steps in execution order, edges in the order of each step's
inputs.  Every name from the source is escaped for its format, so a step
named `a"]; evil` stays a label.  Several pipelines give one document: text
sections, one Mermaid flowchart with a subgraph each, one DOT digraph with a
cluster each.
"""

from __future__ import annotations

from typing import Callable

from pipec import ir

FORMATS = ("text", "mermaid", "dot")


def render(pipelines: list[ir.Pipeline], fmt: str) -> str:
    """`pipelines` in format `fmt` (one of FORMATS)."""
    return RENDERERS[fmt](pipelines)


def edges(pipeline: ir.Pipeline) -> list[tuple[str, str, list[str]]]:
    """(upstream step, step, output names) for each pair of connected steps,
    in execution order of the consumer, then first use of the producer."""
    result: list[tuple[str, str, list[str]]] = []
    for step in pipeline.steps:
        by_producer: dict[str, list[str]] = {}
        for ref in step.input_refs():
            by_producer.setdefault(ref.step, [])
            if ref.output not in by_producer[ref.step]:
                by_producer[ref.step].append(ref.output)
        for name in step.upstream:  # ordering only: `after`, the final step
            if name not in by_producer and (name in step.after or step.final):
                by_producer[name] = []
        result.extend(
            (producer, step.name, outputs) for producer, outputs in by_producer.items()
        )
    return result


def marks(step: ir.Step) -> list[str]:
    """What changes how a step runs, as short labels."""
    found = []
    if step.foreach:
        found.append(f"foreach {step.foreach}")
    if step.when is not None:
        found.append("when")
    if step.retry.max_attempts > 1:
        found.append(f"retries={step.retry.retries}")
    if step.fallback is not None:
        found.append(f"on_failure={step.fallback.name}")
    if step.timeout is not None:
        found.append(f"timeout={step.timeout:g}s")
    if step.trigger != "all_succeeded" and not step.final:
        found.append(f"trigger={step.trigger}")
    if step.final:
        found.append("final")
    return found


# --------------------------------------------------------------------------
# text


def _plain(text: str) -> str:
    """Printable text on one line: control characters escaped."""
    if text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


def to_text(pipelines: list[ir.Pipeline]) -> str:
    return "\n".join(_text_one(p) for p in pipelines)


def _text_one(pipeline: ir.Pipeline) -> str:
    count = len(pipeline.steps)
    lines = [
        f"pipeline {_plain(pipeline.name)} ({count} step{'' if count == 1 else 's'}, {pipeline.source_path})"
    ]
    incoming: dict[str, list[str]] = {}
    for producer, consumer, outputs in edges(pipeline):
        incoming.setdefault(consumer, []).append(
            f"{_plain(producer)}: {', '.join(map(_plain, outputs))}"
            if outputs
            else f"{_plain(producer)} (order only)"
        )
    for index, step in enumerate(pipeline.steps, 1):
        head = f"  {index}. {_plain(step.name)}"
        if marks(step):
            head += "  [" + ", ".join(map(_plain, marks(step))) + "]"
        lines.append(head)
        for edge in incoming.get(step.name, []):
            lines.append(f"       <- {edge}")
        if step.outputs:
            lines.append(f"       -> {', '.join(map(_plain, step.outputs))}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# mermaid


_MERMAID_SAFE = set(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ .,:=+-/()"
)


def mermaid_escape(text: str) -> str:
    """Everything but plain characters as Mermaid entity codes (`#34;`)."""
    return "".join(c if c in _MERMAID_SAFE else f"#{ord(c)};" for c in text)


def to_mermaid(pipelines: list[ir.Pipeline]) -> str:
    lines = ["flowchart TD"]
    for p_index, pipeline in enumerate(pipelines):
        prefix, indent = (f"p{p_index}_", "    ") if len(pipelines) > 1 else ("", "")
        if len(pipelines) > 1:
            lines.append(f'    subgraph p{p_index}["{mermaid_escape(pipeline.name)}"]')
        lines.extend(indent + line for line in _mermaid_body(pipeline, prefix))
        if len(pipelines) > 1:
            lines.append("    end")
    return "\n".join(lines) + "\n"


def _mermaid_body(pipeline: ir.Pipeline, prefix: str) -> list[str]:
    ids = _ids(pipeline, prefix + "s")
    lines = []
    for step in pipeline.steps:
        label = mermaid_escape(step.name)
        if marks(step):
            label += (
                "<br/><small>" + mermaid_escape(", ".join(marks(step))) + "</small>"
            )
        open_, close = (
            ("{{", "}}")
            if step.when is not None
            else ("[[", "]]") if step.foreach else ("[", "]")
        )
        lines.append(f'    {ids[step.name]}{open_}"{label}"{close}')
    for producer, consumer, outputs in edges(pipeline):
        arrow = "-.->" if pipeline.step(consumer).when is not None else "-->"
        lines.append(
            f'    {ids[producer]} {arrow}|"{mermaid_escape(", ".join(outputs) or "after")}"| {ids[consumer]}'
        )
    return lines


# --------------------------------------------------------------------------
# dot


def dot_escape(text: str) -> str:
    """A DOT double-quoted string's content."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif not c.isprintable():
            out.append(f"&#{ord(c)};")
        else:
            out.append(c)
    return "".join(out)


def to_dot(pipelines: list[ir.Pipeline]) -> str:
    name = pipelines[0].name if len(pipelines) == 1 else "pipelines"
    lines = [
        f'digraph "{dot_escape(name)}" {{',
        "  rankdir=TB;",
        '  node [shape=box, style="rounded", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for p_index, pipeline in enumerate(pipelines):
        prefix = f"p{p_index}_" if len(pipelines) > 1 else ""
        body = _dot_body(pipeline, prefix)
        if len(pipelines) > 1:
            lines.append(f"  subgraph cluster_{p_index} {{")
            lines.append(f'    label="{dot_escape(pipeline.name)}";')
            lines.extend("  " + line for line in body)
            lines.append("  }")
        else:
            lines.extend(body)
    return "\n".join(lines) + "\n}\n"


def _dot_body(pipeline: ir.Pipeline, prefix: str) -> list[str]:
    ids = _ids(pipeline, prefix + "s")
    lines = []
    for step in pipeline.steps:
        label = dot_escape(step.name)
        if marks(step):
            label += "\\n" + dot_escape(", ".join(marks(step)))
        attrs = [f'label="{label}"']
        if step.when is not None:
            attrs.append('style="rounded,dashed"')
        if step.foreach:
            attrs.append("peripheries=2")
        lines.append(f"  {ids[step.name]} [{', '.join(attrs)}];")
    for producer, consumer, outputs in edges(pipeline):
        lines.append(
            f'  {ids[producer]} -> {ids[consumer]} [label="{dot_escape(", ".join(outputs) or "after")}"{"" if outputs else ", style=dashed"}];'
        )
    return lines


def _ids(pipeline: ir.Pipeline, prefix: str) -> dict[str, str]:
    """Node ids made of the step's position: never the (untrusted) name."""
    return {step.name: f"{prefix}{index}" for index, step in enumerate(pipeline.steps)}


RENDERERS: dict[str, Callable[[list[ir.Pipeline]], str]] = {
    "text": to_text,
    "mermaid": to_mermaid,
    "dot": to_dot,
}
