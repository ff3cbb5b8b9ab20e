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
# entry's text does not depend on its neighbours.  So a document can be
# written in pieces: each large mapping (a KFP spec's components, executors
# and tasks) in chunks of its entries, each nested in the keys above it
# (`{"deploymentSpec": {"executors": chunk}}`), and joined in order, each
# piece without the key lines it shares with the piece before, they give the
# same text.  The console process (single-threaded, `allow_fork`) writes a
# large document so, every other piece in a forked child: a thousand-step
# KFP spec takes a third less time on two cores.  Anything unexpected falls
# back to one process.

_FORK = False
_LARGE = 64  # a mapping with this many entries is written in chunks
_CHUNKS = 8  # of about equal size, alternating between the two processes
_DEPTH = 3  # how deep to look for large mappings
_FORK_MIN_ENTRIES = 600  # in large mappings (about 200 KFP steps): else no fork
_SEPARATOR = "\0"  # never in the text: the emitter escapes NUL


def allow_fork() -> None:
    """Let `dump` write large documents in two processes.  Only for a
    process with no other thread (the console script), where `os.fork`
    is safe."""
    global _FORK
    _FORK = hasattr(os, "fork")


def _pieces(data: dict, sort_keys: bool) -> tuple[list[tuple[tuple, dict]], int]:
    """(path of keys, mapping) for each piece, in document order, and the
    number of entries in large mappings."""
    pieces: list[tuple[tuple, dict]] = []
    chunked = 0

    def visit(path: tuple, mapping: dict) -> None:
        nonlocal chunked
        items = list(mapping.items())
        if sort_keys:
            items.sort(key=lambda item: item[0])
        if len(items) >= _LARGE:
            chunked += len(items)
            size = -(-len(items) // _CHUNKS)
            for start in range(0, len(items), size):
                pieces.append((path, dict(items[start : start + size])))
            return
        for key, value in items:
            if isinstance(value, dict) and value and len(path) < _DEPTH:
                visit((*path, key), value)
            else:
                pieces.append((path, {key: value}))

    visit((), data)
    return pieces, chunked


def _dump_in_two(data: dict, sort_keys: bool, width: int) -> str | None:
    try:
        pieces, chunked = _pieces(data, sort_keys)
    except TypeError:  # keys that do not sort
        return None
    if chunked < _FORK_MIN_ENTRIES:
        return None
    theirs = range(1, len(pieces), 2)

    def text(i: int) -> str:
        path, value = pieces[i]
        for key in reversed(path):
            value = {key: value}
        return _dump(value, sort_keys, width)

    texts: dict[int, str] = {}
    try:
        # An anonymous file (O_TMPFILE where the system has it, else
        # unlinked at once): nothing is left behind when pipec is killed.
        shared = tempfile.TemporaryFile(prefix="pipec-yaml-")
    except OSError:  # no writable temporary folder: one process
        return None
    fd = shared.fileno()
    try:
        try:
            pid = os.fork()
        except OSError:  # no process to spare: one process
            return None
        if pid == 0:  # the child: write its pieces, leave without any cleanup
            code = 1
            try:
                with os.fdopen(os.dup(fd), "w", encoding="utf-8") as out:
                    out.write(_SEPARATOR.join(text(i) for i in theirs))
                code = 0
            finally:
                os._exit(code)
        try:
            for i in range(0, len(pieces), 2):
                texts[i] = text(i)
        finally:
            _, status = os.waitpid(pid, 0)
        if status == 0:
            shared.seek(0)
            written = shared.read().decode("utf-8")
            texts.update(zip(theirs, written.split(_SEPARATOR)))
    finally:
        shared.close()
    out = []
    previous: tuple = ()
    for i, (path, _) in enumerate(pieces):
        piece = texts[i] if i in texts else text(i)  # else: the child failed
        shared = 0
        while shared < min(len(path), len(previous)) and path[shared] == previous[shared]:
            shared += 1
        lines = piece.split("\n", shared)
        for depth in range(shared):
            if lines[depth] != "  " * depth + f"{path[depth]}:":
                return None  # a key written otherwise than plain
        out.append(lines[shared] if shared else piece)
        previous = path
    return "".join(out)
