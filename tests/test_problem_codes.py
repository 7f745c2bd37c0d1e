"""The problem codes are one enumeration, and the README's tables of codes list exactly its members."""

from __future__ import annotations

import re
from pathlib import Path

from bulkref.problems import Problem, ProblemCode

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_codes() -> set[str]:
    """Every backticked code in the first cell of a table whose header is ``| code | meaning |``."""
    codes: set[str] = set()
    in_table = False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.strip() == "| code | meaning |":
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            in_table = False
        if in_table and not line.startswith("| ---"):
            first = line.split("|")[1]
            codes.update(re.findall(r"`([a-z0-9_]+)`", first))
    return codes


def test_readme_lists_every_problem_code_and_no_other() -> None:
    listed = _readme_codes()
    members = {c.value for c in ProblemCode}
    assert members - listed == set(), "codes missing from the README's tables"
    assert listed - members == set(), "README codes that are not ProblemCode members"


def test_every_code_has_a_description_and_serialises_as_its_string() -> None:
    for code in ProblemCode:
        assert code.description and not code.description.endswith(".")
        assert code == code.value
    problem = Problem("Referrals", 3, "Country *", ProblemCode.INVALID_COUNTRY, "bad")
    assert problem.as_json()["code"] == "invalid_country"
    assert type(problem.as_json()["code"]) is ProblemCode
