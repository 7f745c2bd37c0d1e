"""A corrected copy of a sheet: cells set to new text, everything else as it was.

``bulkref serve`` lets a person fix a bad cell on the Check page; the fix goes
into a copy of the uploaded file (the upload itself is kept), so that the copy
can be downloaded and is what the import reads from then on. A workbook keeps
its other sheets, styles and drop-downs (openpyxl rewrites only what it is
told); a CSV keeps its delimiter and is written as UTF-8. Text is never a
formula in either (``bulkref.sheets.cells``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import openpyxl
from openpyxl.utils import column_index_from_string

from bulkref.errors import NoSuchSheet, UnusableFile
from bulkref.sheets.cells import csv_safe, put
from bulkref.sheets.reader import _decode, _delimiter, _formula_quotes, _lines

__all__ = ["CellEdit", "correct_cells"]

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")


@dataclass(frozen=True)
class CellEdit:
    """One cell's new text: ``row`` as Excel numbers rows (a CSV's record number,
    its header row 1), ``letter`` its column (A, B, ... AA)."""

    row: int
    letter: str
    value: str


def correct_cells(
    source: Path | str, edits: Sequence[CellEdit], out: Path | str, sheet: str | None = None
) -> Path:
    """Write ``out``: ``source`` with each edit's cell set to its text (``sheet``:
    the worksheet's name, for a workbook). A number or date cell given text that
    reads as one stays a number or a date; anything else is text."""
    source, out = Path(source), Path(out)
    for edit in edits:
        if edit.row < 1 or not edit.letter.isascii() or not edit.letter.isalpha() or len(edit.letter) > 3:
            raise UnusableFile(f"There is no cell {edit.letter}{edit.row} to correct.")
    if source.suffix.lower() in WORKBOOK_SUFFIXES:
        return _workbook(source, edits, out, sheet)
    return _csv(source, edits, out)


def _workbook(source: Path, edits: Sequence[CellEdit], out: Path, sheet: str | None) -> Path:
    keep_vba = source.suffix.lower() == ".xlsm"
    try:
        wb = openpyxl.load_workbook(source, keep_vba=keep_vba)
    except Exception as e:  # openpyxl raises many kinds for a damaged file
        raise UnusableFile(f"The workbook could not be opened to correct it ({type(e).__name__}).") from None
    if sheet is not None and sheet not in wb.sheetnames:
        raise NoSuchSheet(f"The workbook has no sheet '{sheet}' to correct.")
    ws = wb[sheet] if sheet is not None else wb.active
    assert ws is not None
    for edit in edits:
        cell = ws[f"{edit.letter.upper()}{edit.row}"]
        put(cell, _typed(cell.value, edit.value))
    wb.save(out)
    return out


def _typed(old: object, text: str) -> object:
    """``text`` as the kind of value the cell held: 50000 stays a number, a date a date."""
    stripped = text.strip()
    if stripped == "":
        return None
    if isinstance(old, (int, float)) and not isinstance(old, bool):
        try:
            number = float(stripped)
        except ValueError:
            return text
        return int(number) if number.is_integer() and "." not in stripped else number
    if isinstance(old, (dt.datetime, dt.date)):
        try:
            return dt.datetime.fromisoformat(stripped)
        except ValueError:
            return text
    return text


def _csv(source: Path, edits: Sequence[CellEdit], out: Path) -> Path:
    try:
        data = source.read_bytes()
    except OSError as e:
        raise UnusableFile(f"The file could not be read to correct it ({e.strerror or e}).") from None
    text, _ = _decode(source, source.name, data)
    delimiter, text = _delimiter(text)
    rows = list(csv.reader(_lines(_formula_quotes(text, delimiter)), delimiter=delimiter))
    for edit in edits:
        index, column = edit.row - 1, column_index_from_string(edit.letter.upper()) - 1
        while len(rows) <= index:
            rows.append([])
        while len(rows[index]) <= column:
            rows[index].append("")
        rows[index][column] = edit.value
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_safe(v) for v in row])
    out.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8"))  # Excel opens UTF-8 with its BOM
    return out
