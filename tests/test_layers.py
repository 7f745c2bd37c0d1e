"""The layout is the pipeline: no module imports from a later stage, and no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bulkref"

# Stages in the order data flows; a module may import its own stage and earlier ones.
ORDER = [
    {"bulkref.errors", "bulkref.problems", "bulkref.files", "bulkref.redact"},
    {"bulkref.spec"},
    {"bulkref.sheets"},
    {"bulkref.mapping"},
    {"bulkref.validation"},
    {"bulkref.api"},
    {"bulkref.plan"},
    {"bulkref.apply"},
    {"bulkref.export"},
    {"bulkref.cli", "bulkref.web", "bulkref", "bulkref.__main__"},
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every bulkref module a file imports, at any depth (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("bulkref"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "bulkref":
                found.update(f"bulkref.{a.name}" for a in node.names)
            elif node.module.startswith("bulkref."):
                found.add(node.module)
    return found


def _modules() -> dict[str, set[str]]:
    return {
        _module_name(p): _imports(p)
        for p in PACKAGE.rglob("*.py")
        if "sandbox" not in p.relative_to(PACKAGE).parts
    }


def _stage(module: str) -> int | None:
    best: tuple[int, int] | None = None
    for rank, names in enumerate(ORDER):
        for name in names:
            matches = module == name or module.startswith(name + ".")
            if matches and (best is None or len(name) > best[1]):
                best = (rank, len(name))
    return None if best is None else best[0]


def test_every_module_belongs_to_a_stage() -> None:
    assert [m for m in _modules() if _stage(m) is None] == []


def test_no_module_imports_from_a_later_stage() -> None:
    offences = []
    for module, imports in _modules().items():
        here = _stage(module)
        for imported in imports:
            if imported.startswith("bulkref.sandbox") or imported == "bulkref.__version__":
                continue
            there = _stage(imported)
            if there is not None and here is not None and there > here:
                offences.append(f"{module} -> {imported}")
    assert offences == []


def _resolve(name: str, modules: dict[str, set[str]]) -> str | None:
    """``from bulkref.x import y`` names a module when y is one, else the package x."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {
        m: {r for i in imps if (r := _resolve(i, modules)) and r != m and r != "bulkref"}
        for m, imps in modules.items()
    }
    seen: dict[str, int] = {}  # 1 on the stack, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in seen:
                visit(nxt, stack)
        stack.pop()
        seen[node] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m, [])
    assert cycles == []
