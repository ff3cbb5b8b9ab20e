"""The layers of ARCHITECTURE.md, checked on the import graph.

Every import of pipec's own modules counts, at module level or inside a
function (a lazy import is still an arrow), except those under
`if TYPE_CHECKING:`, which never run.  `from pipec import ir` is an arrow to
`pipec.ir`, not to the package `pipec`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"pipec": REPO / "pipec", "pipec.backends": REPO / "backends", "pipec.templates": REPO / "templates"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _typing_only(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for inner in ast.walk(node))
    return skipped


def _imports(name: str, path: Path) -> set[str]:
    """pipec modules `name` imports, and external top-level modules as
    `ext:<name>`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _typing_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name if alias.name in MODULES else "ext:" + alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            subs = [f"{module}.{a.name}" for a in node.names]
            if module in MODULES or any(s in MODULES for s in subs):
                if all(s in MODULES for s in subs):
                    found.update(subs)
                else:
                    found.add(module)
                    found.update(s for s in subs if s in MODULES)
            else:
                found.add("ext:" + module.split(".")[0])
    found.discard(name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _in(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_graph_is_read():
    assert "pipec.ir" in GRAPH["pipec.frontend.builder"]
    assert "ext:libcst" in GRAPH["pipec.frontend.sources"]
    assert len(GRAPH) > 40


def test_no_import_cycles():
    """Tarjan's strongly connected components: every arrow points down."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(root: str) -> None:
        # Iterative, so no recursion limit matters.
        work = [(root, iter(sorted(n for n in GRAPH[root] if n in GRAPH)))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(n for n in GRAPH[child] if n in GRAPH))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    assert cycles == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _in(n, "pipec.backends")))
def test_backends_read_only_the_ir(name):
    """A backend never reads libcst, the frontend, the runner, the language or
    the command line."""
    forbidden = [
        i for i in GRAPH[name]
        if i == "ext:libcst"
        or _in(i, "pipec.frontend", "pipec.runner", "pipec.language", "pipec.cli", "pipec.session",
               "pipec.compile", "pipec.compile_command", "pipec.run_command", "pipec.runs_command")
    ]
    assert forbidden == []


def test_the_ir_imports_nothing_of_pipec():
    assert [i for i in GRAPH["pipec.ir"] if not i.startswith("ext:")] == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _in(n, "pipec.templates")))
def test_templates_are_standard_library_or_their_orchestrator(name):
    """Templates are embedded into generated files: no pipec in them."""
    assert [i for i in GRAPH[name] if not i.startswith("ext:")] == []
    assert "ext:pipec" not in GRAPH[name]


def test_nothing_imports_the_command_line():
    assert [n for n, imports in GRAPH.items() if "pipec.cli" in imports] == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _in(n, "pipec.frontend")))
def test_the_frontend_does_not_reach_up(name):
    """The frontend builds the IR: it never reads the runner, the backends,
    the language or the commands."""
    assert [
        i for i in GRAPH[name]
        if _in(i, "pipec.runner", "pipec.backends", "pipec.language", "pipec.cli", "pipec.session",
               "pipec.compile_command", "pipec.run_command", "pipec.runs_command")
    ] == []


def test_the_language_and_options_do_not_read_the_frontend():
    for name in ("pipec.language", "pipec.options"):
        assert [i for i in GRAPH[name] if _in(i, "pipec.frontend", "pipec.backends")] == []
    assert [i for i in GRAPH["pipec.options"] if not i.startswith("ext:")] == []
