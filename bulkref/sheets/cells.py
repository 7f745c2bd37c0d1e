"""Writing cells that cannot run as formulas.

A deal name or a note pasted from a CRM can start with ``=``, ``+``, ``-`` or
``@``; written naively, Excel would evaluate it when the sheet is opened
(formula injection). Such text is stored as a string with Excel's own quote
prefix in workbooks, and with a leading apostrophe in CSV files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from openpyxl.cell.cell import Cell

if TYPE_CHECKING:
    from openpyxl.cell import _CellSetValue

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def put(cell: Cell, value: object) -> None:
    """Set a workbook cell's value; text is always text, never a formula."""
    # Callers hand over whatever a row or a sheet held (pandas' values among
    # them); openpyxl checks the type itself and refuses one it cannot store.
    cell.value = cast("_CellSetValue", value)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        cell.data_type = "s"
        cell.quotePrefix = True


def csv_safe(value: object) -> object:
    """The value to write in a CSV cell, neutralised the way OWASP advises."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
