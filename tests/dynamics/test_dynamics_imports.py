"""The Dataverse wire stays in ``crmsync.dynamics``: its modules import each other without a
cycle (type-checking imports included), and the engine (``crmsync.sync``) never imports httpx.
"""

from __future__ import annotations

import ast
from pathlib import Path

import crmsync

PACKAGE = Path(crmsync.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module a source file imports, wherever the import statement stands."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _graph(package: str) -> dict[str, set[str]]:
    folder = PACKAGE / package
    modules = {f"crmsync.{package}.{path.stem}": path for path in folder.glob("*.py")}
    return {name: _imports(path) & modules.keys() for name, path in modules.items()}


def test_dynamics_modules_import_each_other_without_a_cycle() -> None:
    graph = _graph("dynamics")
    graph.pop("crmsync.dynamics.__init__")
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in graph[module]:
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
    assert "crmsync.dynamics.client" not in graph["crmsync.dynamics.writes"]


def test_the_engine_imports_no_http_library() -> None:
    offenders = sorted(
        path.name
        for path in (PACKAGE / "sync").glob("*.py")
        if any(name.split(".")[0] == "httpx" for name in _imports(path))
    )
    assert offenders == []
