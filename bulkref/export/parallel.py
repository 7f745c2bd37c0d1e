"""The export's write pass in two processes: the later rows are written by a second one.

Writing a row (its cells out of the spool, its deal type, its XML or CSV) is
Python work, one core's worth, and while the file is written nothing is
being read, so another core is idle. For a large export a second process
(``bulkref.second_process``: it may spawn where it cannot fork, since all it
is handed is the spool's file name) opens the finished spool read-only and
writes the rows from about the middle on, in the same format and with the
same cell styles, to a file in the spool's private folder; this process
writes the first rows meanwhile, then appends the second's. The file is the
one a single process writes, byte for byte (``tests/test_export.py`` checks).
Should the second process fail, this one writes those rows itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bulkref.export.progress import REPORT_EVERY, ProgressCallback, reported
from bulkref.export.sheet import CHUNK_ROWS, CellWriters, write_export, xlsx_skeleton
from bulkref.export.spool import Spool
from bulkref.second_process import SecondProcess, worth_it
from bulkref.sheets import template, xlsxstream
from bulkref.spec.columns import SPEC

# The share of the rows this process writes: it also deflates the whole sheet.
OWN_SHARE = 0.45

_READ_CHUNK = 1 << 20


def write_spool(out: Path, spool: Spool, folder: Path, rows: int, report: ProgressCallback) -> int:
    """Write the ``rows`` rows of the finished ``spool`` to ``out``, in two processes
    when that pays (``second_process.worth_it``); returns the rows written."""
    own = int(rows * OWN_SHARE)
    split = spool.row_seq(own) if worth_it(rows) else None
    if split is None:
        return write_export(out, reported(spool.rows(), rows, report), spool.counts, rows)
    csv_file = out.suffix.lower() == ".csv"
    skeleton = None if csv_file else xlsx_skeleton(spool.counts, rows)
    part = folder / f"rows-from-{own + 2}{out.suffix.lower()}"
    styles = None if skeleton is None else skeleton.styles
    work = (str(spool.file), spool.counts, split, own + 2, skeleton is None, str(part), styles)
    child: SecondProcess | None = None
    written = 0

    def later_rows() -> Iterator[dict[str, Any]]:
        """The second process's rows, written here: it failed."""
        for done, row in enumerate(spool.rows(since=split), start=own + 1):
            yield row
            if not done % REPORT_EVERY:
                report("write", done, rows)

    def child_rows() -> int | None:
        made = None if child is None else child.result()
        if made is not None:
            report("write", own + made, rows)
        return made

    def csv_rows(f: IO[str]) -> None:
        nonlocal written
        written = template.write_csv_rows(f, reported(spool.rows(until=split), rows, report), spool.counts)
        made = child_rows()
        if made is None:
            written += template.write_csv_rows(f, later_rows(), spool.counts, header=False)
            return
        with part.open(encoding="utf-8", newline="") as text:
            while chunk := text.read(_READ_CHUNK):
                f.write(chunk)
        written += made

    def xlsx_rows(f: IO[bytes]) -> None:
        nonlocal written
        assert skeleton is not None
        cells = skeleton.cells()

        def chunks() -> Iterator[bytes]:
            nonlocal written
            first = reported(spool.rows(until=split), rows, report)
            yield from xlsxstream.chunks(cells.rows_xml(first, 2), CHUNK_ROWS)
            made = child_rows()
            if made is None:
                yield from xlsxstream.chunks(cells.rows_xml(later_rows(), own + 2), CHUNK_ROWS)
                return
            with part.open("rb") as data:
                while chunk := data.read(_READ_CHUNK):
                    yield chunk
            written += made

        skeleton.write(f, chunks())
        written += cells.rows_written

    try:
        child = SecondProcess.start(_write_part, work, name="bulkref-export-rows", spawn=True)
        if csv_file:
            xlsxstream.atomic_write(out, "w", csv_rows, what="export")
        else:
            xlsxstream.atomic_write(out, "wb", xlsx_rows, what="export")
    finally:
        if child is not None:
            child.stop()
        with contextlib.suppress(OSError):
            part.unlink()
    return written


def _write_part(
    spool_file: str,
    counts: dict[str, int],
    since: int,
    first_row: int,
    csv_file: bool,
    part: str,
    styles: list[tuple[int, int]] | None,
) -> int:
    """In the second process: the spool's rows from ``since`` on, to ``part`` (CSV without a
    header, or ``<row>`` XML numbered from ``first_row``); how many."""
    with Spool.reopen(Path(spool_file), counts) as spool:
        rows = spool.rows(since=since)
        if csv_file:
            with open(part, "w", encoding="utf-8", errors="replace", newline="") as f:
                return template.write_csv_rows(f, rows, counts, header=False)
        assert styles is not None
        cells = CellWriters(SPEC.columns(counts), styles)
        with open(part, "wb") as out:
            for chunk in xlsxstream.chunks(cells.rows_xml(rows, first_row), CHUNK_ROWS):
                out.write(chunk)
        return cells.rows_written
