"""The sandbox stands on its own: it imports nothing from the rest of bulkref, and the
rest of bulkref reaches it only to start it (``--sandbox``) or to register its command."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bulkref"
SANDBOX = "bulkref.sandbox"
# Who may start the sandbox: the target (``--sandbox``) and the CLI (``bulkref sandbox``).
MAY_USE_SANDBOX = ("bulkref.api.target", "bulkref.cli")
# Process plumbing the sandbox shares with the rest (serving an app with uvicorn, SIGTERM
# as Ctrl-C): it knows nothing of Partner Center or of the client, and imports nothing of bulkref.
PLUMBING = ("bulkref.serving", "bulkref.stop_signals")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute or relative, at any depth, TYPE_CHECKING
    included), plus ``"pkg.mod:attr"``-style strings naming a bulkref module, as lazy
    command tables use."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.split(":")[0]
            if text.startswith("bulkref.") and text.replace(".", "").replace("_", "").isalnum():
                found.add(text)
    return {m for m in found if m == "bulkref" or m.startswith("bulkref.")}


def modules() -> dict[str, set[str]]:
    return {module_name(p): imported(p) for p in sorted(PACKAGE.rglob("*.py"))}


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_import_scan_sees_what_it_must() -> None:
    # The scan itself: the known users of the sandbox are found, or the test below proves nothing.
    graph = modules()
    assert any(within(m, SANDBOX) for m in graph["bulkref.api.target"])
    assert any(within(m, SANDBOX) for m in graph["bulkref.cli.main"])
    assert "bulkref.sandbox.rules" in graph["bulkref.sandbox.odata"]
    assert len([m for m in graph if within(m, SANDBOX)]) > 10


def test_the_sandbox_imports_nothing_from_the_rest_of_bulkref() -> None:
    offenders = {
        module: sorted(m for m in uses if not within(m, SANDBOX) and not _plumbing(m))
        for module, uses in modules().items()
        if within(module, SANDBOX)
    }
    offenders = {module: uses for module, uses in offenders.items() if uses}
    assert offenders == {}, f"the sandbox must stand on its own: {offenders}"


def test_only_the_target_and_the_cli_import_the_sandbox() -> None:
    offenders = sorted(
        module
        for module, uses in modules().items()
        if not within(module, SANDBOX)
        and not any(within(module, allowed) for allowed in MAY_USE_SANDBOX)
        and any(within(m, SANDBOX) for m in uses)
    )
    assert offenders == [], f"only {', '.join(MAY_USE_SANDBOX)} may import the sandbox: {offenders}"


def _plumbing(module: str) -> bool:
    return any(within(module, shared) for shared in PLUMBING)


def test_the_plumbing_the_sandbox_shares_imports_nothing_of_bulkref() -> None:
    graph = modules()
    assert all(shared in graph for shared in PLUMBING)
    assert {shared: sorted(graph[shared]) for shared in PLUMBING} == {shared: [] for shared in PLUMBING}
