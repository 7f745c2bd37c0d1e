"""The results file of ``bulkref apply``: one line per input row saying what happened to it.

Written as a workbook (.xlsx) or a CSV file, chosen by the name's suffix. The
file is rewritten whole when a run is interrupted and again at its end, always
through a temporary file and an atomic rename, so whoever opens it sees either
the previous complete file or the new complete one, never a half-written one.

Everything in it comes from the input (external ids) or from the API (ids,
error messages); all text is neutralised against formula injection
(see bulkref/cells.py) because a spreadsheet is exactly where it would bite.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import re
import secrets
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import IO, Any, NamedTuple

import openpyxl
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from bulkref.cells import FORMULA_START, csv_safe
from bulkref.errors import BulkrefError
from bulkref.outcome import SUMMARY_OF, Outcome, RowResult

RESULTS_SHEET = "Results"
SUMMARY_SHEET = "Summary"
RESULTS_MARK = ".results"  # <stem>.results.xlsx / .csv


class Column(NamedTuple):
    field: str  # the RowResult attribute
    header: str  # the header the results file shows (shared/docs/cli.md names most of them)
    width: float  # the column's width in the workbook, in characters


# The results columns, in order: the one place that says what a results file holds.
COLUMNS: tuple[Column, ...] = (
    Column("row", "Row", 7),
    Column("external_id", "External Reference ID", 24),
    Column("action", "Action", 11),
    Column("outcome", "Outcome", 12),
    Column("referral_id", "Referral ID", 38),  # ids are GUIDs: 36 characters
    Column("engagement_id", "Engagement ID", 38),
    Column("linked_referral_id", "Linked Referral ID", 38),
    Column("http_status", "HTTP Status", 12),
    Column("error_code", "Error Code", 22),
    Column("error_message", "Error Message", 70),
    Column("request_id", "Request ID", 38),
    Column("timestamp", "Timestamp", 34),
)
HEADERS: tuple[str, ...] = tuple(c.header for c in COLUMNS)

# Every RowResult field is a column except the sheet: an input has one referral
# sheet, named once on the Summary sheet. Checked here so that a field added to
# RowResult cannot silently go missing from the results file.
_UNSHOWN = {"sheet"}
_missing = {f.name for f in fields(RowResult)} - _UNSHOWN - {c.field for c in COLUMNS}
assert not _missing, f"RowResult fields without a results column: {sorted(_missing)}"

_OUTCOME_VALUES = frozenset(o.value for o in Outcome)

# Excel's own Good / Neutral / Bad colours, so the sheet reads like any other.
_GREEN = (PatternFill("solid", fgColor="C6EFCE"), Font(color="006100"))
_GREY = (PatternFill("solid", fgColor="EDEDED"), Font(color="595959"))
_ORANGE = (PatternFill("solid", fgColor="FCE4D6"), Font(color="9C5700"))
_RED = (PatternFill("solid", fgColor="FFC7CE"), Font(color="9C0006"))
OUTCOME_STYLE: dict[Outcome, tuple[PatternFill, Font] | None] = {
    Outcome.CREATED: _GREEN,
    Outcome.UPDATED: _GREEN,
    Outcome.UNCHANGED: _GREY,
    Outcome.PARTIAL: _ORANGE,
    Outcome.CONFLICT: _ORANGE,
    Outcome.FAILED: _RED,
    Outcome.SKIPPED: None,  # nothing happened: nothing to draw the eye
}

_MAX_CELL_TEXT = 32_767  # Excel's limit; longer text makes Excel "repair" the file


def default_path(input_path: Path) -> Path:
    """Where ``apply`` writes its results unless told: ``<stem>.results.xlsx``
    beside a workbook or a plan (PLAN.json), ``<stem>.results.csv`` beside a CSV.

    Never the input itself: ``x.results.xlsx`` given as input gives
    ``x.results.results.xlsx``, and should a name still clash a number is added.
    """
    input_path = Path(input_path)
    suffix = ".csv" if input_path.suffix.lower() == ".csv" else ".xlsx"
    candidate = input_path.with_name(f"{input_path.stem}{RESULTS_MARK}{suffix}")
    n = 1
    # Cannot happen with the names above; kept so that no later change of naming
    # can ever make apply overwrite the spreadsheet it read (case-insensitively,
    # as on Windows and macOS file systems).
    while _same_file(candidate, input_path):
        n += 1
        candidate = input_path.with_name(f"{input_path.stem}{RESULTS_MARK}-{n}{suffix}")
    return candidate


def _same_file(a: Path, b: Path) -> bool:
    if a.name.casefold() == b.name.casefold() and a.parent == b.parent:
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_input(out: Path, input_path: Path) -> None:
    """Raise if ``out`` (e.g. from ``--results``) would overwrite the input file."""
    if _same_file(Path(out), Path(input_path)):
        raise BulkrefError(
            f"--results {Path(out).name} is the input file: choose another name, or leave "
            f"--results out to write {default_path(Path(input_path)).name}."
        )


def write_results(results: Sequence[RowResult], out: Path, *, source: str | None = None,
                  summary: Mapping[str, int] | None = None) -> Path:
    """Write ``results`` (one per input row, in any order: written in row order)
    to ``out``, a .xlsx or .csv file by its suffix, replacing any previous
    results file atomically. Returns ``out``.

    ``source`` names the input on the Summary sheet. ``summary`` is the counts to
    show there (e.g. apply's JSON summary); without it, the rows per outcome.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    # Rows finish out of order under concurrency; the file follows the input.
    results = sorted(results, key=lambda r: r.row)
    if suffix == ".csv":
        _atomic_write(out, "w", lambda f: _write_csv(results, f))
    elif suffix == ".xlsx":
        _atomic_write(out, "wb", lambda f: _write_xlsx(results, f, source, summary))
    else:
        raise BulkrefError(f"The results file must end in .xlsx or .csv, not {out.name}.")
    return out


# --- atomic replacement -------------------------------------------------------------------------

def _atomic_write(out: Path, mode: str, write: Callable[[IO[Any]], None]) -> None:
    """Write via ``.<name>.<random>.tmp`` in the same folder (a rename is only atomic
    within one file system), flushed to disk before it replaces ``out``."""
    if not out.parent.is_dir():
        raise BulkrefError(f"Cannot write {out}: the folder {out.parent} does not exist.")
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open with 0o666 lets the umask decide the permissions, as for any new
        # file (tempfile.mkstemp would force 0600 on the results).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        text = "b" not in mode
        # errors="replace": a lone surrogate in an API message must not cost the whole file.
        with (open(fd, mode, encoding="utf-8-sig", errors="replace", newline="") if text
              else open(fd, mode)) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if out.exists():
            # A user who made the results file private (or shared) keeps that.
            with contextlib.suppress(OSError):
                shutil.copymode(out, tmp)
        os.replace(tmp, out)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        hint = " (is it open in Excel? close it and run again)" if isinstance(e, PermissionError) else ""
        raise BulkrefError(f"Cannot write the results file {out}: {e.strerror or e}{hint}.") from e
    except BaseException:
        # Interrupted (Ctrl+C) or failed while writing: leave the old file, and no debris.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# --- CSV ----------------------------------------------------------------------------------------

def _write_csv(results: Sequence[RowResult], f: IO[str]) -> None:
    # utf-8-sig (set by the caller) puts the BOM Excel needs to read UTF-8 rather than the ANSI code page.
    w = csv.writer(f)  # the excel dialect: commas, quoting as Excel expects, CRLF
    w.writerow(HEADERS)
    names = [c.field for c in COLUMNS]
    for r in results:
        w.writerow([_csv_value(getattr(r, name)) for name in names])


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, Outcome):
        return value.value
    return csv_safe(value)


