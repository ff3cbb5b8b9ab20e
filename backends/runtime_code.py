"""Runtime templates, embedded with only the definitions the generated code uses.

A KFP component carries its own copy of the runtime, so a pipeline of a
thousand steps carries a thousand copies: a step with no retries, no packages
and no helper modules should not carry the code for them.  `select` reduces
the templates to the top-level statements that the generated code reaches:
the statements defining a name it uses, then, transitively, those defining a
name a kept statement uses.  Kept statements stay in template order, each
with the comment lines just above it and the blank lines before it (the most
blank lines of any dropped statement since the last kept one), so the result
is laid out as black lays it out, like the templates themselves.

Conventions the templates follow for this to be exact: one imported name
per import statement, and no top-level statement with a side effect
(a statement that defines no name is always kept).
"""

from __future__ import annotations

import ast
import builtins
import functools
import io
import re
import tokenize
from dataclasses import dataclass

from pipec.backends.base import template_code

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class _Statement:
    text: str  # with its comment lines above, no blank line around
    gap: int  # blank lines before it in the template
    bare: str  # without comments and docstrings
    defines: frozenset[str]
    uses: frozenset[str]
    is_import: bool = False


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    return {t.id for t in targets if isinstance(t, ast.Name)}


@functools.lru_cache(maxsize=None)
def _statements(name: str) -> tuple[_Statement, ...]:
    """Template `name`'s top-level statements, after its docstring."""
    code = template_code(name)
    lines = code.split("\n")
    tree = ast.parse(code)
    out: list[_Statement] = []
    previous_end = 0  # line number (1-based) where the previous statement ends
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        while first - 1 > previous_end and lines[first - 2].startswith("#"):
            first -= 1  # the comment lines just above belong to the statement
        gap = sum(1 for line in lines[previous_end : first - 1] if not line.strip())
        uses = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        text = "\n".join(lines[first - 1 : node.end_lineno])
        bare = _strip("\n".join(lines[node.lineno - 1 : node.end_lineno]))
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        out.append(_Statement(text, gap, bare, frozenset(_defined(node)), frozenset(uses), is_import))
        previous_end = node.end_lineno
    return tuple(out)


def _strip(code: str) -> str:
    """`code` (one top-level statement) without its comments and the
    docstrings of its functions and classes, as black would lay it out."""
    lines = code.split("\n")
    drop: set[int] = set()  # 0-based line numbers
    for node in ast.walk(ast.parse(code)):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                end = first.end_lineno
                while end < len(lines) and not lines[end].strip():
                    end += 1  # no blank line left at the start of the body
                drop.update(range(first.lineno - 1, end))
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            if lines[row - 1][:col].strip():
                lines[row - 1] = lines[row - 1][:col].rstrip()
            else:
                drop.add(row - 1)
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


@functools.lru_cache(maxsize=None)
def _defined_names(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(n for name in names for s in _statements(name) for n in s.defines)


def defined_names(names: tuple[str, ...]) -> frozenset[str]:
    """Every top-level name the templates `names` bind (functions, classes,
    imports, constants): names a generated file must not give anything else."""
    return _defined_names(names)


def identifiers(code: str) -> set[str]:
    """Every identifier-like word of `code` (a superset of the names it
    uses: words in its strings too, which can only keep more)."""
    return set(_IDENTIFIER.findall(code))


def select(
    names: tuple[str, ...], used: set[str], strip: bool = False, after: tuple[str, ...] = ()
) -> list[str]:
    """The code of each template in `names` (in order; an empty one left
    out) reduced to what code using the names `used` (its `identifiers`)
    reaches; with `strip`, without comments and docstrings.  An import that
    an earlier template of `names`, or one of the templates `after` (embedded
    whole in the same file), already makes is not repeated: a generated file
    binds each name once."""
    return list(_select(names, frozenset(used) & _defined_names(names), strip, after))


def _imports(names: tuple[str, ...]) -> set[str]:
    return {s.bare for name in names for s in _statements(name) if s.is_import}


@functools.lru_cache(maxsize=None)
def _select(
    names: tuple[str, ...], roots: frozenset[str], strip: bool = False, after: tuple[str, ...] = ()
) -> tuple[str, ...]:
    statements = [s for name in names for s in _statements(name)]
    reached = set(roots)
    pending = list(roots)
    while pending:
        name = pending.pop()
        for statement in statements:
            if name in statement.defines:
                new = statement.uses - reached - _BUILTINS
                reached |= new
                pending.extend(new)
    codes = []
    imported = _imports(after)
    for name in names:
        parts: list[str] = []
        gap = 0
        for statement in _statements(name):
            gap = max(gap, statement.gap)
            if statement.defines and not statement.defines & reached:
                continue
            if statement.is_import:
                if statement.bare in imported:
                    continue
                imported.add(statement.bare)
            text = statement.bare if strip else statement.text
            parts.append(("\n" * (gap + 1) if parts else "") + text)
            gap = 0
        if parts:
            codes.append("".join(parts))
    return tuple(codes)
