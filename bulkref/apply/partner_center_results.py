"""Results of a sheet in Partner Center's co-sell layout, in that same layout.

Partner Center's own bulk upload answers in the file that was uploaded: an
``Errors`` column, several errors joined by semicolons. People who know that
file read bulkref's answer the same way, so beside bulkref's results sheet an
apply of such a sheet writes ``<name>.partner-center-results.csv``: every row
of the input as it was, its ``Errors`` filled, its ``Referral ID`` and
``Engagement ID`` filled with the ids Partner Center holds (so that the file,
uploaded again here or in Partner Center, updates the deals instead of
creating them twice). Unlike Partner Center's upload, nothing has to be
removed before the file is run again: a re-run finds each deal by its CRM ID.

Cells are written so that none can run as a formula (bulkref.sheets.cells).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from bulkref.apply.outcome import Outcome, RowResult
from bulkref.files import atomic_write
from bulkref.sheets.cells import csv_safe
from bulkref.sheets.reader import Sheet
from bulkref.spec.enums import fold

__all__ = ["MARK", "errors_of", "layout_results_path", "write_layout_results"]

MARK = ".partner-center-results"
ERRORS = "Errors"
IDS = ("Engagement ID", "Referral ID")
SEPARATOR = "; "  # as Partner Center joins several errors in one cell
_FAILED = frozenset({Outcome.FAILED, Outcome.PARTIAL, Outcome.CONFLICT, Outcome.IN_DOUBT, Outcome.SKIPPED})


def layout_results_path(source: Path) -> Path:
    """``deals.csv`` -> ``deals.partner-center-results.csv``, beside it."""
    return source.with_name(f"{source.stem}{MARK}.csv")


def errors_of(result: RowResult | None, skipped: str | None = None) -> str:
    """The ``Errors`` cell of one row: blank when it went through."""
    if result is None:
        return f"Not read: {skipped}" if skipped else ""
    if result.outcome not in _FAILED:
        return ""
    message = result.error_message or result.error_code or result.outcome.value
    # A row's validation problems come joined by "; " already; each is kept whole.
    return message.replace("\r", " ").replace("\n", " ")


def write_layout_results(
    sheet: Sheet, results: Iterable[RowResult], out: Path, skipped: dict[int, str] | None = None
) -> Path:
    """Write ``sheet``'s rows with their Errors and ids filled from ``results`` (by row
    number) to ``out`` (CSV), atomically. ``skipped``: rows the layout left out, and why."""
    by_row = {r.row: r for r in results}
    atomic_write(
        out, "w", lambda f: _write(sheet, by_row, skipped or {}, f), what="Partner Center results file"
    )
    return out


def _write(sheet: Sheet, by_row: dict[int, RowResult], skipped: dict[int, str], f: IO[str]) -> None:
    headers = list(sheet.headers)
    while headers and not headers[-1]:
        headers.pop()
    width = len(headers)
    folded = [fold(h) for h in headers]
    added = [ERRORS] if fold(ERRORS) not in folded else []
    added += [h for h in IDS if fold(h) not in folded]
    out_headers = [*added, *headers]
    at = {fold(h): i for i, h in enumerate(out_headers)}
    w = csv.writer(f)  # the excel dialect, UTF-8 with a BOM (atomic_write): as Excel reads it
    w.writerow([csv_safe(h) for h in out_headers])
    for row, position in zip(sheet.rows.tolist(), sheet.filled.tolist(), strict=True):
        cells = ["" if v is None else str(v) for v in sheet.values[position, :width].tolist()]
        line = [""] * len(added) + cells + [""] * (width - len(cells))
        result = by_row.get(row)
        line[at[fold(ERRORS)]] = errors_of(result, skipped.get(row))
        if result is not None:
            for header, value in zip(IDS, (result.engagement_id, result.referral_id), strict=True):
                if value:
                    line[at[fold(header)]] = value
        w.writerow([csv_safe(c) for c in line])
