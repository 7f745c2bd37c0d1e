"""The export's write pass in two processes: the later rows are made by a second one.

Writing a row (its cells out of the spool, its deal type, its XML or CSV) is
Python work, one core's worth, and while the file is written nothing is
being read, so another core is idle. For a large export a child process
(``multiprocessing``: fork where the process has no other thread, else spawn;
see ``_context``) opens the finished
spool read-only and writes the rows from about the middle on, in the same
format and with the same cell styles, to a file in the spool's private
folder; this process writes the first rows meanwhile, then appends the
child's. The file is the one a single process writes, byte for byte
(``tests/test_export.py`` checks).

Should the child fail in any way (it cannot start, it dies, it raises), this
process writes those rows itself: the export never depends on the second
process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bulkref.export.progress import ProgressCallback, reported
from bulkref.export.sheet import CHUNK_ROWS, CellWriters, XlsxSkeleton, write_export, xlsx_skeleton
from bulkref.export.spool import Spool
from bulkref.sheets import template, xlsxstream
from bulkref.spec.columns import SPEC

# Below this many rows a second process costs more than it saves (it starts at
# once with fork, in half a second where it must import bulkref anew).
MIN_ROWS = 4000

# The share of the rows this process writes: it also deflates the whole sheet.
OWN_SHARE = 0.45

# How long a child may take past this process's own part before it is given up
# on and its rows written here: far more than writing them takes.
_CHILD_GRACE = 600.0

_READ_CHUNK = 1 << 20


def write_spool(out: Path, spool: Spool, folder: Path, rows: int, report: ProgressCallback) -> int:
    """Write the ``rows`` rows of the finished ``spool`` to ``out``, in two processes
    when that pays (``MIN_ROWS``, more than one core); returns the rows written."""
    own = int(rows * OWN_SHARE)
    split = spool.row_seq(own) if rows >= MIN_ROWS and (os.cpu_count() or 1) > 1 else None
    if split is None:
        return write_export(out, reported(spool.rows(), rows, report), spool.counts, rows)
    csv_file = out.suffix.lower() == ".csv"
    skeleton = None if csv_file else xlsx_skeleton(spool.counts, rows)
    part = folder / f"rows-from-{own + 2}{out.suffix.lower()}"
    child = _Child((str(spool.file), spool.counts, split, own + 2, skeleton is None, str(part)))
    written = 0

    def later_rows() -> Iterator[dict[str, Any]]:
        """The child's rows, written here: it failed."""
        for done, row in enumerate(spool.rows(since=split), start=own + 1):
            yield row
            if not done % 100:
                report("write", done, rows)

    def child_rows() -> int | None:
        made = child.result()
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
        child.start(skeleton)
        if csv_file:
            xlsxstream.atomic_write(out, "w", csv_rows, what="export")
        else:
            xlsxstream.atomic_write(out, "wb", xlsx_rows, what="export")
    finally:
        child.stop()
        with contextlib.suppress(OSError):
            part.unlink()
    return written


class _Child:
    """The second process and its answer: how many rows it wrote, None when it failed."""

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args
        self.process: Any = None
        self.pipe: Any = None

    def start(self, skeleton: XlsxSkeleton | None) -> None:
        styles = None if skeleton is None else skeleton.styles
        try:
            context = _context()
            self.pipe, theirs = context.Pipe(duplex=False)
            self.process = context.Process(
                target=_write_part, args=(*self.args, styles, theirs), name="bulkref-export-rows", daemon=True
            )
            self.process.start()
            theirs.close()
        except (OSError, RuntimeError, ValueError):  # no second process: this one writes every row
            self.process = None

    def result(self) -> int | None:
        if self.process is None:
            return None
        try:
            if not self.pipe.poll(_CHILD_GRACE):
                return None
            answer = self.pipe.recv()
        except (EOFError, OSError):  # it died before answering
            return None
        return answer if isinstance(answer, int) else None

    def stop(self) -> None:
        if self.process is not None:
            if self.process.is_alive():
                self.process.terminate()
            self.process.join()
            self.process = None
        if self.pipe is not None:
            self.pipe.close()


def _context() -> Any:
    """fork where it is safe, spawn elsewhere.

    A process forked while another thread holds a lock (the web app's server
    thread, a log handler, the deflate thread) can hang in the child on that
    lock: with ``_CHILD_GRACE`` that would be ten minutes lost. Fork is only
    used where this is the process's one thread (the command line), and on
    Linux only: on macOS a child forked after the system's frameworks were
    loaded (httpx reads the proxy settings through them) may be killed by
    them. Spawn, the default on Windows and macOS, starts a clean interpreter.
    """
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _write_part(
    spool_file: str,
    counts: dict[str, int],
    since: int,
    first_row: int,
    csv_file: bool,
    part: str,
    styles: list[tuple[int, int]] | None,
    pipe: Any,
) -> None:
    """In the child: the spool's rows from ``since`` on, to ``part`` (CSV without a header,
    or ``<row>`` XML numbered from ``first_row``); sends how many, or an error's text."""
    try:
        with Spool.reopen(Path(spool_file), counts) as spool:
            rows = spool.rows(since=since)
            if csv_file:
                with open(part, "w", encoding="utf-8", errors="replace", newline="") as f:
                    made = template.write_csv_rows(f, rows, counts, header=False)
            else:
                assert styles is not None
                cells = CellWriters(SPEC.columns(counts), styles)
                with open(part, "wb") as out:
                    for chunk in xlsxstream.chunks(cells.rows_xml(rows, first_row), CHUNK_ROWS):
                        out.write(chunk)
                made = cells.rows_written
        pipe.send(made)
    except BaseException as e:  # the parent writes these rows itself; it only needs to know
        pipe.send(f"{type(e).__name__}: {e}")
    finally:
        pipe.close()
