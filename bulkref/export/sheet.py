"""Pass 2 of an export: its file in the template's shape, .xlsx or .csv.

A workbook skeleton made by ``template.build_workbook`` (Instructions, the
styled header, drop-downs, input messages, Lists) with the data rows streamed
into the Referrals sheet's XML (``bulkref.sheets.xlsxstream``), or the
template's CSV. The file is written beside its final name and renamed into
place: an interrupted export leaves no half file.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bulkref.sheets import template, xlsxstream
from bulkref.spec.columns import SPEC, Column, Kind

__all__ = ["CHUNK_ROWS", "CellWriters", "XlsxSkeleton", "cell_styles", "write_export", "xlsx_skeleton"]

# Rows of sheet XML handed to the deflating thread at a time (about 1.5 MB).
CHUNK_ROWS = 500


def write_export(out: Path, rows: Iterable[Mapping[str, Any]], counts: dict[str, int], row_count: int) -> int:
    """Write ``rows`` (``row_count`` of them, keyed by column key) to ``out`` in the
    template's shape, .xlsx or .csv by its suffix, atomically; returns the rows written."""
    written = 0

    def csv_file(f: IO[str]) -> None:
        nonlocal written
        written = template.write_csv_rows(f, rows, counts)

    def xlsx_file(f: IO[bytes]) -> None:
        nonlocal written
        skeleton = xlsx_skeleton(counts, row_count)
        cells = skeleton.cells()
        skeleton.write(f, xlsxstream.chunks(cells.rows_xml(rows, 2), CHUNK_ROWS))
        written = cells.rows_written

    if out.suffix.lower() == ".csv":
        xlsxstream.atomic_write(out, "w", csv_file, what="export")
    else:
        xlsxstream.atomic_write(out, "wb", xlsx_file, what="export")
    return written


@dataclass
class XlsxSkeleton:
    """The export's workbook without its data rows, and the cell styles of its columns."""

    data: bytes
    sheet_part: str  # the Referrals sheet's part in the zip
    dimension: str  # A1:<last column><last row>
    columns: list[Column]
    styles: list[tuple[int, int]]  # per column: its cell style and quote-prefixed style (xf indexes)

    def cells(self) -> CellWriters:
        return CellWriters(self.columns, self.styles)

    def write(self, f: IO[bytes], chunks: Iterable[bytes]) -> None:
        """The workbook to ``f`` with ``chunks`` (``<row>`` XML) as the sheet's data rows."""
        xlsxstream.insert_rows(io.BytesIO(self.data), self.sheet_part, chunks, f, dimension=self.dimension)


def xlsx_skeleton(counts: dict[str, int], row_count: int) -> XlsxSkeleton:
    columns = SPEC.columns(counts)
    # The drop-downs and input messages reach every exported row (and the
    # template's usual 5,000 rows below a small export, for rows people add).
    wb = template.build_workbook((), counts, data_rows=max(template.DATA_ROWS, row_count))
    ws = wb[template.SHEET_REFERRALS]
    last = f"{get_column_letter(len(columns))}{row_count + 1}"
    ws.auto_filter.ref = f"A1:{last}"
    styles = cell_styles(ws, columns)  # registers the styles: before the skeleton is saved
    data = io.BytesIO()  # tens of kilobytes: every data row is still to come
    wb.save(data)
    return XlsxSkeleton(data.getvalue(), ws.path.lstrip("/"), f"A1:{last}", columns, styles)


def cell_styles(ws: Worksheet, columns: list[Column]) -> list[tuple[int, int]]:
    """Each column's cell style and quote-prefixed style (xf indexes), registered in
    ``ws``'s workbook through openpyxl, as ``CellWriters`` takes them."""
    styles = []
    for c in columns:
        fmt = template.number_format(c)
        styles.append((_style_id(ws, fmt), _style_id(ws, fmt, quote_prefix=True)))
    return styles


# The classes of the values whose cells ``CellWriters`` keeps by value.
_KEPT_BY_VALUE = frozenset({bool, dt.date, tuple})


