"""The source tree: reading, parsing and locating the modules pipec follows.

Every module is parsed once with libcst.  What libcst's metadata providers
would compute for every node is computed here on demand, by cheaper means:

- positions: code generation that records the range of each node
  (`_Layout`), run a top-level statement at a time and only as far as the
  nodes asked about, whose lines and columns alone are worked out;
  identical to libcst's `PositionProvider`;
- qualified names: the module's import table (`symbols.bindings`), the
  binding in effect where a name is used (`qualified_names`);
- scopes: `scan.ModuleScan` and `scan.FreeNames`.

Paths kept here are relative to the source root (POSIX), so nothing machine
specific reaches the IR or the diagnostics.  The tree records every file it
read and every path it looked for (`SourceTree.inputs`): the frontend's
result depends on nothing else, which is what its cache checks.
"""

from __future__ import annotations

import ast
import bisect
import hashlib
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from itertools import accumulate
from typing import Iterator

import libcst as cst
from libcst._nodes.internal import CodegenState

from pipec import ir
from pipec.diagnostics import Diagnostics
from pipec.frontend import depth
from pipec.frontend.bindings import bindings
from pipec.frontend.scan import ModuleScan, Scopes, dotted, normalise_names

PIPEC_MODULES = ("pipec", "pipec.language")

_NEWLINE = re.compile(r"\r\n?|\n")


class _Recorder:
    """`record_syntactic_position` without a generator per use."""

    __slots__ = ("state", "node", "start_node", "end_node", "start")

    def __init__(self, state, node, start_node, end_node) -> None:
        self.state = state
        self.node = node
        self.start_node = start_node
        self.end_node = end_node

    def __enter__(self) -> None:
        self.start = len(self.state.tokens)

    def __exit__(self, *exc) -> None:
        state = self.state
        start = self.start
        if self.start_node is not None:
            start = state.span(self.start_node)[0]
        end = (
            state.span(self.end_node)[1]
            if self.end_node is not None
            else len(state.tokens)
        )
        state.spans[id(self.node)] = (start, end)


