"""The package has no import cycle.

Every ``import`` of one ``asgi_cache`` module by another counts, including
those under ``if TYPE_CHECKING:`` and inside functions: a cycle that only the
type checker or a late import hides still ties two modules into one, so
neither can be read, tested or replaced on its own.  Importing a submodule also
runs its parent packages' ``__init__``; those implicit imports are left out,
since an ``__init__`` only re-exports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import asgi_cache

PACKAGE = Path(asgi_cache.__file__).parent


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    modules: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    found.add(submodule)
                elif base in modules:
                    found.add(base)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported(name, path, modules) for name, path in modules.items()}


def cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A chain of imports that leads from ``start`` back to it, if there is one."""
    paths = [[start]]
    seen = {start}
    while paths:
        path = paths.pop()
        for target in sorted(graph[path[-1]]):
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                paths.append([*path, target])
    return None


def test_the_import_graph_sees_the_package() -> None:
    graph = import_graph()
    assert "asgi_cache.memo" in graph["asgi_cache.cache"]
    assert "asgi_cache.stores.base" in graph["asgi_cache.stores.memory"]


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    cycles = [cycle for name in graph if (cycle := cycle_from(name, graph)) is not None]
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles)
