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

import os
import tempfile

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


def _dump(data: object, sort_keys: bool, width: int) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=sort_keys,
        allow_unicode=True,
        width=width,
        default_flow_style=False,
    )


def dump(data: object, sort_keys: bool = True, width: int = 4096) -> str:
    if _FORK and isinstance(data, dict):
        text = _dump_in_two(data, sort_keys, width)
        if text is not None:
            return text
    return _dump(data, sort_keys, width)


# -- large documents in two processes ------------------------------------------
#
# A block mapping's text is its entries' texts one after the other, and an
# entry's text does not depend on its neighbours.  So a large document can be
# written in pieces, each top-level entry on its own and a large mapping
# value in two halves (`{key: first half}`, then `{key: second half}` without
# its `key:` line), and the pieces joined in order give the same text.  The
# console process (single-threaded, `allow_fork`) writes a large document so,
# half the pieces in a forked child: a thousand-step KFP spec takes a third
# less time on two cores.  Anything unexpected falls back to one process.

_FORK = False
# Below this estimated size (about 200 KFP steps) a fork costs more than it saves.
_FORK_MIN_WEIGHT = 20_000
_CHARS_PER_NODE = 700  # a value's text costs about as much as a node per 700 characters
_SEPARATOR = "\0"  # never in the text: the emitter escapes NUL


def allow_fork() -> None:
    """Let `dump` write large documents in two processes.  Only for a
    process with no other thread (the console script), where `os.fork`
    is safe."""
    global _FORK
    _FORK = hasattr(os, "fork")


def _weight(value: object) -> int:
    """The cost of writing `value`, estimated from its first entry at each
    level (the large documents are lists and mappings of like entries)."""
    if isinstance(value, (dict, list)):
        if not value:
            return 1
        first = next(iter(value.values())) if isinstance(value, dict) else value[0]
        return 1 + len(value) * (1 + _weight(first))
    if isinstance(value, str):
        return 1 + len(value) // _CHARS_PER_NODE
    return 1


def _pieces(data: dict, sort_keys: bool) -> list[tuple[object, object, bool]]:
    """(key, value, continued) for each piece, in document order: a
    continued piece is the second half of the previous piece's mapping."""
    items = list(data.items())
    if sort_keys:
        items.sort(key=lambda item: item[0])
    pieces = []
    for key, value in items:
        if isinstance(value, dict) and len(value) > 1:
            entries = list(value.items())
            if sort_keys:
                entries.sort(key=lambda item: item[0])
            half = len(entries) // 2
            pieces.append((key, dict(entries[:half]), False))
            pieces.append((key, dict(entries[half:]), True))
        else:
            pieces.append((key, value, False))
    return pieces


def _dump_in_two(data: dict, sort_keys: bool, width: int) -> str | None:
    try:
        pieces = _pieces(data, sort_keys)
    except TypeError:  # keys that do not sort
        return None
    weights = [_weight(value) for _, value, _ in pieces]
    if len(pieces) < 2 or sum(weights) < _FORK_MIN_WEIGHT:
        return None
    # Largest first, each to the lighter of the two processes.
    mine: list[int] = []
    theirs: list[int] = []
    loads = [0, 0]
    for i in sorted(range(len(pieces)), key=lambda i: -weights[i]):
        side = 0 if loads[0] <= loads[1] else 1
        (mine, theirs)[side].append(i)
        loads[side] += weights[i]

    def text(i: int) -> str:
        key, value, _ = pieces[i]
        return _dump({key: value}, sort_keys, width)

    texts: dict[int, str] = {}
    fd, path = tempfile.mkstemp(prefix="pipec-yaml-")
    try:
        pid = os.fork()
        if pid == 0:  # the child: write its pieces, leave without any cleanup
            code = 1
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(_SEPARATOR.join(text(i) for i in theirs))
                code = 0
            finally:
                os._exit(code)
        os.close(fd)
        for i in mine:
            texts[i] = text(i)
        _, status = os.waitpid(pid, 0)
        if status == 0:
            with open(path, encoding="utf-8") as f:
                texts.update(zip(theirs, f.read().split(_SEPARATOR)))
    finally:
        os.unlink(path)
    for i in theirs:  # the child failed: write its pieces here
        if i not in texts:
            texts[i] = text(i)
    out = []
    for i, (key, _, continued) in enumerate(pieces):
        piece = texts[i]
        if continued:
            head, _, rest = piece.partition("\n")
            if head != f"{key}:":
                return None  # a key written otherwise than plain: keep it whole
            piece = rest
        out.append(piece)
    return "".join(out)
