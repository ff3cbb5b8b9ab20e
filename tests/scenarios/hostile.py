"""Context values, names and docs full of characters that break naive code
generation: quotes, backslashes, newlines, template and shell syntax,
non-ASCII.  Every value must arrive exactly as written."""

from pipec import Pipeline, context, step

ctx = context(
    quotes="it's \"quoted\" '''triple''' \"\"\"double\"\"\"",
    template="{{ ds }} {% if x %}{{ params.x }}{% endif %} ${HOME} #{x}",
    shell="$(rm -rf /) `id` ; echo pwned && exit 1 | cat > /tmp/x",
    text="ünïcødé — 日本語 — emoji 🚀\ttab\nnewline\r\nwindows \\ backslash \\n literal",
    nested={"k'ey": ["{{ x }}", "$(y)", "\\"], "n": [1, 2.5, True, None]},
    count=3,
)


@step(outputs=["echo"])
def echo(quotes: str, template: str, shell: str, text: str, nested: dict, count: int) -> dict:
    return {"quotes": quotes, "template": template, "shell": shell, "text": text, "nested": nested, "count": count}


@step(inputs=["echo"], outputs=["lengths"])
def measure(echo: dict) -> dict:
    return {k: len(v) for k, v in echo.items() if isinstance(v, str)}


pipeline = Pipeline(
    "hostile",
    context=ctx,
    description="Quotes ' \" and {{ jinja }} and $(shell) — ünïcødé\nsecond line",
    owner="o'brien \"ops\"",
    tags=["a'b", "{{ c }}", "ü"],
)
pipeline.add_step(echo).add_step(measure)
