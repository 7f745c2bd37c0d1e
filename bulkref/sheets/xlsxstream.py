"""Writing large sheets: rows rendered straight to a worksheet's XML and streamed
into a workbook skeleton that openpyxl made, and files replaced atomically.

openpyxl makes the skeleton (styles, header row, widths, frozen panes,
validations, other sheets); the data rows are then written into the sheet's
``<sheetData>`` by ``insert_rows`` from an iterator, a chunk at a time, so they
are never all in memory. openpyxl's write-only mode costs ~13 µs per cell (with
or without lxml): 100,000 rows x 12 columns took 16 s. Rendering cells here is
several times cheaper and in constant memory.

A cell made here is one of two kinds only: a number (``<v>``) or an inline
string, quote-prefixed when it looks like a formula. There is no formula code
path at all, so no text from a sheet or from the API can become one.

Used by ``bulkref.apply.results`` (the results file of apply) and ``bulkref.export.sheet``.
"""

from __future__ import annotations

import datetime as dt
import math
import queue
import re
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from openpyxl.utils import get_column_letter

from bulkref.files import atomic_write  # noqa: F401  (re-exported for writers of sheets)
from bulkref.sheets.cells import FORMULA_START

MAX_CELL_TEXT = 32_767  # Excel's limit; longer text makes Excel "repair" the file

# Characters XML 1.0 cannot carry (openpyxl refuses them, which would lose the
# whole file for one odd API message): shown as U+FFFD instead.
ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NEEDS_ESCAPE = re.compile("[&<>\r]")
# What makes a text need more than ``<t>text</t>``: a character to replace or to escape.
_NOT_PLAIN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff&<>\r]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}  # CR: else XML reads it as LF

# Day 0 of Excel's 1900 date system, as Excel counts it (it believes 1900 was a leap year).
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)


# --- cells ----------------------------------------------------------------------------------------


def clean(text: str) -> str:
    """``text`` as a cell can hold it: XML-illegal characters replaced, cut to Excel's limit."""
    if ILLEGAL_XML.search(text):
        text = ILLEGAL_XML.sub("\ufffd", text)
    if len(text) > MAX_CELL_TEXT:
        text = text[: MAX_CELL_TEXT - 1] + "…"
    return text


def t_element(text: str) -> str:
    """A ``<t>`` element holding ``text`` exactly, as far as XML allows."""
    text = clean(text)
    if _NEEDS_ESCAPE.search(text):
        text = _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], text)
    if text != text.strip():  # else Excel trims leading and trailing blanks
        return f'<t xml:space="preserve">{text}</t>'
    return f"<t>{text}</t>"


def looks_like_formula(text: str) -> bool:
    return text.startswith(FORMULA_START)


def text_cell(ref: str, text: str, style: int = 0, quoted_style: int | None = None) -> str:
    """An inline-string cell; with ``quoted_style`` (a style with Excel's quote
    prefix) for text that starts like a formula, so that editing the cell in
    Excel keeps it text."""
    if quoted_style is not None and looks_like_formula(text):
        style = quoted_style
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is>{t_element(text)}</is></c>'


class TextCells:
    """``text_cell`` with ``style`` and ``quoted_style`` fixed, for one column of a large
    sheet. ``tails`` keeps what follows ``<c r="REF"`` for the first ``keep``
    distinct texts, since a column's values repeat (a status, a country, a job
    title) and escaping is most of a cell's cost. Same XML as ``text_cell``."""

    def __init__(self, style: int = 0, quoted_style: int | None = None, keep: int = 1024) -> None:
        self.style = style
        self.quoted_style = quoted_style
        self.keep = keep
        self.tails: dict[str, str] = {}
        self.ref_tails: dict[str, str] = {}
        styled = f' s="{style}"' if style else ""
        self._plain = f'{styled} t="inlineStr"><is><t>'

    def tail(self, text: str) -> str:
        """What follows ``<c r="REF"`` in the cell of ``text``."""
        found = self.tails.get(text)
        if found is None:
            if (
                _NOT_PLAIN.search(text) is None
                and len(text) <= MAX_CELL_TEXT
                and text == text.strip()
                and not text.startswith(FORMULA_START)
            ):
                found = f"{self._plain}{text}</t></is></c>"  # nothing to clean, escape or quote
            else:
                found = text_cell("", text, self.style, self.quoted_style)[len('<c r=""') :]
            if len(self.tails) < self.keep:
                self.tails[text] = found
        return found

    def ref_tail(self, text: str) -> str:
        """What follows the row number in the cell of ``text``: the ``r`` reference's
        closing quote, then ``tail``."""
        found = self.ref_tails.get(text)
        if found is None:
            found = '"' + self.tail(text)
            if len(self.ref_tails) < self.keep:
                self.ref_tails[text] = found
        return found

    def __call__(self, ref: str, text: str) -> str:
        return f'<c r="{ref}"{self.tail(text)}'


