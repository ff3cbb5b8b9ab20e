"""How deep the source nests, found before libcst's parser sees it.

libcst's native parser recurses on the thread's stack for every level of
nesting and keeps a copy of every partly parsed expression in its memo
tables for the whole module: about 1,300 nested parentheses overflow the
stack (a segfault, which no `except` catches), and memory grows with the
square of an expression's depth (a 3,000-deep unary chain takes 500 MB; a
few hundred lines of 200-deep calls take gigabytes).  So the text is
scanned first, a token at a time (strings and comments skipped), and:

- more than 200 open brackets is CPython's own SyntaxError, at the same
  bracket and with the same words ("too many nested parentheses");
- an expression deeper than `MAX_DEPTH` (operators, trailers and brackets
  that nest inside one another) is refused: CPython's compiler stops at about
  3,000 levels, and pipec at `MAX_DEPTH` where libcst's cost is still small;
- the deep statements of a module together may cost libcst no more than
  `BUDGET` (the sum of the squares of their depths, each bracket counted
  three times, as it costs libcst about three times a unary operator).

The scan is a regular expression over the text: one `finditer` pass, a
few Python operations per bracket, operator and string (not per character).
Hand-rolled because `tokenize` is five times slower and stops at the first
error, where this scan must be total: any text in, a finding or None out.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

MAX_BRACKETS = 200  # CPython's MAXLEVEL (Parser/tokenizer.h)
MAX_DEPTH = 2000
BUDGET = 4_000_000
_SHALLOW = 100  # statements no deeper than this cost libcst linear memory
_BRACKET = 3  # a bracket level weighs three operators

_TOKEN = re.compile(
    r"""
      (?P<comment>\#[^\r\n]*)
    | (?P<string>(?:[rRbBuUfF]{1,2})?(?:'''(?:\\.|[^\\])*?(?:'''|\Z)|\"\"\"(?:\\.|[^\\])*?(?:\"\"\"|\Z)
                 |'(?:\\.|[^\\'\r\n])*(?:'|(?=[\r\n])|\Z)|"(?:\\.|[^\\"\r\n])*(?:"|(?=[\r\n])|\Z)))
    | (?P<continuation>\\\r?\n)
    | (?P<open>[(\[{])
    | (?P<close>[)\]}])
    | (?P<reset>[,;]|:=|(?<![=!<>:*/%&|^@+\-])=(?!=)|\r\n|\r|\n)
    | (?P<operator>\*\*|//|<<|>>|<=|>=|==|!=|->|[-+*/%@&|^~<>.]
                  |\b(?:not|and|or|lambda|if|else|await|in|is)\b)
    | (?P<word>[^\W\d]\w*)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class TooDeep:
    """Where and why the text is refused: `cpython` when CPython refuses it
    too (its message), else pipec's own limit."""

    line: int
    col: int  # 1-based
    message: str
    cpython: bool


def check(text: str) -> TooDeep | None:
    """The first place `text` nests too deeply for the parser, or None.
    (A NUL character is refused here too, as CPython refuses it.)"""
    nul = text.find("\x00")
    if nul >= 0:
        return _at(text, nul, "source code cannot contain null bytes", True)
    counts = [0]  # operators at each open bracket level since its last reset
    depth = 0  # the weighted depth at this point: sum(counts) + brackets
    brackets = 0
    statement_max = 0
    spent = 0
    previous_word = False  # the last token ends an operand: a trailer follows
    at = None
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "comment" or kind == "continuation":
            continue
        if kind == "string" or kind == "word":
            if kind == "string" and previous_word == "string":
                counts[-1] += 1  # adjacent literals nest in libcst's tree
                depth += 1
            previous_word = kind
            if kind == "word" and match.group() in ("True", "False", "None"):
                previous_word = "word"
        elif kind == "open":
            if previous_word:
                counts[-1] += 1  # a call or subscript wraps what it follows
                depth += 1
            brackets += 1
            if brackets > MAX_BRACKETS:
                return _at(text, match.start(), "too many nested parentheses", True)
            counts.append(0)
            depth += _BRACKET
            previous_word = False
        elif kind == "close":
            if brackets:
                brackets -= 1
                depth -= counts.pop() + _BRACKET
            previous_word = "word"
        elif kind == "reset":
            depth -= counts[-1]
            counts[-1] = 0
            previous_word = False
            if brackets == 0 and match.group() in ("\n", "\r", "\r\n", ";"):
                if statement_max > _SHALLOW:
                    spent += statement_max * statement_max
                    if spent > BUDGET:
                        return _complex(text, at)
                statement_max = 0
            continue
        else:  # an operator
            counts[-1] += 1
            depth += 1
            previous_word = False
        if depth > statement_max:
            statement_max = depth
            at = match.start()
            if depth > MAX_DEPTH:
                return _at(
                    text,
                    at,
                    f"expression nested too deeply: pipec reads at most {MAX_DEPTH:,} "
                    "levels of operators, calls, subscripts and brackets inside one "
                    "another; split it with intermediate variables",
                    False,
                )
    if statement_max > _SHALLOW:
        spent += statement_max * statement_max
        if spent > BUDGET:
            return _complex(text, at)
    return None


def _complex(text: str, offset: int | None) -> TooDeep:
    return _at(
        text,
        offset or 0,
        "module too complex to parse: its deeply nested expressions together exceed "
        "what pipec's parser reads in bounded memory; split them with intermediate "
        "variables",
        False,
    )


_LINE_END = re.compile(r"\r\n?|\n")


def _at(text: str, offset: int, message: str, cpython: bool) -> TooDeep:
    starts = [0] + [m.end() for m in _LINE_END.finditer(text, 0, offset)]
    line = bisect.bisect_right(starts, offset)
    return TooDeep(line, offset - starts[line - 1] + 1, message, cpython)
