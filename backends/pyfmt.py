"""Python literals written the way black writes them, without running black.

Backends build generated Python from values of the source (names, strings,
context defaults).  Those values must reach the output escaped (no input can
inject code) and already formatted as black formats them, because compiling
may not depend on black and must stay fast.  Running black over every
generated file would cost more than the rest of compiling together, so this
module reproduces the two black rules that matter for literals:

- strings: double quotes, unless single quotes need fewer backslashes;
- collections: on one line when the line fits in 88 columns (black counts
  East Asian wide characters as two); otherwise one element per line with a
  trailing comma (black's "magic trailing comma" then keeps it that way).

The test suite checks the output with the pinned black.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

LINE_LENGTH = 88
INDENT = "    "


def _char_ok(char: str) -> bool:
    """Printable characters kept as they are; everything else is escaped."""
    if char.isascii():
        return char.isprintable()
    if not char.isprintable():
        return False
    category = unicodedata.category(char)
    # Combining marks and format characters change widths or hide text:
    # always escaped, so reviewers see them and widths stay unambiguous.
    return not (category.startswith("M") or category.startswith("C") or category in ("Zl", "Zp"))


def _escape(char: str) -> str:
    special = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if char in special:
        return special[char]
    if _char_ok(char):
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


# Characters that may need an escape; everything else is copied as it is.
_SPECIAL = re.compile(r"[^\x20-\x5b\x5d-\x7e]")


# Text that is its own double-quoted literal: printable ASCII, no quote, no backslash.
_PLAIN = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def py_str(value: str) -> str:
    """A Python string literal for `value`, as black would leave it."""
    if _PLAIN.fullmatch(value):
        return f'"{value}"'
    body = _SPECIAL.sub(lambda m: _escape(m.group()), value)
    double = body.replace('"', '\\"')
    single = body.replace("'", "\\'")
    if single.count("\\") < double.count("\\"):
        return f"'{single}'"
    return f'"{double}"'


def width(text: str) -> int:
    """Display width as black measures it (wide characters count twice)."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def py_literal(value: Any, indent: int = 0, prefix: str = "", suffix: str = "") -> str:
    """`value` as a Python literal, laid out as black lays it out when it
    stands at `indent` levels after `prefix` and before `suffix` on its line.

    Returns the text from the start of the value (the prefix is not included);
    continuation lines carry their own indentation."""
    flat = _flat(value)
    room = LINE_LENGTH - width(INDENT * indent + prefix) - width(suffix)
    if width(flat) <= room or not isinstance(value, (list, tuple, dict)) or not value:
        return flat
    inner = INDENT * (indent + 1)
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            key_text = _flat(key) + ": "
            lines.append(inner + key_text + py_literal(item, indent + 1, key_text, ","))
        open_, close = "{", "}"
    else:
        for item in value:
            lines.append(inner + py_literal(item, indent + 1, "", ","))
        open_, close = ("[", "]") if isinstance(value, list) else ("(", ")")
    body = ",\n".join(lines)
    return f"{open_}\n{body},\n{INDENT * indent}{close}"


def _flat(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, tuple):
        if len(value) == 1:
            return "(" + _flat(value[0]) + ",)"
        return "(" + ", ".join(_flat(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as a literal")


def _float(value: float) -> str:
    if value != value:
        return 'float("nan")'
    if value in (float("inf"), float("-inf")):
        return 'float("inf")' if value > 0 else 'float("-inf")'
    # black writes exponents without a "+" (1e300, not 1e+300), lower case.
    return repr(value).replace("e+", "e")


def py_name(value: str) -> str:
    """`value` if it is a plain identifier, else a ValueError: names that go
    into generated code unquoted must be identifiers (the frontend checks)."""
    if not value.isidentifier():
        raise ValueError(f"not an identifier: {value!r}")
    return value


def comment_lines(text: str, prefix: str = "# ") -> list[str]:
    """Lines of a comment carrying `text` safely: each line of the text
    becomes its own comment line, with control characters escaped."""
    out = []
    for line in text.splitlines() or [""]:
        safe = "".join(c if c == "\t" or _char_ok(c) else _escape(c) for c in line)
        out.append((prefix + safe).rstrip())
    return out


def header_value(value: object) -> str:
    """A value for a header comment that reads back exactly: a plain one-line
    string as it is, anything else (several lines, control characters,
    backslashes, surrounding spaces, lists) as a Python literal."""
    if isinstance(value, str):
        plain = (
            value
            and value == value.strip()
            and "\\" not in value
            and all(_char_ok(c) for c in value)
            and not value.startswith(("'", '"', "["))
        )
        return value if plain else py_str(value)
    return _flat(value)


def py_block_str(text: str) -> str:
    """`text` as a triple-quoted string literal that reads like the code it
    holds: three quotes, a backslash-newline, the text, three quotes.
    Backslashes, control characters (except newlines and tabs) and every
    quote that would end the string are escaped: it evaluates to `text`."""
    out: list[str] = []
    quotes = 0  # unescaped quotes just written
    for char in text:
        if char == '"':
            if quotes == 2:
                out.append('\\"')
                quotes = 0
            else:
                out.append(char)
                quotes += 1
            continue
        quotes = 0
        if char in "\n\t":
            out.append(char)
        elif char == "\\":
            out.append("\\\\")
        else:
            out.append(_escape(char))
    if quotes:  # a quote right before the closing quotes would end early
        out[-quotes:] = ['\\"'] * quotes
    return '"""\\\n' + "".join(out) + '"""'
