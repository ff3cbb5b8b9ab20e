"""Hypothesis strategies for pipeline modules full of hostile values.

A `ModuleSpec` holds a pipeline's name, description, owner, tags and
context; `source()` writes the module with `repr()` of every value, so the
source is valid Python whatever the value.  `benign()` is the same module
with every non-empty string replaced by a harmless unique placeholder: a
backend that escapes correctly gives output of the same structure for both.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

# Pieces that break naive code generation: quotes, escapes, line breaks of
# Python, YAML and Unicode, template and shell syntax, YAML indicators and
# plain scalars that YAML 1.1 would read as something else, and text whose
# width or rendering is unusual.
FRAGMENTS = (
    "'", '"', "'''", '"""', "\\", "\\\\", "\\n", "\\x00", "\\u2028", "\n", "\r", "\r\n", "\t", "\x00", "\x01",
    "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff", "\u200b", "\u202e", "\u3000",
    "{{ ds }}", "{{", "}}", "{% if x %}", "{%", "%}", "{#", "#}", "${HOME}", "$(id)", "`id`", "$", "#",
    "# comment", "\nimport os\n", "\r__import__('os').system('touch PWNED')\r", "'; import os; '",
    '"); import os; ("', "')\nimport os\n#", "{", "}", "{0}", "%s", "%(x)s", ": ", "- ", "? ", "&anchor",
    "*alias", "!!python/object/apply:os.system", "---", "...", "|", ">", "@", "yes", "no", "on", "off",
    "null", "~", "true", "1e3", "0x1F", "010", ".inf", "12:30:00", "2024-01-01", "<script>", "]]>",
    "日本語", "中文字符", "ｆｕｌｌ", "🚀", "👩\u200d👩\u200d👧", "e\u0301", "a\u0308\u0308\u0308", "ﬁ",
    "é", "Ω", "𝔘𝔫𝔦", "\U0001F600", "\u0000", "ß", "İ",
)

TEMPLATE = re.compile(r"{{\s*[\w.\-\[\]$]+\s*}}")

_chars = st.characters(exclude_categories=("Cs",))
_piece = st.one_of(st.sampled_from(FRAGMENTS), st.text(_chars, min_size=1, max_size=6))
_long = st.tuples(st.sampled_from(FRAGMENTS + ("x", "日本", "ab ")), st.integers(40, 400)).map(lambda t: t[0] * t[1])

hostile_text = st.one_of(
    st.lists(_piece, min_size=1, max_size=8).map("".join),
    _long,
    st.lists(st.one_of(_piece, _long), min_size=2, max_size=3).map("".join),
)

_scalars = st.one_of(
    hostile_text,
    st.just(""),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)

literals = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(hostile_text, st.just("")), inner, max_size=4),
    ),
    max_leaves=10,
)


@dataclass
class ModuleSpec:
    description: str
    owner: str
    tags: list[str]
    context: dict[str, Any]
    name: str = "hostile_case"
    extra: dict[str, Any] = field(default_factory=dict)

    def source(self) -> str:
        keys = list(self.context)
        ctx = "".join(f"    {key}={value!r},\n" for key, value in self.context.items())
        return (
            '"""A generated module with hostile values (tests/hostile_gen)."""\n\n'
            "from pipec import Pipeline, context, step\n\n"
            f"ctx = context(\n{ctx})\n\n\n"
            '@step(outputs=["echoed"])\n'
            f"def echo({', '.join(keys)}):\n"
            f"    return [{', '.join(keys)}]\n\n\n"
            '@step(inputs=["echoed"], outputs=["size"])\n'
            "def measure(echoed):\n"
            "    return len(echoed)\n\n\n"
            "pipeline = Pipeline(\n"
            f"    {self.name!r},\n"
            "    context=ctx,\n"
            f"    description={self.description!r},\n"
            f"    owner={self.owner!r},\n"
            f"    tags={self.tags!r},\n"
            ")\n"
            "pipeline.add_step(echo).add_step(measure)\n"
        )

    def benign(self) -> "ModuleSpec":
        """The same module, every non-empty string a unique placeholder."""
        counter = itertools.count()

        def swap(value: Any) -> Any:
            if isinstance(value, str):
                if not value:
                    return value
                # Keep a template placeholder where there was one: a target
                # may rightly keep such values out of a templated file.
                marker = " {{ x }}" if TEMPLATE.search(value) else ""
                return f"pipecph{next(counter)}x{marker}"
            if isinstance(value, list):
                return [swap(v) for v in value]
            if isinstance(value, dict):
                return {swap(k): swap(v) for k, v in value.items()}
            return value

        return ModuleSpec(swap(self.description), swap(self.owner), swap(self.tags),
                          {k: swap(v) for k, v in self.context.items()}, self.name)

    def strings(self) -> dict[str, str]:
        """Every top-level string value by what it is."""
        values = {"description": self.description, "owner": self.owner}
        values.update({f"tags {i}": t for i, t in enumerate(self.tags)})
        values.update({f"context {k}": v for k, v in self.context.items() if isinstance(v, str)})
        return values


def _context(values: list[Any]) -> dict[str, Any]:
    return {f"c{i}": v for i, v in enumerate(values)}


@st.composite
def hostile_modules(draw) -> ModuleSpec:
    description = draw(hostile_text)
    owner = draw(hostile_text)
    tags = draw(st.lists(hostile_text, min_size=1, max_size=3, unique=True))
    first = draw(hostile_text)
    rest = draw(st.lists(literals, max_size=3))
    return ModuleSpec(description, owner, tags, _context([first, *rest]))


def write_module(folder: Path, source: str, name: str = "hostile_case.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(source, encoding="utf-8")
    return path
