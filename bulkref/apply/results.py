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
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import IO, Any, NamedTuple

import openpyxl
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from bulkref.apply.outcome import SUMMARY_OF, Outcome, RowResult
from bulkref.errors import UnwritableOutput
from bulkref.files import atomic_write
from bulkref.sheets import xlsxstream as sheetxml
from bulkref.sheets.cells import FORMULA_START, csv_safe

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
    Outcome.ADOPTED: _GREY,
    Outcome.PARTIAL: _ORANGE,
    Outcome.CONFLICT: _ORANGE,
    Outcome.FAILED: _RED,
    Outcome.IN_DOUBT: _ORANGE,  # to be settled by running again, not to be fixed by hand
    Outcome.SKIPPED: None,  # nothing happened: nothing to draw the eye
}


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


def keep_previous(out: Path) -> tuple[Path, Path | None]:
    """Keep a results file already at ``out`` as a copy named
    ``<stem>.<UTC time it was written><suffix>`` beside it
    (``deals.results.2026-12-01_171553.xlsx``). Returns (where to write, where the
    previous file is kept, None when there was none).

    A results file is the record of which referrals a run created: a re-run
    (all unchanged, say) must not replace it silently. The newest run's file
    keeps the plain name, so scripts find it where they always did. A copy, not
    a rename: until the new file replaces it atomically, the plain name still
    holds the previous record, so a write that fails (a full disk) loses
    nothing (``drop_kept`` then removes the copy). Should the copy fail, the new
    results get the dated name instead: the previous file is never lost for it.
    """
    out = Path(out)
    if not out.is_file():
        return out, None
    kept = _dated(out, dt.datetime.fromtimestamp(out.stat().st_mtime, dt.UTC))
    try:
        shutil.copy2(out, kept)
    except OSError:
        with contextlib.suppress(OSError):
            kept.unlink()
        return _dated(out, dt.datetime.now(dt.UTC)), out
    return out, kept


def drop_kept(out: Path, kept: Path | None) -> None:
    """After a failed write to ``out``: the plain name still holds the previous
    results, so their dated copy from ``keep_previous`` is only clutter."""
    if kept is not None and kept != out and out.is_file():
        with contextlib.suppress(OSError):
            kept.unlink()


def _dated(out: Path, when: dt.datetime) -> Path:
    stem = f"{out.stem}.{when:%Y-%m-%d_%H%M%S}"
    dated, n = out.with_name(f"{stem}{out.suffix}"), 1
    while dated.exists():  # two runs within a second: number them rather than lose one
        n += 1
        dated = out.with_name(f"{stem}-{n}{out.suffix}")
    return dated


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
        raise UnwritableOutput(
            f"--results {Path(out).name} is the input file: choose another name, or leave "
            f"--results out to write {default_path(Path(input_path)).name}."
        )