class _OffsetState(CodegenState):
    """Code generation that records each node's range, with the same rules
    as libcst's `PositionProvidingCodegenState`: `spans` holds the syntactic
    range of the nodes that record one, `inclusive` every node's range with
    its whitespace; keyed by `id(node)`.  Ranges are in tokens (indices
    into `tokens`), turned into character offsets by `_Layout`: counting
    characters as tokens are added would cost a call per token."""

    def __init__(self, default_indent: str, default_newline: str) -> None:
        super().__init__(default_indent=default_indent, default_newline=default_newline)
        self.add_token = self.tokens.append  # type: ignore[method-assign]
        self.stack: list[int] = []
        self.spans: dict[int, tuple[int, int]] = {}
        self.inclusive: dict[int, tuple[int, int]] = {}  # with owned whitespace

    def before_codegen(self, node: cst.CSTNode) -> None:
        self.stack.append(len(self.tokens))

    def after_codegen(self, node: cst.CSTNode) -> None:
        self.inclusive[id(node)] = (self.stack.pop(), len(self.tokens))

    def record_syntactic_position(  # type: ignore[override]
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> _Recorder:
        return _Recorder(self, node, start_node, end_node)

    def span(self, node: cst.CSTNode) -> tuple[int, int]:
        """The syntactic range of `node` if it records one, else the
        range with its whitespace (as `PositionProvider`)."""
        key = id(node)
        return self.spans.get(key) or self.inclusive[key]


class _Layout:
    """Where the nodes of a module are: offsets, lines, top-level statements.

    Code is generated one top-level statement at a time, in order, only as
    far as the nodes asked about: the statements after the last one asked
    about are never generated (in a pipeline module, typically its
    `add_step` lines, which nothing locates unless a diagnostic does).  A
    node's position depends only on the code before and in it, so
    positions are the same as from the whole module's code."""

    def __init__(self, tree: cst.Module) -> None:
        self._tree = tree
        self._state = state = _OffsetState(tree.default_indent, tree.default_newline)
        self.syntactic = state.spans
        self._inclusive = state.inclusive
        self._next = 0  # the next top-level statement to generate
        self._starts: list[int] = []  # token index of each statement generated
        self.complete = False  # every statement and the footer generated
        # Of the generated tokens (all of them between public calls):
        self.offsets = [0]  # character offset of each token index
        self.starts: list[int] = []  # character offset of each statement
        self.newlines: list[int] = []  # offset just past each newline
        self._measured = 0  # tokens counted into the three lists above
        self._cr = False  # the counted code ends with "\r"
        for line in tree.header:  # Module._codegen_impl, a statement at a time
            line._codegen(state)
        if not tree.body:
            self._generate()
        self._measure()

    def _generate(self) -> None:
        """Generate the next top-level statement; after the last, the
        module's footer (and, for an empty module, its newline)."""
        tree, state = self._tree, self._state
        if self._next < len(tree.body):
            self._starts.append(len(state.tokens))
            tree.body[self._next]._codegen(state)
            self._next += 1
        if self._next == len(tree.body):
            for line in tree.footer:
                line._codegen(state)
            if tree.has_trailing_newline and not state.tokens:
                state.add_token(state.default_newline)
            self.complete = True

    def _measure(self) -> None:
        """Count the tokens generated since the last call into `offsets`,
        `starts` and `newlines`."""
        tokens = self._state.tokens
        new = tokens[self._measured :]
        self._measured = len(tokens)
        base = self.offsets.pop()  # re-added as accumulate's initial value
        self.offsets.extend(accumulate(map(len, new), initial=base))
        self.starts.extend(self.offsets[i] for i in self._starts[len(self.starts) :])
        # Positions count the final newline even when the module has none
        # (libcst drops it after positions are computed): it is counted here.
        chunk = "".join(new)
        found = [base + match.end() for match in _NEWLINE.finditer(chunk)]
        if self._cr and chunk.startswith("\n"):
            # "\r" ending the last chunk and "\n" starting this one: one newline
            self.newlines[-1] = found.pop(0)
        self.newlines.extend(found)
        if chunk:
            self._cr = chunk.endswith("\r")

    def _reach(self, key: int) -> None:
        """Generate the code as far as node `key` (all of it when `key` is
        no node of the module)."""
        if key in self._inclusive or self.complete:
            return
        while key not in self._inclusive and not self.complete:
            self._generate()
        self._measure()

    def position(self, node: cst.CSTNode) -> tuple[int, int, int, int]:
        """`node`'s start and end as `PositionProvider` gives them: (line,
        column, end line, end column), lines 1-based, columns 0-based.
        `range` and the lines in one call: every span of the IR asks."""
        start, end = self.range(node)
        newlines = self.newlines
        line = bisect.bisect_right(newlines, start)
        end_line = bisect.bisect_right(newlines, end)
        return (
            line + 1,
            start - (newlines[line - 1] if line else 0),
            end_line + 1,
            end - (newlines[end_line - 1] if end_line else 0),
        )

    def range(self, node: cst.CSTNode) -> tuple[int, int]:
        """`node`'s offsets, as `PositionProvider` positions it."""
        key = id(node)
        self._reach(key)
        start, end = self.syntactic.get(key) or self._inclusive[key]
        return self.offsets[start], self.offsets[end]

    def inclusive(self, node: cst.CSTNode) -> tuple[int, int]:
        """`node`'s offsets with the whitespace it owns."""
        key = id(node)
        self._reach(key)
        start, end = self._inclusive[key]
        return self.offsets[start], self.offsets[end]

    def statement_of(self, node: cst.CSTNode) -> int:
        """The number of the top-level statement that contains `node`."""
        start = self.range(node)[0]
        return max(bisect.bisect_right(self.starts, start) - 1, 0)

    def source(self, start: int, end: int) -> str:
        """The module's code between two offsets from `range` / `inclusive`
        (as `tree.code[start:end]`)."""
        tokens, offsets = self._state.tokens, self.offsets
        if self.complete and not self._tree.has_trailing_newline and tokens:
            end = min(end, offsets[-1] - len(tokens[-1]))  # the dropped newline
        first = bisect.bisect_left(offsets, start)
        return "".join(tokens[first : bisect.bisect_left(offsets, end, first)])


@dataclass
class SourceModule:
    """One parsed module of the source tree."""

    name: str  # dotted module name from the source root
    path: str  # POSIX path relative to the source root
    is_package: bool
    tree: cst.Module
    text: str = field(default="", repr=False)  # the source, == tree.code
    symbols: dict | None = field(default=None, repr=False)  # see symbols.bindings
    _layout: _Layout | None = field(default=None, repr=False)
    _scan: ModuleScan | None = field(default=None, repr=False)
    _scopes: Scopes | None = field(default=None, repr=False)
    _index: dict[int, int] | None = field(default=None, repr=False)
    _spans: dict[int, ir.Span] = field(default_factory=dict, repr=False)
    cache: dict = field(default_factory=dict, repr=False)  # per-module memos

    @property
    def layout(self) -> _Layout:
        if self._layout is None:
            self._layout = _Layout(self.tree)
        return self._layout

    @property
    def scan(self) -> ModuleScan:
        if self._scan is None:
            self._scan = ModuleScan.of(self.tree)
        return self._scan

    @property
    def scopes(self) -> Scopes:
        if self._scopes is None:
            self._scopes = Scopes(self.absolute)
        return self._scopes

    def span(self, node: cst.CSTNode) -> ir.Span:
        """Where `node` is; computed once per node (the code of every step
        locates the definitions and imports it carries)."""
        key = id(node)
        span = self._spans.get(key)
        if span is None:
            line, column, end_line, end_column = self.layout.position(node)
            span = ir.Span(self.path, line, column + 1, end_line, end_column + 1)
            self._spans[key] = span
        return span

    def offset(self, node: cst.CSTNode) -> int:
        return self.layout.range(node)[0]

    def code(self, node: cst.CSTNode) -> str:
        if type(node) is cst.Name and not node.lpar and not node.rpar:
            return node.value  # the common annotation: a Name's code is its value
        return self.tree.code_for_node(node)

    def statement_index(self, statement: cst.CSTNode) -> int | None:
        """The number of a top-level statement, by identity."""
        if self._index is None:
            self._index = {id(s): i for i, s in enumerate(self.tree.body)}
        return self._index.get(id(statement))

    def qualified_names(
        self, node: cst.CSTNode, at: int | None = None
    ) -> tuple[str, ...]:
        """What the Name / Attribute chain `node` refers to, for module-level
        code in top-level statement `at` (default: the one containing
        `node`): the binding of its first name in effect there, i.e. the
        last one by an earlier statement.  `at=-1`: code that runs after
        the module has loaded (a function body), which sees the last
        binding of the module."""
        path = dotted(node)
        if not path:
            return ()
        head, _, rest = path.partition(".")
        if at is None:
            at = self.layout.statement_of(node)
        names = self.module_qualified(head, at)
        return tuple(sorted(f"{q}.{rest}" if rest else q for q in names))

    def module_qualified(self, head: str, at: int = -1) -> tuple[str, ...]:
        """Qualified names of module-level name `head` as seen from
        statement `at` (-1: after the module has loaded)."""
        found = bindings(self).get(head, [])
        if at >= 0:
            found = [b for b in found if b.index < at]
        if not found:
            return ()
        last = found[-1].index
        names: list[str] = []
        for binding in found:
            if binding.index != last:
                continue
            if binding.is_import:
                names.append(_import_qualified(binding, head))
            elif binding.node is binding.statement and not isinstance(
                binding.node, (cst.FunctionDef, cst.ClassDef)
            ):
                # bound inside an if / try / with block: any import there
                names.extend(self._block_imports(head, last) or [head])
            else:
                names.append(head)
        return tuple(names)

    def any_qualified(self, head: str) -> tuple[str, ...]:
        """Every qualified name module-level `head` may have (all bindings)."""
        names = []
        for binding in bindings(self).get(head, []):
            if binding.is_import:
                names.append(_import_qualified(binding, head))
            else:
                names.extend(self._block_imports(head, binding.index) or [head])
        return tuple(sorted(set(names)))

    def _block_imports(self, head: str, index: int) -> list[str]:
        from pipec.frontend.scan import import_bindings

        found = []
        for site in self.scan.imports:
            if site.index == index and not site.scopes:
                for name, qualified in import_bindings(site.node, self.absolute):
                    if name == head:
                        found.append(qualified)
        return found

    def pipec_name(self, node: cst.CSTNode, at: int | None = None) -> str | None:
        """'step' when `node` resolves to `pipec.step` (however imported)."""
        return pipec_attr(self.qualified_names(node, at))

    @property
    def package(self) -> str:
        """The package relative imports of this module start from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]

    def absolute(self, level: int, name: str) -> str:
        """The absolute module name of `from <level dots><name> import ...`."""
        if level == 0:
            return name
        parts = self.package.split(".") if self.package else []
        if level - 1 > len(parts) or (
            level > 1 and level - 1 == len(parts) and not name
        ):
            return "." * level + name  # above the source root: no module of the tree
        base = parts[: len(parts) - (level - 1)]
        return ".".join([*base, name] if name else base)

    def imports_pipec(self) -> bool:
        if "imports_pipec" not in self.cache:
            self.cache["imports_pipec"] = self._imports_pipec()
        return self.cache["imports_pipec"]

    def _imports_pipec(self) -> bool:
        for site in self.scan.imports:
            node = site.node
            if isinstance(node, cst.Import):
                if any(_is_pipec(dotted(alias.name)) for alias in node.names):
                    return True
            elif (
                not node.relative
                and node.module is not None
                and _is_pipec(dotted(node.module))
            ):
                return True
        return False


def _import_qualified(binding, head: str) -> str:
    if binding.attr is None:  # import a.b [as c]
        return binding.target if binding.alias.asname is not None else head
    return f"{binding.target}.{binding.attr}" if binding.target else binding.attr


def pipec_attr(qualified: tuple[str, ...]) -> str | None:
    for name in qualified:
        module, _, attr = name.rpartition(".")
        if module in PIPEC_MODULES:
            return attr
    return None


def _is_pipec(module: str) -> bool:
    return module == "pipec" or module.startswith("pipec.")


def _unvalidated(node: cst.CSTNode) -> None:
    pass


def parse_module(text: str) -> cst.Module:
    """`cst.parse_module(text)` without validating each node as it is built.

    libcst validates every node in its constructor (`CSTNode.__post_init__`
    calls `_validate`), also the nodes its parser builds from source it has
    just accepted, where there is nothing to find; its own comment there
    notes the cost.  That is a fifth of parsing a large module, so the hook
    is off while the parser builds the tree: the tree is the same (the test
    suite compares both on every module it has), and nodes pipec builds
    itself are still validated.  Identifiers come out NFKC-normalised, as
    Python reads them (`scan.normalise_names`)."""
    hook = cst.CSTNode.__post_init__
    cst.CSTNode.__post_init__ = _unvalidated  # type: ignore[method-assign]
    try:
        tree = cst.parse_module(text)
    finally:
        cst.CSTNode.__post_init__ = hook  # type: ignore[method-assign]
    return normalise_names(tree, text)


def _syntax_error(
    path: str, text: str, error: cst.ParserSyntaxError
) -> tuple[ir.Span, str]:
    """Where and what: CPython's parser points closer to the mistake than
    libcst's, so ask it first (`ast.parse` compiles nothing and runs
    nothing); fall back to libcst's position for syntax CPython accepts."""
    try:
        ast.parse(text, filename=path)
    except SyntaxError as cpython:
        if cpython.lineno:
            return (
                ir.Span(path, cpython.lineno, max(cpython.offset or 1, 1)),
                cpython.msg,
            )
    except (ValueError, RecursionError):
        pass
    return (
        ir.Span(path, max(error.editor_line, 1), max(error.editor_column, 1)),
        error.message,
    )


