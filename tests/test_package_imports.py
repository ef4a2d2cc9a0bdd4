"""The import graph of the CLI, its commands and the app: no cycles, one direction between cli and commands.

Read from the source with ``ast`` (nothing is imported): an edge is a module-level import
(imports inside functions and ``if TYPE_CHECKING:`` blocks are how a module defers a dependency,
so they are left out), except for the cli/commands rule, which counts every import.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stylestudio"
CHECKED = ("stylestudio.cli", "stylestudio.commands", "stylestudio.app")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module_level_only: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements run when the module is imported (or all of them)."""
    if not module_level_only:
        return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    found: list = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def import_graph(module_level_only: bool = True) -> dict[str, set[str]]:
    """stylestudio module → the stylestudio modules it imports."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets: set[str] = set()
        for node in _imports(tree, module_level_only):
            if isinstance(node, ast.Import):
                bases = [a.name for a in node.names]
                names: list[str] = []
            else:
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[: len(here) - (node.level - 1)]
                    bases = [".".join(here + ([node.module] if node.module else []))]
                else:
                    bases = [node.module or ""]
                names = [a.name for a in node.names]
            for base in bases:
                submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in files]
                targets.update(submodules)
                if base in files and len(submodules) < max(1, len(names)):
                    targets.add(base)  # names from the module itself (or a plain ``import base``)
        graph[name] = {t for t in targets if t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def _checked(module: str) -> bool:
    return any(module == c or module.startswith(c + ".") for c in CHECKED)


def test_the_graph_sees_real_imports():
    """The reader resolves relative, parent-relative and submodule imports (else the tests below prove nothing)."""
    graph = import_graph()
    assert "stylestudio.commands.common" in graph["stylestudio.cli"]
    assert "stylestudio.app.engine_client" in graph["stylestudio.app.main_window"]
    assert "stylestudio.engine.document" in graph["stylestudio.app.context"]  # from ..engine.document import …
    assert "stylestudio.app.window_menus" in graph["stylestudio.app.main_window"]  # from . import window_menus
    # function-level imports are not module-level edges, but are seen when asked for
    assert "stylestudio.app.main" not in graph["stylestudio.cli"]
    assert "stylestudio.app.main" in import_graph(module_level_only=False)["stylestudio.cli"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_cli_commands_and_app_have_no_import_cycle():
    found = [c for c in cycles(import_graph()) if any(_checked(m) for m in c)]
    assert not found, f"import cycles: {found}"


def test_no_command_module_imports_the_cli():
    """cli imports commands (the registry, the shared helpers in commands.common), never the reverse —
    not even inside a function, as the photo hook once did through ``cli.SOURCE_HOOKS``."""
    graph = import_graph(module_level_only=False)
    back = sorted(m for m, targets in graph.items()
                  if m.startswith("stylestudio.commands") and "stylestudio.cli" in targets)
    assert not back, f"command modules importing stylestudio.cli: {back}"