def number_cell(ref: str, number: float, style: int = 0) -> str:
    """A number cell (a date too, as its serial number with a date style). A value
    Excel cannot hold as a number (NaN, infinity) is written as its text."""
    if isinstance(number, float) and not math.isfinite(number):
        return text_cell(ref, str(number), 0)
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s} t="n"><v>{number!r}</v></c>'


def excel_serial(value: dt.date | dt.datetime) -> float | int:
    """The serial number Excel stores for a date or a (naive or UTC) date-time."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)  # Excel has no time zones
        delta = value - _EXCEL_EPOCH
        return delta.days + (delta.seconds + delta.microseconds / 1_000_000) / 86_400
    return (value - _EXCEL_EPOCH.date()).days


def column_letters(count: int) -> list[str]:
    return [get_column_letter(i) for i in range(1, count + 1)]


def row_xml(number: int, cells: Iterable[str]) -> str:
    return f'<row r="{number}">{"".join(cells)}</row>'


def chunks(rows: Iterable[str], size: int = 2000) -> Iterator[bytes]:
    """``rows`` (``<row>`` elements) joined and encoded ``size`` at a time."""
    buf: list[str] = []
    for row in rows:
        buf.append(row)
        if len(buf) == size:
            yield "".join(buf).encode()
            buf.clear()
    yield "".join(buf).encode()


# --- the workbook ---------------------------------------------------------------------------------

ROWS_COMPRESSLEVEL = 1

# Chunks of rows made but not yet deflated: a few megabytes each.
_CHUNKS_WAITING = 3

_DIMENSION = re.compile(rb'<dimension ref="[^"]*"\s*/>')


def insert_rows(
    skeleton: IO[bytes],
    sheet_part: str,
    rows: Iterable[bytes],
    out: IO[bytes],
    *,
    dimension: str | None = None,
) -> None:
    """Copy the zip ``skeleton`` to ``out`` with ``rows`` (``<row>`` XML) added at the end
    of ``sheet_part``'s sheetData, streamed so the rows are never all in memory.

    ``dimension`` (``A1:BX1001``) replaces the sheet's ``<dimension>``, which
    openpyxl wrote for the header row alone.
    """
    with zipfile.ZipFile(skeleton) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename != sheet_part:
                dst.writestr(info, data)
                continue
            if dimension is not None:
                data = _DIMENSION.sub(f'<dimension ref="{dimension}"/>'.encode(), data, count=1)
            if b"<sheetData/>" in data:  # no header row: open the element
                data = data.replace(b"<sheetData/>", b"<sheetData></sheetData>", 1)
            end = data.rindex(b"</sheetData>")  # after the header row openpyxl wrote
            part_info = zipfile.ZipInfo(info.filename, info.date_time)
            part_info.compress_type = zipfile.ZIP_DEFLATED
            # The rows are most of the file and deflating them at zlib's default level
            # was a third of writing a large export; level 1 takes half the time for a
            # fifth more bytes. (ZipInfo has no public setter for it before Python 3.13.)
            part_info._compresslevel = ROWS_COMPRESSLEVEL  # type: ignore[attr-defined]
            with dst.open(part_info, "w", force_zip64=True) as part:
                part.write(data[:end])
                _write_behind(part.write, rows)
                part.write(data[end:])


def _write_behind(write: Callable[[bytes], object], chunks: Iterable[bytes]) -> None:
    """``write`` each of ``chunks`` in a thread of its own while the next is made.

    Deflating the rows (and their CRC) was a tenth of writing a large sheet, and
    zlib lets go of the GIL while it works, so it runs beside the Python that
    makes the next rows. An error of either side is raised here."""
    waiting: queue.Queue[bytes | None] = queue.Queue(maxsize=_CHUNKS_WAITING)
    failed: list[BaseException] = []

    def writer() -> None:
        while (chunk := waiting.get()) is not None:
            if not failed:
                try:
                    write(chunk)
                except BaseException as e:  # raised in the caller's thread, below
                    failed.append(e)

    thread = threading.Thread(target=writer, name="bulkref-sheet-writer", daemon=True)
    thread.start()
    try:
        for chunk in chunks:
            if failed:
                break
            waiting.put(chunk)
    finally:
        waiting.put(None)
        thread.join()
    if failed:
        raise failed[0]
