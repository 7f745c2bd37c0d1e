"""Validation results as data: one Problem per finding, rendered elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding, in the user's terms: the sheet, the row number Excel shows,
    the header text as written in the sheet, a stable code, a plain message
    and the offending value as the cell showed it.

    A problem in an export read through a mapping file also names the export
    (``file``), the template field, the export's column(s) and the mapping
    line of the entry; ``column`` is then a label naming both sides
    (``Est. Close Date -> Closing Date``)."""

    sheet: str
    row: int | None
    column: str | None
    code: str
    message: str
    value: str | None = None
    severity: Severity = Severity.ERROR
    file: str | None = None
    field: str | None = None
    source_column: str | None = None
    mapping_line: int | None = None

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "code": self.code,
            "message": self.message,
            "value": self.value,
        }
        # Only for mapped input, so the documented document is unchanged otherwise.
        for key, value in (
            ("file", self.file),
            ("field", self.field),
            ("sourceColumn", self.source_column),
            ("mappingLine", self.mapping_line),
        ):
            if value is not None:
                d[key] = value
        return d


@dataclass
class Report:
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "rows": self.rows,
            "errors": [p.as_json() for p in self.errors],
            "warnings": [p.as_json() for p in self.warnings],
        }
