"""Writing cells that cannot run as formulas.

A deal name or a note pasted from a CRM can start with ``=``, ``+``, ``-`` or
``@``; written naively, Excel would evaluate it when the sheet is opened
(formula injection). Such text is stored as a string with Excel's own quote
prefix in workbooks, and with a leading apostrophe in CSV files.
"""

from __future__ import annotations

from openpyxl.cell.cell import Cell

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def put(cell: Cell, value: object) -> None:
    """Set a workbook cell's value; text is always text, never a formula."""
    cell.value = value
    if isinstance(value, str) and value.startswith(FORMULA_START):
        cell.data_type = "s"
        cell.quotePrefix = True


def csv_safe(value: object) -> object:
    """The value to write in a CSV cell, neutralised the way OWASP advises."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
