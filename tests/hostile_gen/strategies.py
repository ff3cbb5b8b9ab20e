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
    # Tags hostile in content, within Airflow's 100 characters (a longer
    # tag is a located error there, tested on its own).
    tags = draw(st.lists(hostile_text.map(lambda text: text[:100]), min_size=1, max_size=3, unique=True))
    first = draw(hostile_text)
    rest = draw(st.lists(literals, max_size=3))
    return ModuleSpec(description, owner, tags, _context([first, *rest]))


def write_module(folder: Path, source: str, name: str = "hostile_case.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(source, encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# Structure: whole pipeline modules whose names, options, expressions and
# nesting are hostile (the text of each value as source, so that values
# Python evaluates to something strange, such as 1e309, are written too).

# Option values as source text: valid ones, out of range, overflowing,
# of the wrong type, not literals at all.
_NUMBER_TEXTS = (
    "0", "1", "2", "-1", "0.5", "1.5", "2.0", "1e9", "1e15", "1e200", "1e309", "-1e309", "10**6", "0x" + "f" * 40,
    "9" * 50, "True", "None", "'3'", "[1]", "float('nan')", "inf", "1_000", "0o17", "-0.0",
)
_number_text = st.one_of(st.sampled_from(_NUMBER_TEXTS), st.integers(-5, 10**6).map(str),
                         st.floats(allow_nan=False, allow_infinity=False).map(repr))
_any_literal_text = st.one_of(literals.map(repr), _number_text)

_IDENTIFIERS = (
    "s", "step_a", "isinstance", "len", "getattr", "compile", "print", "json", "os", "sys", "prefect", "airflow",
    "kfp", "dag", "task", "flow", "Param", "_", "__init__", "ℌ", "ﬁle", "x" * 300, "None_", "async_",
)
identifiers = st.one_of(st.sampled_from(_IDENTIFIERS), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True))
_pipeline_names = st.one_of(
    st.sampled_from(("p", "prefect", "hashlib", "json", "a.b", "-x", "x" * 240, "a-b", "__init__", "日本")),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}", fullmatch=True),
    hostile_text,
)

# Chains that nest in the parsed tree: (piece before the operand, piece
# after it) repeated n times around or after an operand.
_CHAINS = {
    "parens": ("(", ")"), "calls": ("f(", ")"), "lists": ("[", "]"), "unary": ("-", ""), "not": ("not ", ""),
    "plus": ("", " + k"), "attr": ("", ".real"), "subscript": ("", "[0]"), "strings": ("", " 'a'"),
    "power": ("", " ** 1"), "lambda": ("(lambda: ", ")()"), "ifexp": ("", " if k else k"),
    "compare": ("", " < k"), "and": ("", " and k"),
}
_ATOMS = ("k", "1", "'s'", "None", "[k]", "{'a': k}", "len([k])", "f(k)", "(k, 1)", "k if k else 2")


@st.composite
def expressions(draw, depth: int = 0) -> str:
    kind = draw(st.sampled_from(("atom", "atom", "binary", "chain", "chain", "call")))
    if kind == "atom" or depth > 2:
        return draw(st.sampled_from(_ATOMS))
    if kind == "binary":
        op = draw(st.sampled_from(("+", "-", "*", "==", "and", "or", "if k else", "<")))
        return f"({draw(expressions(depth + 1))} {op} {draw(expressions(depth + 1))})"
    if kind == "call":
        return f"f({draw(expressions(depth + 1))})"
    before, after = _CHAINS[draw(st.sampled_from(sorted(_CHAINS)))]
    n = draw(st.one_of(st.integers(0, 30), st.integers(150, 260), st.sampled_from((199, 200, 201, 490, 1000))))
    inner = draw(expressions(depth + 1))
    if before and after:
        return before * n + inner + after * n
    return (before * n + inner) if before else "(" + inner + ")" + after * n


_STEP_OPTIONS = ("retries", "retry_delay", "retry_backoff", "timeout", "cache", "image", "packages", "cpu",
                 "memory", "gpu", "name", "inputs", "outputs", "foreach")


