"""The layout stays as docs/architecture.md draws it: no import loops between modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shipper", "collector", "logpipe")


def module_name(path: Path) -> str:
    """`collector/parse/level.py` -> `collector.parse.level`; a package is its folder."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of our packages and the modules of ours it imports, anywhere in it
    (inside functions and TYPE_CHECKING blocks too: a loop dodged there is still a loop)."""
    paths = [p for name in PACKAGES for p in (ROOT / name).rglob("*.py")]
    modules = {module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    found.add(target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {t for t in found if t in modules and t != name}
    return graph


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a circle."""
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(graph[name])
        reach[start] = seen
    groups = {frozenset(m for m in graph if m in reach[s] and s in reach[m]) for s in graph}
    return sorted(sorted(g) for g in groups if len(g) > 1)


def test_no_import_loops() -> None:
    """No module of our packages imports, through others, a module importing it."""
    assert loops(import_graph()) == []


def test_a_loop_is_found() -> None:
    """The loop finder itself reports two modules that import each other, through a third."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert loops(graph) == [["a", "b", "c"]]
