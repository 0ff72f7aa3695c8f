"""The house rules of docs/architecture.md, checked on the source: one-way imports, small modules.

Imports are read with ``ast`` from every module of the two packages, at any depth (an import
inside a function is still a dependency: deferring it only hides a circle), and resolved to the
project's modules. A package's ``__init__`` counts as its own module; the implicit import of a
parent package when a submodule loads is not an edge (Python guarantees that order).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("data_gen", "ml")
#: docs/architecture.md: "no module is over about 500 lines".
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to (itself, or the nearest enclosing module)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # "from pkg import sub" names a submodule when one exists, else an attribute of pkg
            targets = [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_imports_it_must():
    graph = _graph()
    # a relative import at module level, one inside a function, and an absolute one
    assert "ml.model" in graph["ml.loading"]
    assert "ml.loading" in graph["ml.cli._args"]
    assert "data_gen" in graph["ml.model"] or any(m.startswith("data_gen") for m in graph["ml.model"])


def test_the_cycle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_circles():
    cycles = _cycles(_graph())
    assert cycles == [], f"import circles: {cycles}"


def test_data_gen_never_imports_ml():
    graph = _graph()
    wrong = {m: sorted(t for t in deps if t.split(".")[0] == "ml") for m, deps in graph.items() if m.startswith("data_gen")}
    assert not any(wrong.values()), {m: d for m, d in wrong.items() if d}


def test_only_the_cli_imports_the_cli():
    graph = _graph()
    users = {m for m, deps in graph.items() if any(d == "ml.cli" or d.startswith("ml.cli.") for d in deps)}
    assert all(m == "ml.cli" or m.startswith("ml.cli.") for m in users), sorted(users)


@pytest.mark.parametrize("module", sorted(_modules()))
def test_modules_stay_small(module):
    lines = len(_modules()[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it along a seam (docs/architecture.md)"
