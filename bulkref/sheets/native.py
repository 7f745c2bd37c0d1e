"""The native xlsx reader (python-calamine, in Rust), run in a child process.

A hostile or damaged workbook can make calamine abort the process (a Rust
allocation failure: a cell at XFD1048576 makes it allocate the whole dense
range, 512 GB) or grow without bound; neither can be caught in-process. So
the read runs in ``python -m bulkref.sheets.native``: on POSIX with its
address space limited (``resource.setrlimit``), everywhere with a time
limit, and whatever kills it (abort, panic, the memory limit) comes back to
the parent as one sentence and exit 2. Windows and platforms without
``resource`` get the time limit and the parent's pre-checks of the parts
(``bulkref.sheets.xlsxcheck``) only.

The child starts in ~0.3 s (python, numpy, calamine and the column spec
only) and hands back the non-blank rows as codes into their distinct values
(:class:`Cells`), which pickle ten times faster than an object per cell, so
the cost is a small part of a large read (see benchmarks/validate.py).

The child also chooses the sheet: without ``--sheet``, the one named
Referrals, else the first visible worksheet (not Instructions or Lists)
whose first rows hold a bulkref header; it reads only as far as needed.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HEADER_ROWS", "NativeRead", "NativeTrouble", "read_native"]

# How many filled rows from the top may hold the header row (title rows above it).
HEADER_ROWS = 10
SKIP_SHEETS = frozenset({"instructions", "lists"})
REFERRALS_SHEET = "referrals"
# The child's address space: python and calamine, plus a few times the
# inflated XML (the 50,000-row benchmark's 125 MB sheet peaks at 440 MB).
MEMORY_BASE = 768 * 1024 * 1024
MEMORY_PER_INFLATED_BYTE = 4
# Whatever the parts promise, at most 4 GB (more only where --max-file-size
# was raised above 256 MB): 100,000 rows of every column need under 1 GB.
MEMORY_CAP = 4 * 1024**3
MEMORY_CAP_PER_LIMIT_BYTE = 16
TIME_BASE = 60.0
TIME_PER_MB = 2.0


class NativeTrouble(Exception):
    """The child could not read the workbook: ``kind`` says why (encrypted,
    damaged, memory, time, no_sheet, not_worksheet, no_worksheet)."""

    def __init__(self, kind: str, sheets: list[SheetInfo] | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.sheets = sheets or []


@dataclass(frozen=True)
class SheetInfo:
    name: str
    worksheet: bool
    visible: bool


@dataclass
class NativeRead:
    sheets: list[SheetInfo]
    name: str  # the sheet read
    values: Any  # (rows, columns) object array of the non-blank rows; None is blank
    numbers: Any  # the Excel row number of each row of ``values``
    passed_over: list[str] = field(default_factory=list)  # sheets looked at for a header row, not chosen


def read_native(
    path: str,
    wanted: str | None,
    inflated: int,
    file_size: int,
    max_file_size: int,
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> NativeRead:
    """Read one sheet of the workbook at ``path`` in a child process (see the
    module); ``on_start`` is given the child, so that others may stop it."""
    request = json.dumps(
        {
            "path": path,
            "wanted": wanted,
            "memory": min(
                MEMORY_BASE + MEMORY_PER_INFLATED_BYTE * inflated,
                max(MEMORY_CAP, MEMORY_CAP_PER_LIMIT_BYTE * max_file_size),
            ),
        }
    ).encode()
    if not sys.executable:
        # Embedded without an interpreter to start: read in this process,
        # guarded by the pre-checks of the parts alone.
        return _answer(read_guarded(path, wanted))
    timeout = TIME_BASE + TIME_PER_MB * file_size / 1024**2
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulkref.sheets.native"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # a Rust panic's note is not for the user
    )
    if on_start is not None:
        on_start(proc)
    try:
        out, _ = proc.communicate(request, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise NativeTrouble("time") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or not out:
        # Killed (an abort, the memory limit) or died without a word: too
        # large or too damaged to read, and nothing tells which.
        raise NativeTrouble("memory")
    # The child is bulkref's own code: it pickles cell values only.
    return _answer(pickle.loads(out))


def _answer(doc: dict[str, Any]) -> NativeRead:
    if "error" in doc:
        raise NativeTrouble(doc["error"], doc.get("sheets"))
    cells = doc.pop("cells")
    return NativeRead(**doc, values=cells.values(), numbers=cells.numbers)


# --------------------------------------------------------------------------- the child


def _limit_memory(limit: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: the time limit and the pre-checks only
        return
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError, AttributeError):
        return  # e.g. macOS refuses RLIMIT_AS: the time limit still holds


def _has_header(cells: Cells) -> bool:
    from bulkref.spec.columns import SPEC

    return any(v.__class__ is str and SPEC.resolve(v) is not None for v in cells.head(HEADER_ROWS).flat)


@dataclass
class Cells:
    """A sheet's non-blank rows as codes into a table of distinct values: code
    0 is None (blank), ``uniques[c]`` the value of code c. Pickled, this is one
    int32 array and the distinct values, a tenth of the time of pickling an
    object per cell (1 s for 50,000 rows of 77 columns)."""

    uniques: list[Any]
    codes: Any  # (rows, columns) int32 array
    numbers: Any  # the Excel row number of each row

    def table(self) -> Any:
        import numpy as np

        table = np.empty(len(self.uniques), dtype=object)
        table[:] = self.uniques
        return table

    def head(self, rows: int) -> Any:
        return self.table()[self.codes[:rows]]

    def values(self) -> Any:
        """The (rows, columns) object array, None for blank."""
        return self.table()[self.codes]


def _cells(book: Any, name: str) -> Cells:
    """The non-blank rows of sheet ``name``, strings stripped, blank cells None.

    Filled row by row into one array, so the sheet is held once instead of as
    a list of lists and then an array; rows of empty cells cost a count, not a
    copy; each distinct value (countries, currencies, statuses repeat) is
    stored once."""
    import numpy as np

    sheet = book.get_sheet_by_name(name)
    # iter_rows() starts at row 1 but at the range's first column.
    first_col = (sheet.start or (0, 0))[1]
    # Rows come from row 1, so the range's end bounds their number.
    height = (sheet.end or (-1, 0))[0] + 1
    codes = np.zeros((height, first_col + sheet.width), dtype=np.int32)
    # Distinct value -> its code (1, 2, ... in order of appearance). Texts are
    # their own keys; other values are keyed by type too, since True == 1 ==
    # 1.0 but they are different cells (a tuple never equals a str).
    index: dict[Any, int] = {}
    add = index.setdefault
    numbers: list[int] = []
    for i, row in enumerate(sheet.iter_rows()):
        if row.count("") == len(row):
            continue
        codes[len(numbers), first_col : first_col + len(row)] = [
            (
                (add(t, len(index) + 1) if (t := v.strip()) else 0)
                if v.__class__ is str
                else add((v.__class__, v), len(index) + 1)
            )
            for v in row
        ]
        numbers.append(i + 1)
    uniques = [None, *(k if k.__class__ is str else k[1] for k in index)]
    del sheet  # calamine's copy of the cells, as large as ours
    return Cells(uniques, codes[: len(numbers)], np.asarray(numbers, dtype=np.int64))


def _read(path: str, wanted: str | None) -> dict[str, Any]:
    import python_calamine as calamine

    book = calamine.CalamineWorkbook.from_path(path)
    sheets = [
        SheetInfo(
            str(m.name),
            m.typ == calamine.SheetTypeEnum.WorkSheet,
            m.visible == calamine.SheetVisibleEnum.Visible,
        )
        for m in book.sheets_metadata
    ]
    if wanted is not None:
        match = next((s for s in sheets if s.name == wanted), None) or next(
            (s for s in sheets if s.name.strip().casefold() == wanted.strip().casefold()), None
        )
        if match is None:
            return {"error": "no_sheet", "sheets": sheets}
        if not match.worksheet:
            return {"error": "not_worksheet", "sheets": sheets}
        return {"sheets": sheets, "name": match.name, "cells": _cells(book, match.name)}
    named = [s for s in sheets if s.worksheet and s.name.strip().casefold() == REFERRALS_SHEET]
    others = [
        s
        for s in sheets
        if s.worksheet and s.visible and s not in named and s.name.strip().casefold() not in SKIP_SHEETS
    ]
    candidates = named + others
    if not candidates:
        return {"error": "no_worksheet", "sheets": sheets}
    first: Cells | None = None
    passed_over: list[str] = []
    for s in candidates:
        cells = _cells(book, s.name)
        if _has_header(cells):
            return {"sheets": sheets, "name": s.name, "cells": cells, "passed_over": passed_over}
        passed_over.append(s.name)
        if first is None:
            first = cells
        del cells
    # No sheet has a bulkref header: the first is read, and the reader says so.
    assert first is not None
    return {"sheets": sheets, "name": candidates[0].name, "cells": first}


def read_guarded(path: str, wanted: str | None) -> dict[str, Any]:
    """:func:`_read`, with what calamine raises turned into an ``error`` kind.
    Not all of it is a CalamineError (a date out of range is a ValueError, a
    Rust panic is pyo3's PanicException, a BaseException)."""
    import python_calamine as calamine

    try:
        return _read(path, wanted)
    except calamine.PasswordError:
        return {"error": "encrypted"}
    except MemoryError:
        return {"error": "memory"}
    except Exception:
        return {"error": "damaged"}
    except BaseException as e:
        if type(e).__name__ != "PanicException":
            raise
        return {"error": "damaged"}


def _main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    _limit_memory(int(request["memory"]))
    doc = read_guarded(request["path"], request["wanted"])
    sys.stdout.buffer.write(pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    # Through the module's real name, so that what is pickled (SheetInfo)
    # unpickles in the parent as bulkref.sheets.native's, not __main__'s.
    from bulkref.sheets.native import _main as main

    main()
