"""What the reader hands to the validator: cells as found, with where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bulkref.problems import Problem
from bulkref.spec.columns import Column

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Table:
    """One referral sheet, read.

    ``frame`` has one column per recognised spec column (named by
    ``Column.key``), holding the raw cell values (str, int, float, bool,
    datetime or None for blank), and is indexed by the row number Excel shows
    (for CSV: the line's record number counting the header as 1).
    """

    source: Path
    sheet: str
    frame: pd.DataFrame
    columns: dict[str, Column]  # column key -> the spec column it is
    headers: dict[str, str]  # column key -> header text as written in the sheet
    letters: dict[str, str]  # column key -> the sheet's column letter (A, B, ... AA)
    header_row: int = 1
    # Found while reading: warnings, missing columns.
    problems: list[Problem] = field(default_factory=list)
    # (Excel row, column key) of formula cells never calculated (no saved value):
    # they read as blank, and the validator says why instead of "required".
    uncalculated: list[tuple[int, str]] = field(default_factory=list)
    available: list[str] = field(default_factory=list)  # every sheet of the workbook; [] for CSV

    @property
    def rows(self) -> int:
        return len(self.frame)

    def others(self) -> str:
        """For a sheet-level sentence: the workbook's other sheets and --sheet, when it has any."""
        if len(self.available) < 2:
            return ""
        listing = ", ".join(f"'{s}'" for s in self.available)
        return f" (the workbook's sheets: {listing}; pass --sheet to read another)"
