"""The public API: what __all__ names exists, and the "From Python" examples (guide, README) run."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bulkref

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves() -> None:
    for name in bulkref.__all__:
        assert getattr(bulkref, name) is not None, name
    assert set(dir(bulkref)) == set(bulkref.__all__)


def test_a_type_checker_sees_every_public_name() -> None:
    # __all__ is a literal (the only form a type checker reads) beside the table the
    # names load from, and the TYPE_CHECKING imports that give them their types:
    # a name added to one and not the others would load but not type-check, or the reverse.
    tree = ast.parse((ROOT / "bulkref" / "__init__.py").read_text(encoding="utf-8"))
    typed = {
        alias.name
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for imported in node.body
        if isinstance(imported, ast.ImportFrom)
        for alias in imported.names
    }
    loaded = set(vars(bulkref)["_PUBLIC"])
    assert set(bulkref.__all__) == {"__version__", *loaded}
    assert typed == loaded


def test_every_error_is_a_bulkref_error_with_an_exit_code() -> None:
    from bulkref import errors

    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert len(classes) > 10
    for cls in classes:
        assert issubclass(cls, errors.BulkrefError), cls
        assert cls.exit_code in (1, 2), cls


@pytest.mark.slow
def test_every_error_is_exported_and_none_is_recognised_by_its_text() -> None:
    from bulkref import errors

    classes = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, Exception)}
    assert classes - set(bulkref.__all__) == set()
    assert bulkref.ConflictError is bulkref.StalePlan  # the old name goes on working
    # Code decides on an error's class (or its code and status), never on its sentence.
    by_text = re.compile(r"""["'][^"']+["']\s+(?:not\s+)?in\s+str\((?:e|exc|err|error)\)""")
    offences = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "bulkref").rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if by_text.search(line)
    ]
    assert offences == []


def test_no_bare_bulkref_error_is_raised() -> None:
    """Each sentence a user meets comes with a class a caller can catch by name."""
    offences = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "bulkref").rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\braise (?:bulkref\.)?(?:errors\.)?BulkrefError\(", line)
    ]
    assert offences == []


def _run_example(page: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the first ``python`` block of ``page`` from a folder holding the example workbook."""
    text = page.read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text.split("From Python", 1)[-1], re.S)
    assert code is not None, page
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "referrals.xlsx", tmp_path / "examples")
    env = {"BULKREF_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code.group(1)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_the_guide_s_python_example_runs(tmp_path: Path) -> None:
    done = _run_example(ROOT / "docs" / "python.md", tmp_path)
    assert "'created': 5" in done.stdout
    assert (tmp_path / "examples" / "referrals.results.xlsx").is_file()
    assert "-> exit 2" in done.stdout


def test_the_readme_s_python_example_runs(tmp_path: Path) -> None:
    done = _run_example(ROOT / "README.md", tmp_path)
    assert "'created': 5" in done.stdout
    assert done.stdout.rstrip().endswith(" examples/referrals.results.xlsx")
    assert (tmp_path / "examples" / "referrals.results.xlsx").is_file()