def _late_future_import(module: SourceModule) -> cst.ImportFrom | None:
    """The first `from __future__ import` that CPython refuses: one after
    any statement but the docstring and other such imports, or in a
    function or class."""
    allowed = 0  # the statements before this one are all allowed
    body = module.tree.body
    if body and _is_docstring(body[0]):
        allowed = 1
    while (
        allowed < len(body)
        and isinstance(body[allowed], cst.SimpleStatementLine)
        and all(_is_future(s) for s in body[allowed].body)
    ):
        allowed += 1
    for site in module.scan.imports:
        if _is_future(site.node) and (site.scopes or site.index >= allowed):
            return site.node
    return None


def _is_future(node: cst.CSTNode) -> bool:
    return (
        isinstance(node, cst.ImportFrom)
        and not node.relative
        and node.module is not None
        and dotted(node.module) == "__future__"
    )


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


class SourceTree:
    """The modules under one source root, parsed on demand and cached.

    `inputs` records what the tree looked at, in order: for each file read,
    its path and the SHA-256 of its bytes; for each path looked for, whether
    it was there."""

    def __init__(self, root: Path, diagnostics: Diagnostics) -> None:
        self.root = root
        self.diagnostics = diagnostics
        self._modules: dict[str, SourceModule | None] = {}
        self._files: dict[str, Path | None] = {}
        self._missing: dict[str, bool] = {}
        self.inputs: dict[str, str] = {}

    def relative(self, file: Path) -> str:
        return file.resolve().relative_to(self.root).as_posix()

    def module_name(self, file: Path) -> str:
        parts = list(Path(self.relative(file)).with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    def _probe(self, kind: str, path: Path) -> bool:
        found = path.is_dir() if kind == "dir" else path.is_file()
        key = f"{kind}:{path.relative_to(self.root).as_posix()}"
        self.inputs.setdefault(key, "1" if found else "0")
        return found

    def file_for(self, name: str) -> Path | None:
        """The file of module `name` in this tree, or None."""
        if name in self._files:
            return self._files[name]
        found = None
        if name and "" not in name.split("."):
            base = self.root.joinpath(*name.split("."))
            for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
                if self._probe("file", candidate):
                    found = candidate
                    break
        self._files[name] = found
        return found

    def contains(self, name: str) -> bool:
        return self.file_for(name) is not None

    def missing(self, name: str) -> bool:
        """`name` belongs to the tree (its top-level package is here) but
        no such module exists: an import pipec cannot follow.  Asked once
        per name (the code of every step that uses an import asks)."""
        if name not in self._missing:
            top = self.root / name.split(".")[0]
            self._missing[name] = not self.contains(name) and (
                self._probe("dir", top) or self._probe("file", top.with_suffix(".py"))
            )
        return self._missing[name]

    def module(self, name: str) -> SourceModule | None:
        """The parsed module `name`, or None (not in the tree or unreadable)."""
        if name not in self._modules:
            file = self.file_for(name)
            self._modules[name] = self.parse(file) if file else None
        return self._modules[name]

    def read(self, file: Path) -> str:
        """The text of `file` with universal newlines, decoded as Python
        decodes it (UTF-8, or the encoding a PEP 263 `coding:` comment
        declares), its bytes' digest recorded in `inputs`."""
        key = f"read:{self.relative(file)}"
        try:
            data = file.read_bytes()
        except OSError:
            self.inputs[key] = "!"
            raise
        self.inputs[key] = hashlib.sha256(data).hexdigest()
        encoding = "utf-8"
        if b"coding" in data[:400]:  # the declaration is on line 1 or 2
            try:
                encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            except SyntaxError as error:  # an unknown or conflicting encoding
                raise UnicodeError(error.msg) from None
            if encoding == "utf-8-sig":
                encoding = "utf-8"  # the BOM is kept, as libcst expects it
        return io.TextIOWrapper(io.BytesIO(data), encoding=encoding).read()

    def parse(self, file: Path) -> SourceModule | None:
        path = self.relative(file)
        try:
            text = self.read(file)
        except (OSError, UnicodeError) as error:
            detail = (
                getattr(error, "strerror", None)
                or getattr(error, "reason", None)
                or (str(error) if type(error) is UnicodeError else None)
                or type(error).__name__
            )
            self.diagnostics.error(
                "PC002", ir.Span(path, 1, 1), path=path, detail=detail
            )
            return None
        deep = depth.check(text)
        if deep is not None:
            self.diagnostics.error(
                "PC001" if deep.cpython else "PC005",
                ir.Span(path, deep.line, deep.col),
                detail=deep.message,
            )
            return None
        try:
            tree = parse_module(text)
        except cst.ParserSyntaxError as error:
            span, detail = _syntax_error(path, text, error)
            self.diagnostics.error("PC001", span, detail=detail)
            return None
        name = self.module_name(file)
        module = SourceModule(name, path, file.name == "__init__.py", tree, text)
        late = _late_future_import(module) if "__future__" in text else None
        if late is not None:
            self.diagnostics.error(
                "PC001",
                module.span(late),
                detail="from __future__ imports must occur at the beginning of the file",
            )
            return None
        self._modules.setdefault(name, module)
        return module

    def loaded(self) -> Iterator[SourceModule]:
        for module in self._modules.values():
            if module is not None:
                yield module
