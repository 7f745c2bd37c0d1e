"""The layout is the pipeline: no module imports from a later stage, and no import cycles."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bulkref"

# Stages in the order data flows; a module may import its own stage and earlier ones.
ORDER = [
    {"bulkref.errors", "bulkref.problems", "bulkref.files", "bulkref.redact"},
    {"bulkref.second_process", "bulkref.serving", "bulkref.stop_signals"},
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


def _imports(source: str, module: str, is_package: bool = False, *, typing: bool = True) -> set[str]:
    """Every bulkref name ``module``'s source imports, at any depth (imports inside functions
    count too), absolute or relative; those under ``if TYPE_CHECKING:`` unless ``typing`` is
    False (they never run, so they make no cycle). ``from x import y`` gives ``x.y``:
    ``_resolve`` takes it for the module ``y`` when there is one, else for ``x``."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    nodes: list[ast.AST] = [ast.parse(source)]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                kept = [*parts[: len(parts) - (node.level - 1)], *([node.module] if node.module else [])]
                base = ".".join(kept)
            else:
                base = node.module or ""
            found.update(f"{base}.{a.name}" for a in node.names)
        elif not typing and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes.extend(node.orelse)
            continue
        nodes.extend(ast.iter_child_nodes(node))
    return {name for name in found if name.startswith("bulkref.")}


def _modules(*, typing: bool = True) -> dict[str, set[str]]:
    found = {}
    for p in PACKAGE.rglob("*.py"):
        if "sandbox" not in p.relative_to(PACKAGE).parts:
            name = _module_name(p)
            found[name] = _imports(
                p.read_text(encoding="utf-8"), name, p.name == "__init__.py", typing=typing
            )
    return found


def _resolve(name: str, modules: Iterable[str]) -> str | None:
    """The module ``name`` is, or is in: ``bulkref.x.y`` is the module y when there is
    one, else a name in the module (or package) x."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _graph(*, typing: bool = True) -> dict[str, set[str]]:
    """Module -> the bulkref modules it imports (the package itself and the sandbox aside);
    with ``typing`` False, only the imports that run."""
    modules = _modules(typing=typing)
    return {
        m: {
            r
            for i in imps
            if not i.startswith("bulkref.sandbox")
            and (r := _resolve(i, modules)) is not None
            and r not in (m, "bulkref")
        }
        for m, imps in modules.items()
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
    for module, imports in _graph().items():
        here = _stage(module)
        for imported in imports:
            there = _stage(imported)
            if there is not None and here is not None and there > here:
                offences.append(f"{module} -> {imported}")
    assert offences == []


def test_no_import_cycles() -> None:
    graph = _graph(typing=False)
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


def test_the_import_reader_sees_every_form_of_import() -> None:
    # The reader itself: a form it missed would hide a cycle (export.parallel's import of
    # its runner inside a function, written ``from bulkref.export import parallel``, did).
    source = """
import bulkref.spec.columns
from bulkref.export import parallel
from bulkref.plan.planner import Remote
from . import spool
from .. import errors
from ..sheets.template import build_workbook

def later():
    from bulkref.apply import journal

if TYPE_CHECKING:
    from bulkref.web.app import App
"""
    found = _imports(source, "bulkref.export.run")
    modules = _modules()
    assert {_resolve(name, modules) for name in found} == {
        "bulkref.spec.columns",
        "bulkref.export.parallel",
        "bulkref.plan.planner",
        "bulkref.export.spool",
        "bulkref.errors",
        "bulkref.sheets.template",
        "bulkref.apply.journal",
        "bulkref.web.app",
    }
    assert "bulkref.web.app.App" not in _imports(source, "bulkref.export.run", typing=False)
    # In a package's __init__, a relative import starts from the package itself.
    assert _imports("from .planner import plan", "bulkref.plan", is_package=True) == {
        "bulkref.plan.planner.plan"
    }
