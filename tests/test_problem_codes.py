"""The problem codes are one enumeration, and the guide's troubleshooting page lists
exactly its members, every exit code and every error class."""

from __future__ import annotations

import re
from pathlib import Path

from bulkref import errors
from bulkref.problems import Problem, ProblemCode

TROUBLESHOOTING = Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md"


def _first_cells(header: str) -> set[str]:
    """Every backticked name in the first cell of the page's tables whose header starts with ``header``."""
    names: set[str] = set()
    in_table = False
    for line in TROUBLESHOOTING.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| {header} |"):
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            in_table = False
        if in_table and not line.startswith("| ---"):
            names.update(re.findall(r"`([A-Za-z0-9_]+)`", line.split("|")[1]))
    return names


def test_the_guide_lists_every_problem_code_and_no_other() -> None:
    listed = _first_cells("code")
    members = {c.value for c in ProblemCode}
    assert members - listed == set(), "codes missing from docs/troubleshooting.md"
    assert listed - members == set(), "docs/troubleshooting.md codes that are not ProblemCode members"


def test_the_guide_lists_every_error_with_its_exit_code() -> None:
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.BulkrefError)
    }
    rows = {}
    for line in TROUBLESHOOTING.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) == 4 and re.fullmatch(r"`[A-Za-z]+`", cells[0]) and cells[1].isdigit():
            rows[cells[0].strip("`")] = int(cells[1])
    assert set(classes) - set(rows) == set(), "errors missing from docs/troubleshooting.md"
    assert set(rows) - set(classes) == set(), "docs/troubleshooting.md errors that bulkref.errors lacks"
    assert {name: cls.exit_code for name, cls in classes.items()} == rows


def test_the_guide_lists_every_exit_code_the_command_line_uses() -> None:
    cli = Path(errors.__file__).parent / "cli"
    # Every digit in a sys.exit(...) call: literal codes and conditional ones (0 if ... else 1).
    calls = [call for path in cli.glob("*.py") for call in re.findall(r"sys\.exit\((.*)\)", path.read_text())]
    used = {int(code) for call in calls for code in re.findall(r"\b(\d)\b", call)}
    used |= {c.exit_code for c in vars(errors).values() if isinstance(c, type) and hasattr(c, "exit_code")}
    listed = {int(c) for c in _first_cells("exit")}
    assert used == listed, f"exit codes used {sorted(used)}, listed {sorted(listed)}"


def test_every_code_has_a_description_and_serialises_as_its_string() -> None:
    for code in ProblemCode:
        assert code.description and not code.description.endswith(".")
        assert code == code.value
    problem = Problem("Referrals", 3, "Country *", ProblemCode.INVALID_COUNTRY, "bad")
    assert problem.as_json()["code"] == "invalid_country"
    assert type(problem.as_json()["code"]) is ProblemCode
