"""YAML written from data, safely and stably, for every backend that writes YAML.

pyyaml writes the characters NEL (U+0085), LINE SEPARATOR and PARAGRAPH
SEPARATOR raw, and reads them back as line breaks: a value containing one
would not come back as written.  Such strings (and any with a carriage return
or other characters a block scalar cannot hold) are written double-quoted,
where pyyaml escapes them.  Other multi-line strings are literal blocks, so
embedded programs stay readable in review.  The test suite checks that
loading the text gives the data back, for hostile values too.
"""

from __future__ import annotations

import yaml

_BREAKS = ("\x85", "\u2028", "\u2029", "\r")


# libyaml's emitter when pyyaml has it (it writes the same text, much faster).
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):
    """No anchors and aliases: every value is written where it is used."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _needs_quotes(value: str) -> bool:
    if any(c in value for c in _BREAKS):
        return True
    return not value.replace("\n", "").replace("\t", "").isprintable()


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if _needs_quotes(value):
        style = '"'
    elif "\n" in value:
        style = "|"
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(data: object, sort_keys: bool = True, width: int = 4096) -> str:
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=sort_keys,
        allow_unicode=True,
        width=width,
        default_flow_style=False,
    )
    return text