# --- workbook -----------------------------------------------------------------------------------
#
# openpyxl makes the workbook: styles, the Results sheet's widths, frozen header,
# autofilter and header row, and the Summary sheet. The data rows of Results are
# then streamed into that sheet's XML by _rows_xml below. openpyxl's write-only
# mode costs ~13 µs per cell (with or without lxml): 100,000 rows x 12 columns
# took 16 s, which a user waits through after Ctrl+C. Rendering the rows here
# takes ~2 s, in constant memory, and can only ever produce the two kinds of
# cell a results row has: numbers and inline strings (quote-prefixed when they
# look like formulas). There is no formula code path at all, so no text can
# become one.

def _write_xlsx(results: Sequence[RowResult], f: IO[bytes], source: str | None,
                summary: Mapping[str, int] | None) -> None:
    wb = openpyxl.Workbook(write_only=True)
    wb.properties.creator = "bulkref"
    ws = wb.create_sheet(RESULTS_SHEET)
    assert isinstance(ws, WriteOnlyWorksheet)
    styles = _Styles(ws)
    # Widths and the frozen header go in the sheet's XML before the rows: set them first.
    for i, col in enumerate(COLUMNS, 1):
        ws.column_dimensions[get_column_letter(i)].width = col.width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(results) + 1}"
    ws.append([styles.header(ws, h) for h in HEADERS])
    _summary_sheet(wb.create_sheet(SUMMARY_SHEET), styles, results, source, summary)

    skeleton = io.BytesIO()  # a few kilobytes: every row is still to come
    wb.save(skeleton)
    _insert_rows(skeleton, ws.path.lstrip("/"), _rows_xml(results, styles), f)