@st.composite
def _step_source(draw, index: int, keys: list[str], produced: list[str]) -> tuple[str, str, list[str]]:
    function = f"s{index}"
    params = draw(st.lists(st.sampled_from(keys + produced), max_size=3, unique=True))
    options = []
    outputs = draw(st.lists(identifiers.filter(lambda n: n not in produced), max_size=2, unique=True))
    options.append(f"outputs={outputs!r}")
    hostile = st.lists(st.sampled_from(_STEP_OPTIONS), max_size=3, unique=True)
    for option in draw(st.one_of(st.just([]), st.just(["retries", "retry_delay"]), hostile)):
        if option in ("image", "memory"):
            value = draw(st.one_of(hostile_text.map(repr), st.sampled_from(("None", "1"))))
        elif option == "packages":
            value = repr(draw(st.lists(hostile_text, max_size=2)))
        elif option == "cache":
            value = draw(st.sampled_from(("True", "False", "None", "1")))
        elif option == "name":
            value = repr(draw(identifiers))
        elif option in ("inputs", "outputs"):
            value = repr(draw(st.lists(st.one_of(identifiers, st.sampled_from(produced or ["x"])), max_size=2)))
        elif option == "foreach":
            value = repr(draw(st.sampled_from(params or ["item"])))
        else:
            value = draw(_number_text)
        options.append(f"{option}={value}")
    decorators = [f"@step({', '.join(options)})"]
    if draw(st.booleans()):
        decorators.append(f"@when(lambda {', '.join(params) or 'k'}: {draw(expressions())})")
    if draw(st.integers(0, 5)) == 0:
        decorators.append(f"@retry(max_attempts={draw(_number_text)}, delay={draw(_number_text)}, backoff={draw(_number_text)})")
    body = draw(expressions())
    source = "\n".join(decorators) + f"\ndef {function}({', '.join(params)}):\n    k = 1\n    return {body}\n"
    return function, source, outputs


@st.composite
def pipeline_sources(draw) -> str:
    """A whole pipeline module, hostile in structure and values."""
    keys = ["k", *draw(st.lists(st.from_regex(r"[a-j][a-z0-9_]{0,8}", fullmatch=True), max_size=2, unique=True))]
    context = ", ".join(f"{key}={draw(st.one_of(st.just('1'), _any_literal_text))}" for key in keys)
    parts = [
        "from pipec import Pipeline, context, on_failure, retry, step, when\n\n",
        "def f(x=None):\n    return x\n\n",
        f"ctx = context({context})\n\n",
    ]
    functions, produced = [], []
    for index in range(draw(st.integers(1, 3))):
        function, source, outputs = draw(_step_source(index, keys, produced))
        parts.append("\n" + source + "\n")
        functions.append(function)
        produced.extend(outputs)
    options = [f"{draw(st.one_of(st.just('p'), _pipeline_names))!r}", "context=ctx"]
    for option in draw(st.lists(st.sampled_from(("schedule", "description", "owner", "tags", "version")), max_size=3, unique=True)):
        value = draw(st.one_of(hostile_text.map(repr), st.sampled_from(("'0 3 * * *'", "'@daily'", "None", "[1]"))))
        options.append(f"{option}={value}")
    adds = "".join(f".add_step({f})" for f in draw(st.permutations(functions)))
    parts.append(f"\npipeline = Pipeline({', '.join(options)}){adds}\n")
    return "".join(parts)


@st.composite
def random_python_modules(draw) -> str:
    """hypothesmith's random Python: alone, or before a small valid
    pipeline (it may rebind the names the pipeline uses)."""
    import hypothesmith

    code = draw(hypothesmith.from_grammar())
    if draw(st.booleans()):
        return code
    if code and not code.endswith("\n"):
        code += "\n"
    return (
        "from pipec import Pipeline, context, step\n"
        + code
        + "\nctx = context(k=1)\n\n@step(outputs=['o'])\ndef s(k):\n    return k\n\n"
        "pipeline = Pipeline('p', context=ctx).add_step(s)\n"
    )