def write_results(
    results: Sequence[RowResult],
    out: Path,
    *,
    source: str | None = None,
    summary: Mapping[str, int] | None = None,
    in_order: bool = False,
) -> Path:
    """Write ``results`` (one per input row, in any order: written in row order)
    to ``out``, a .xlsx or .csv file by its suffix, replacing any previous
    results file atomically. Returns ``out``.

    ``source`` names the input on the Summary sheet. ``summary`` is the counts to
    show there (e.g. apply's JSON summary); without it, the rows per outcome.
    ``in_order``: ``results`` are in the input's order already (a journal's, read as
    they are written: bulkref.apply.record.JournalResults), and are not held whole.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if not in_order:  # rows finish out of order under concurrency; the file follows the input
        results = sorted(results, key=lambda r: r.row)
    if suffix == ".csv":
        atomic_write(out, "w", lambda f: _write_csv(results, f), what="results file")
    elif suffix == ".xlsx":
        atomic_write(out, "wb", lambda f: _write_xlsx(results, f, source, summary), what="results file")
    else:
        raise UnwritableOutput(f"The results file must end in .xlsx or .csv, not {out.name}.")
    return out


# --- CSV ----------------------------------------------------------------------------------------


def _write_csv(results: Sequence[RowResult], f: IO[str]) -> None:
    # utf-8-sig (set by the caller) puts the BOM Excel needs to read UTF-8 rather than the ANSI code page.
    w = csv.writer(f)  # the excel dialect: commas, quoting as Excel expects, CRLF
    w.writerow(HEADERS)
    names = [c.field for c in COLUMNS]
    for r in results:
        w.writerow([csv_value(getattr(r, name)) for name in names])


def csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, Outcome):
        return value.value
    return csv_safe(value)


# --- workbook -----------------------------------------------------------------------------------
#
# openpyxl makes the workbook: styles, the Results sheet's widths, frozen header,
# autofilter and header row, and the Summary sheet. The data rows of Results are
# then streamed into that sheet's XML (bulkref.sheets.xlsxstream): 100,000 rows x 12
# columns took 16 s in openpyxl's write-only mode, which a user waits through
# after Ctrl+C, and take ~2 s so, in constant memory, as numbers and inline
# strings only (quote-prefixed when they look like formulas).


def _write_xlsx(
    results: Sequence[RowResult], f: IO[bytes], source: str | None, summary: Mapping[str, int] | None
) -> None:
    wb = openpyxl.Workbook(write_only=True)
    wb.properties.creator = "bulkref"
    ws = wb.create_sheet(RESULTS_SHEET)
    assert isinstance(ws, WriteOnlyWorksheet)
    styles = _Styles(ws)
    # Widths and the frozen header go in the sheet's XML before the rows: set them first.
    # The stubs leave out what the write-only sheet forwards to the worksheet it writes.
    for i, col in enumerate(COLUMNS, 1):
        ws.column_dimensions[get_column_letter(i)].width = col.width  # type: ignore[attr-defined]
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(results) + 1}"  # type: ignore[attr-defined]
    ws.append([styles.header(ws, h) for h in HEADERS])
    _summary_sheet(wb.create_sheet(SUMMARY_SHEET), styles, results, source, summary)

    skeleton = io.BytesIO()  # a few kilobytes: every row is still to come
    wb.save(skeleton)
    sheetxml.insert_rows(skeleton, ws.path.lstrip("/"), rows_xml(results, styles), f)


def rows_xml(results: Sequence[RowResult], styles: _Styles, chunk_rows: int = 2000) -> Iterator[bytes]:
    """The ``<row>`` elements of the Results sheet, from row 2, a chunk at a time."""
    names = [c.field for c in COLUMNS]
    letters = sheetxml.column_letters(len(COLUMNS))
    quoted = styles.quote_prefix_id
    outcome_ids = styles.outcome_ids

    def cells(n: int, r: RowResult) -> Iterator[str]:
        for name, letter in zip(names, letters, strict=True):
            value = getattr(r, name)
            if value is None:
                continue
            if isinstance(value, Outcome):  # its text, in its colours
                yield sheetxml.text_cell(f"{letter}{n}", value.value, outcome_ids[value])
            elif isinstance(value, int) and not isinstance(value, bool):
                yield sheetxml.number_cell(f"{letter}{n}", value)
            else:
                yield sheetxml.text_cell(f"{letter}{n}", str(value), 0, quoted)

    rows = (sheetxml.row_xml(n, cells(n, r)) for n, r in enumerate(results, start=2))
    return sheetxml.chunks(rows, chunk_rows)


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

    def header(self, ws: WriteOnlyWorksheet, text: str) -> Cell:
        cell = _text_cell(ws, text)
        cell.font = self._bold
        return cell

    def outcome(self, ws: WriteOnlyWorksheet, outcome: Outcome) -> Cell:
        cell = WriteOnlyCell(ws, outcome.value)
        style = OUTCOME_STYLE[outcome]
        if style is not None:
            cell.fill, cell.font = style
        return cell


def _text_cell(ws: Any, value: str) -> Cell:
    """An openpyxl cell that holds ``value`` as text whatever it looks like.

    openpyxl would store ``=...`` as a formula and ``#N/A`` as an error; forcing
    the data type writes it as an inline string (``t="inlineStr"``), and Excel's
    quote prefix keeps it text when someone edits the cell.
    """
    value = sheetxml.clean(value)
    cell = WriteOnlyCell(ws, value)
    cell.data_type = "s"
    if value.startswith(FORMULA_START):
        cell.quotePrefix = True
    return cell


def _summary_sheet(
    ws: Any,
    styles: _Styles,
    results: Sequence[RowResult],
    source: str | None,
    summary: Mapping[str, int] | None,
) -> None:
    """Source, when, and how many rows ended how: what someone opening the file asks first."""
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 60
    named = getattr(results, "sheet_names", None)  # a journal's results name them without a pass
    sheets = sorted(named() if named is not None else {r.sheet for r in results if r.sheet})
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
            cell = styles.outcome(ws, Outcome(key))
            within = SUMMARY_OF[Outcome(key)]
            if within != key and within in summary:
                # apply's summary counts partial and conflict rows as failed too, and then
                # each on its own: say so rather than seem to count them twice.
                cell.value = f"{within}: of which {key}"
            ws.append([cell, n])