def _insert_rows(skeleton: IO[bytes], sheet_part: str, rows: Iterator[bytes], f: IO[bytes]) -> None:
    """Copy the zip ``skeleton`` to ``f`` with ``rows`` added at the end of
    ``sheet_part``'s sheetData, streamed so the rows are never all in memory."""
    with zipfile.ZipFile(skeleton) as src, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename != sheet_part:
                dst.writestr(info, data)
                continue
            end = data.rindex(b"</sheetData>")  # after the header row openpyxl wrote
            part_info = zipfile.ZipInfo(info.filename, info.date_time)
            part_info.compress_type = zipfile.ZIP_DEFLATED
            with dst.open(part_info, "w", force_zip64=True) as part:
                part.write(data[:end])
                for chunk in rows:
                    part.write(chunk)
                part.write(data[end:])


# Characters XML 1.0 cannot carry (openpyxl refuses them, which would lose the
# whole file for one odd API message): shown as U+FFFD instead.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NEEDS_ESCAPE = re.compile("[&<>\r]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}  # CR: else XML reads it as LF


def _rows_xml(results: Sequence[RowResult], styles: _Styles, chunk_rows: int = 2000) -> Iterator[bytes]:
    """The ``<row>`` elements of the Results sheet, from row 2, a chunk at a time."""
    names = [c.field for c in COLUMNS]
    letters = [get_column_letter(i) for i in range(1, len(COLUMNS) + 1)]
    quoted = f' s="{styles.quote_prefix_id}"'
    # The outcome cell after its r="..." attribute: style and text are fixed per outcome.
    outcome_tail = {o: (f' s="{i}"' if i else "") + f' t="inlineStr"><is><t>{o.value}</t></is></c>'
                    for o, i in styles.outcome_ids.items()}
    buf: list[str] = []
    for n, r in enumerate(results, start=2):
        buf.append(f'<row r="{n}">')
        for name, letter in zip(names, letters, strict=True):
            value = getattr(r, name)
            if value is None:
                continue
            if isinstance(value, Outcome):
                buf.append(f'<c r="{letter}{n}"{outcome_tail[value]}')
            elif isinstance(value, int) and not isinstance(value, bool):
                buf.append(f'<c r="{letter}{n}" t="n"><v>{value}</v></c>')
            else:
                text = str(value)
                style = quoted if text.startswith(FORMULA_START) else ""
                buf.append(f'<c r="{letter}{n}"{style} t="inlineStr"><is>{_t(text)}</is></c>')
        buf.append("</row>")
        if n % chunk_rows == 0:
            yield "".join(buf).encode()
            buf.clear()
    yield "".join(buf).encode()


