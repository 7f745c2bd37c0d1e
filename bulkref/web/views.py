"""What the pages show, built from the library's results: the check grid, the
step an import has reached, the results table. Shaping for display only; the
decisions (what is wrong, what to send) are the library's."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import bulkref

PAGE_ROWS = 100


@dataclass
class Cell:
    text: str
    problems: list[Any] = field(default_factory=list)  # bulkref.Problem
    anchor: str = ""

    @property
    def severity(self) -> str | None:
        if not self.problems:
            return None
        return "error" if any(p.severity == bulkref.Severity.ERROR for p in self.problems) else "warning"


@dataclass
class GridRow:
    number: int
    cells: list[Cell]
    problems: list[Any]  # every problem of the row, in the sheet's column order

    @property
    def severity(self) -> str | None:
        if not self.problems:
            return None
        return "error" if any(p.severity == bulkref.Severity.ERROR for p in self.problems) else "warning"


@dataclass
class Grid:
    sheet: str
    headers: list[tuple[str, str]]  # (column letter, header text)
    rows: list[GridRow]
    sheet_problems: list[Any]
    counts: dict[str, int]
    page: int
    pages: int
    filtered: bool
    problem_columns: bool
    anchors: dict[tuple[int, str], str]  # (row, header) -> the id of the cell it is on


def cell_text(value: Any) -> str:
    """A raw cell as the sheet shows it: blanks empty, whole floats without .0, dates as dates."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _letter_order(letter: str) -> int:
    n = 0
    for ch in letter:
        n = n * 26 + ord(ch.upper()) - 64
    return n


# Kept beside the columns with problems when only those are shown: which row is which.
IDENTITY = ("external_id", "referral_id", "name")


def grid(validated: Any, only_problems: bool = False, page: int = 1, problem_columns: bool = False) -> Grid:
    """The sheet's rows with each problem on its cell: columns with no value and
    no problem are left out (a template has 77), rows paged by ``PAGE_ROWS``.
    ``problem_columns``: only the columns with a problem (and the row's ids).

    A problem is the sheet's (shown above the grid, never counted as a row's)
    when it names no row, or a row that is not one of the grid's: the header row
    (missing or unknown columns, a mapping that fills no required field). With
    ``group_by`` a problem on any row of a deal is its first row's, the row the
    grid shows: so every row counted with an error is a row "only rows with
    problems" lists."""
    table, report = validated.table, validated.report
    key_of = {header: key for key, header in table.headers.items()}
    frame = table.frame
    shown_rows = {int(n) for n in frame.index}
    owner = {int(n): int(n) for n in shown_rows}
    for first, members in (report.groups or {}).items():
        for member in members:
            owner.setdefault(int(member), int(first))
    by_cell: dict[tuple[int, str], list[Any]] = defaultdict(list)
    by_row: dict[int, list[Any]] = defaultdict(list)
    sheet_problems = []
    for p in report.problems:
        at = owner.get(int(p.row)) if p.row is not None else None
        if at is None:
            sheet_problems.append(p)
            continue
        by_row[at].append(p)
        key = key_of.get(p.column) if p.column is not None else None
        if key is not None:
            by_cell[(at, key)].append(p)
    keys = sorted(
        (k for k in table.headers if k in frame.columns),
        key=lambda k: _letter_order(table.letters.get(k, "ZZZ")),
    )
    problem_keys = {k for _, k in by_cell}
    if problem_columns:
        shown = [k for k in keys if k in problem_keys or (k in IDENTITY and frame[k].notna().any())]
    else:
        shown = [k for k in keys if k in problem_keys or frame[k].notna().any()]
    numbers = [int(n) for n in frame.index if not only_problems or int(n) in by_row]
    pages = max(1, math.ceil(len(numbers) / PAGE_ROWS))
    page = min(max(1, page), pages)
    rows = []
    ids = [f"cell-{table.letters.get(k, '')}" for k in shown]
    for n in numbers[(page - 1) * PAGE_ROWS : page * PAGE_ROWS]:
        cells = [
            Cell(cell_text(frame.at[n, k]), by_cell.get((n, k), []), f"{anchor}-{n}")
            for k, anchor in zip(shown, ids, strict=True)
        ]
        rows.append(GridRow(n, cells, by_row.get(n, [])))
    is_error = bulkref.Severity.ERROR
    row_errors = [p for ps in by_row.values() for p in ps if p.severity == is_error]
    sheet_errors = [p for p in sheet_problems if p.severity == is_error]
    bad_rows = {n for n, ps in by_row.items() if any(p.severity == is_error for p in ps)}
    counts = {
        "rows": report.rows,
        "errors": len(row_errors) + len(sheet_errors),
        "row_errors": len(row_errors),
        "sheet_errors": len(sheet_errors),
        "warnings": len(report.problems) - len(row_errors) - len(sheet_errors),
        "bad_rows": len(bad_rows),
        # A sheet-level error (a required column missing) stops every row.
        "ready_rows": 0 if sheet_errors else max(0, report.rows - len(bad_rows)),
        "problem_rows": len(by_row),
    }
    return Grid(
        sheet=table.sheet,
        headers=[(table.letters.get(k, ""), table.headers[k]) for k in shown],
        rows=rows,
        sheet_problems=sheet_problems,
        counts=counts,
        page=page,
        pages=pages,
        filtered=only_problems,
        problem_columns=problem_columns,
        anchors={
            (r.number, header): cell.anchor
            for r in rows
            for cell, (_, header) in zip(r.cells, [(None, table.headers[k]) for k in shown], strict=True)
        },
    )


def results_page(results: list[dict[str, Any]], page: int, outcome: str | None) -> tuple[list, int, int]:
    chosen = [r for r in results if outcome is None or r.get("outcome") == outcome]
    pages = max(1, math.ceil(len(chosen) / PAGE_ROWS))
    page = min(max(1, page), pages)
    return chosen[(page - 1) * PAGE_ROWS : page * PAGE_ROWS], page, pages


def short(fingerprint: str | None) -> str:
    return (fingerprint or "")[:12]
