"""The engine's modules import each other without cycles.

A cycle works only as long as every module in it reads the others' names late enough; the next
import moved to the top of a file turns it into an ImportError (or a half-initialised module)
that depends on which module happened to be imported first. So the engine's import graph, read
from the source (module-level imports only: an import inside a function runs when called and is
the way to reach *up* a layer), must have none. The test names a cycle it finds.
"""
from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "stylestudio" / "engine"
PACKAGE = "stylestudio.engine"


def module_name(path: Path) -> str:
    rel = path.relative_to(ENGINE.parent.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def engine_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ENGINE.rglob("*.py")) if "__pycache__" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def module_level_imports(tree: ast.Module):
    """Import statements run when the module is imported: at top level, in classes, if/try
    blocks (not ``if TYPE_CHECKING``), never inside functions."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node):
            todo.extend(node.orelse)
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.ClassDef, ast.For, ast.While)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, field, []))
        elif isinstance(node, ast.ExceptHandler):
            todo.extend(node.body)


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The engine modules ``name`` imports at module level (a ``from pkg import sub`` of a
    submodule counts as that submodule; any other name as the package itself)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in module_level_imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin for a in node.names]
        out.update(t for t in targets if t in known and t != name)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a list of modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def engine_graph() -> dict[str, set[str]]:
    mods = engine_modules()
    known = set(mods)
    return {n: imported_modules(n, p, known) for n, p in mods.items()}


def test_no_import_cycle_among_engine_modules():
    cycle = find_cycle(engine_graph())
    assert cycle is None, "import cycle in the engine: " + " → ".join(cycle or [])


def test_the_cycle_finder_finds_cycles_and_reads_relative_imports():
    """The checker itself: a cycle is reported with its path, relative imports resolve."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    g = engine_graph()
    assert f"{PACKAGE}.resources" in g[f"{PACKAGE}.render"]  # from .resources import Resources
    assert f"{PACKAGE}.resources" in g[f"{PACKAGE}.regions.catalog"]  # from ..resources import …
    assert f"{PACKAGE}.regions.fit" in g[f"{PACKAGE}.edits.transfer"]
    # a function-level import is no edge: the session loads models lazily
    assert all(not m.startswith(f"{PACKAGE}.stylegan2") for m in g[f"{PACKAGE}.render"])