def _t(text: str) -> str:
    """A ``<t>`` element holding ``text`` exactly, as far as XML allows."""
    if _ILLEGAL_XML.search(text):
        text = _ILLEGAL_XML.sub("\ufffd", text)
    if len(text) > _MAX_CELL_TEXT:
        text = text[: _MAX_CELL_TEXT - 1] + "…"
    if _NEEDS_ESCAPE.search(text):
        text = _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], text)
    if text != text.strip():  # else Excel trims leading and trailing blanks
        return f'<t xml:space="preserve">{text}</t>'
    return f"<t>{text}</t>"


class _Styles:
    """The cell styles of the workbook, made through openpyxl once: the header's
    bold, each outcome's colours and the quote prefix; their xf indices
    (``style_id``) are what the streamed rows refer to."""

    def __init__(self, ws: WriteOnlyWorksheet) -> None:
        self._bold = Font(bold=True)
        self.outcome_ids: dict[Outcome, int] = {}
        for outcome, style in OUTCOME_STYLE.items():
            proto = WriteOnlyCell(ws)
            if style is not None:
                proto.fill, proto.font = style
            self.outcome_ids[outcome] = proto.style_id if style is not None else 0
        proto = WriteOnlyCell(ws)
        proto.quotePrefix = True
        self.quote_prefix_id: int = proto.style_id

    def header(self, ws: WriteOnlyWorksheet, text: str) -> WriteOnlyCell:
        cell = _text_cell(ws, text)
        cell.font = self._bold
        return cell

    def outcome(self, ws: WriteOnlyWorksheet, outcome: Outcome) -> WriteOnlyCell:
        cell = WriteOnlyCell(ws, outcome.value)
        style = OUTCOME_STYLE[outcome]
        if style is not None:
            cell.fill, cell.font = style
        return cell


def _text_cell(ws: Any, value: str) -> WriteOnlyCell:
    """An openpyxl cell that holds ``value`` as text whatever it looks like.

    openpyxl would store ``=...`` as a formula and ``#N/A`` as an error; forcing
    the data type writes it as an inline string (``t="inlineStr"``), and Excel's
    quote prefix keeps it text when someone edits the cell.
    """
    value = _ILLEGAL_XML.sub("\ufffd", value)[:_MAX_CELL_TEXT]
    cell = WriteOnlyCell(ws, value)
    cell.data_type = "s"
    if value.startswith(FORMULA_START):
        cell.quotePrefix = True
    return cell


def _summary_sheet(ws: Any, styles: _Styles, results: Sequence[RowResult], source: str | None,
                   summary: Mapping[str, int] | None) -> None:
    """Source, when, and how many rows ended how: what someone opening the file asks first."""
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 60
    sheets = sorted({r.sheet for r in results if r.sheet})
    written = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    facts: list[tuple[str, str | int]] = []
    if source is not None:
        facts.append(("Source", source))
    if sheets:
        facts.append(("Sheet", ", ".join(sheets)))
    facts += [("Written (UTC)", written), ("Rows", len(results))]
    for label, value in facts:
        ws.append([styles.header(ws, label), _text_cell(ws, value) if isinstance(value, str) else value])
    ws.append([])
    if summary is None:
        counts = dict.fromkeys(Outcome, 0)
        for r in results:
            counts[r.outcome] += 1
        ws.append([styles.header(ws, "Outcome"), styles.header(ws, "Rows")])
        for outcome, n in counts.items():
            ws.append([styles.outcome(ws, outcome), n])
    else:
        ws.append([styles.header(ws, "Summary"), styles.header(ws, "Rows")])
        for key, n in summary.items():
            if key not in _OUTCOME_VALUES:
                ws.append([_text_cell(ws, key), n])
                continue
            label = styles.outcome(ws, Outcome(key))
            within = SUMMARY_OF[Outcome(key)]
            if within != key and within in summary:
                # apply's summary counts partial and conflict rows as failed too, and then
                # each on its own: say so rather than seem to count them twice.
                label.value = f"{within}: of which {key}"
            ws.append([label, n])
