"""``validate --annotate``: a copy of the input with each problem shown in place."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import openpyxl
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from bulkref.errors import UnwritableOutput
from bulkref.problems import Problem, Severity
from bulkref.sheets.cells import put
from bulkref.validation.schema import Validated

ERROR_FILL = PatternFill("solid", fgColor="FFC7CE")
WARNING_FILL = PatternFill("solid", fgColor="FFEB9C")
ERRORS_SHEET = "Errors"


def annotate(validated: Validated, out: Path | str) -> Path:
    """Write ``out``: the input's sheet with bad cells filled red (warnings
    yellow), a comment on each saying what is wrong, and an Errors sheet
    listing every problem with a link to its cell."""
    out = Path(out)
    table = validated.table
    if out.suffix.lower() not in (".xlsx", ".xlsm"):
        raise UnwritableOutput(
            f"--annotate writes a workbook: give it a name ending in .xlsx, not {out.name}."
        )
    if out.exists() and out.resolve() == table.source.resolve():
        raise UnwritableOutput(f"--annotate would overwrite the input {out.name}: choose another name.")
    wb, ws = _copy_of_input(validated)
    by_cell: dict[tuple[int, str], list[Problem]] = defaultdict(list)
    for p in validated.report.problems:
        if p.row is None or p.column is None:
            continue
        key = next((k for k, h in table.headers.items() if h == p.column), None)
        if key is not None and key in table.letters:
            by_cell[(p.row, table.letters[key])].append(p)
    for (row, letter), problems in by_cell.items():
        cell = ws[f"{letter}{row}"]
        worst = min(problems, key=lambda p: p.severity is not Severity.ERROR)
        cell.fill = ERROR_FILL if worst.severity is Severity.ERROR else WARNING_FILL
        text = "\n".join(f"{p.message} [{p.code}]" for p in problems)
        cell.comment = Comment(text, "bulkref", width=320, height=40 + 30 * len(problems))
    _errors_sheet(wb, ws.title, validated.report.problems, table.letters, table.headers)
    try:
        wb.save(out)
    except OSError as e:
        raise UnwritableOutput(f"Cannot write {out}: {e.strerror}.") from e
    return out


def _copy_of_input(validated: Validated) -> tuple[Workbook, Worksheet]:
    table = validated.table
    if table.source.suffix.lower() in (".xlsx", ".xlsm"):
        wb = openpyxl.load_workbook(table.source)
        if ERRORS_SHEET in wb.sheetnames:  # annotating an annotated copy again
            del wb[ERRORS_SHEET]
        return wb, wb[table.sheet]
    # A CSV has no workbook to copy: rebuild its recognised columns in place.
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Referrals"
    for key, letter in table.letters.items():
        put(ws[f"{letter}{table.header_row}"], table.headers[key])
        ws[f"{letter}{table.header_row}"].font = Font(bold=True)
        for row, value in table.frame[key].items():
            if value is not None:
                put(ws[f"{letter}{row}"], value)
    ws.freeze_panes = f"A{table.header_row + 1}"
    return wb, ws


def _errors_sheet(
    wb: Workbook, sheet: str, problems: list[Problem], letters: dict[str, str], headers: dict[str, str]
) -> None:
    ws = wb.create_sheet(ERRORS_SHEET, 0)
    titles = ("Severity", "Sheet", "Row", "Column", "Code", "Message", "Value")
    for i, title in enumerate(titles, 1):
        ws.cell(1, i, title).font = Font(bold=True)
    letter_of = {headers[k]: letters[k] for k in letters if k in headers}
    for r, p in enumerate(problems, 2):
        for i, value in enumerate((str(p.severity), p.sheet, p.row, p.column, p.code, p.message, p.value), 1):
            put(ws.cell(r, i), value)
        if p.row is not None and p.column in letter_of:
            link = ws.cell(r, 3)
            link.hyperlink = f"#'{sheet}'!{letter_of[p.column]}{p.row}"
            link.font = Font(color="0563C1", underline="single")
    for i, width in enumerate((9, 14, 6, 28, 26, 90, 30), 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:G{max(2, len(problems) + 1)}"
