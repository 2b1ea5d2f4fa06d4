"""No import circle anywhere in keeprouter/: the module import graph must be acyclic.

An edge is every `import` / `from ... import` of a keeprouter module found anywhere in a module's
source: at the top, inside functions (a lazy import is how a circle is usually hidden) and inside
`if TYPE_CHECKING:` blocks (a circle there still couples the two modules; it only does not crash).
`from pkg import name` points at the submodule `pkg.name` when there is one, else at `pkg` itself;
relative imports are resolved against the importing module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "keeprouter"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module(p): p for p in PKG.rglob("*.py")}


def _targets(module: str, path: Path) -> set[str]:
    """The keeprouter modules `module` imports."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for a in node.names:
                sub = f"{source}.{a.name}"
                out.add(sub if sub in MODULES else source)
    return {t for t in out if t in MODULES and t != module}


def graph() -> dict[str, set[str]]:
    return {m: _targets(m, p) for m, p in MODULES.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None when the graph is acyclic (iterative depth-first)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(edges):
        if root in state:
            continue
        path = [root]
        todo = [iter(sorted(edges[root]))]
        state[root] = 1
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                todo.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                todo.append(iter(sorted(edges.get(nxt, ()))))
    return None


def test_keeprouter_has_no_import_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_graph_sees_relative_lazy_and_type_checking_imports() -> None:
    """The checker itself: each kind of import it must see makes an edge, and a circle is found."""
    edges = graph()
    assert "keeprouter.gateway.gateway" in edges["keeprouter.gateway"]  # a package's re-exports
    assert "keeprouter.store.postgres" in edges["keeprouter.store"]  # imported inside a function
    assert "keeprouter.observe.metrics" in edges["keeprouter.gateway.settle"]  # under TYPE_CHECKING
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