class CellWriters:
    """Each column's cells as sheet XML, typed and styled as the template formats
    that column: dates as Excel dates (``yyyy-mm-dd``), times as date-times,
    amounts as numbers, Yes/No and lists as text, all other text as inline
    strings in the column's format (``@`` for ids and postal codes, so that
    Excel keeps leading zeros when someone edits them), quote-prefixed when
    it starts like a formula."""

    def __init__(self, columns: list[Column], styles: list[tuple[int, int]]) -> None:
        self.rows_written = 0
        # Per column: its key, the start of its cells' XML up to the row number
        # (``<c r="B``), the text cells made so far (what follows the row number,
        # by text) and how to make another, its writer for any other value, its
        # letter, and the cells it keeps by value (None for a column that keeps none).
        self.columns: list[
            tuple[
                str,
                str,
                dict[str, str] | None,
                Callable[[str], str],
                Callable[[str, Any], str],
                str,
                dict[tuple[type, Any], str] | None,
            ]
        ] = []
        letters = xlsxstream.column_letters(len(columns))
        for c, letter, (style, quoted) in zip(columns, letters, styles, strict=True):
            cells = xlsxstream.TextCells(style, quoted)
            # Every writer but the timestamp's writes a str value as text: such a cell is
            # made straight away (the commonest case of the 100,000 rows x 80 columns
            # of a large export), without going through the column's writer.
            texts = None if c.kind is Kind.TIMESTAMP else cells.ref_tails
            write = self._writer(c, cells)
            # Yes/No, dates and lists repeat too (a few hundred closing dates in 100,000
            # deals): their cells, made by the column's writer, are kept by value.
            made: dict[tuple[type, Any], str] | None = (
                {} if c.kind in (Kind.BOOL, Kind.DATE, Kind.LIST) else None
            )
            self.columns.append((c.key, f'<c r="{letter}', texts, cells.ref_tail, write, letter, made))

    def row(self, n: int, row: Mapping[str, Any]) -> list[str]:
        """The cells of ``row`` as sheet row ``n``, blank ones left out."""
        out = []
        number = str(n)
        get = row.get
        for key, start, texts, make, write, letter, made in self.columns:
            value = get(key)
            if value is None or value == "":
                continue
            if texts is not None and value.__class__ is str:
                tail = texts.get(value)
                if tail is None:
                    tail = make(value)
                out.append(start + number + tail)
            elif made is not None and value.__class__ in _KEPT_BY_VALUE:
                try:
                    tail = made.get((value.__class__, value))  # by class too: True is 1, 1 is 1.0
                except TypeError:  # a list holding something unhashable: not kept
                    tail = write("", value)[len('<c r="') :]
                if tail is None:
                    tail = self._kept(made, write, value)
                out.append(start + number + tail)
            else:
                out.append(write(letter + number, value))
        return out

    @staticmethod
    def _kept(made: dict[tuple[type, Any], str], write: Callable[[str, Any], str], value: Any) -> str:
        """What follows the row number in ``value``'s cell, kept for the next (up to 1,024 kept)."""
        tail = write("", value)[len('<c r="') :]
        if len(made) < 1024:
            made[(value.__class__, value)] = tail
        return tail

    def rows_xml(self, rows: Iterable[Mapping[str, Any]], first: int) -> Iterator[str]:
        """Each of ``rows`` as a ``<row>`` element, the first numbered ``first``."""
        cells = self.row
        for n, row in enumerate(rows, start=first):
            yield f'<row r="{n}">{"".join(cells(n, row))}</row>'
            self.rows_written += 1

    @staticmethod
    def _writer(c: Column, cells: xlsxstream.TextCells) -> Callable[[str, Any], str]:
        style = cells.style

        def text(ref: str, value: Any) -> str:
            return cells(ref, value if isinstance(value, str) else str(value))

        if c.kind is Kind.DATE:

            def date(ref: str, value: Any) -> str:
                if isinstance(value, dt.date):
                    return xlsxstream.number_cell(ref, xlsxstream.excel_serial(value), style)
                return text(ref, value)

            return date
        if c.kind is Kind.TIMESTAMP:

            def timestamp(ref: str, value: Any) -> str:
                moment = _instant(value) if isinstance(value, str) else value
                if isinstance(moment, dt.datetime):
                    return xlsxstream.number_cell(ref, xlsxstream.excel_serial(moment), style)
                return text(ref, value)

            return timestamp
        if c.kind is Kind.DECIMAL:

            def number(ref: str, value: Any) -> str:
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return xlsxstream.number_cell(ref, value, style)
                return text(ref, value)

            return number
        if c.kind is Kind.BOOL:

            def yes_no(ref: str, value: Any) -> str:
                if isinstance(value, bool):
                    value = template.YES_NO[0] if value else template.YES_NO[1]
                return text(ref, value)

            return yes_no
        if c.kind is Kind.LIST:

            def listed(ref: str, value: Any) -> str:
                if isinstance(value, tuple | list):
                    value = template.LIST_SEPARATOR.join(map(str, value))
                return text(ref, value)

            return listed
        return text


def _style_id(ws: Worksheet, number_format: str | None, quote_prefix: bool = False) -> int:
    """The workbook's cell style (xf) index for a format, registered through openpyxl."""
    if number_format is None and not quote_prefix:
        return 0
    proto = WriteOnlyCell(ws)
    if number_format is not None:
        proto.number_format = number_format
    if quote_prefix:
        proto.quotePrefix = True
    return int(proto.style_id)


def _instant(text: str) -> dt.datetime | None:
    """A service time (``2026-11-21T09:11:20.1234567Z``) as a naive UTC datetime."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
