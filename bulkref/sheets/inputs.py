"""What the input path is, before a byte of it is parsed.

Only a regular file is opened: a named pipe blocks on open until a writer
comes, and a device (``/dev/zero`` behind a ``.csv`` name) never ends, so
both are refused from ``os.stat`` alone. The size is checked against the
limit (``bulkref.sheets.options``) before reading. Files that are not
spreadsheets at all are named as what they are from their first bytes, and
Excel's lock file (``~$name.xlsx``, there while the workbook is open) is
recognised both given as the input and lying beside it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bulkref.errors import UnusableFile
from bulkref.problems import Problem, ProblemCode, Severity
from bulkref.sheets.options import MAX_FILE_SIZE_ENV, current

__all__ = ["LOCK_PREFIX", "checked_head", "lock_file_warning", "named_kind", "read_regular", "unreadable"]

LOCK_PREFIX = "~$"
HEAD = 16
# Excel's owner file: the user's name, padded; never more than a few hundred bytes.
LOCK_MAX_SIZE = 4096

# First bytes of files people pick by mistake, and what to call them.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"{\\rtf", "a Rich Text (RTF) document"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
)


def unreadable(source: Path, e: OSError) -> UnusableFile:
    return UnusableFile(
        f"'{source}' could not be read ({e.strerror or e}): close it in other programs "
        "and check that you may read it."
    )


def _kind_of(mode: int) -> str | None:
    """What a path that is not a regular file is, for the sentence refusing it."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None


def _size(n: int) -> str:
    return f"{n / 1024**2:,.0f} MB" if n >= 1024**2 else f"{n:,} bytes"


def checked_head(source: Path) -> bytes:
    """The first bytes of ``source``, after making sure it is a regular file,
    not empty, within the size limit and not Excel's lock file."""
    try:
        # stat follows symlinks: a link to /dev/zero is judged as the device.
        info = os.stat(source)
    except FileNotFoundError:
        raise UnusableFile(f"'{source}' does not exist: check the path and the file name.") from None
    except OSError as e:
        raise unreadable(source, e) from None
    if stat.S_ISDIR(info.st_mode):
        raise UnusableFile(
            f"'{source}' is a folder, not a file: give the path of an .xlsx, .xlsm or .csv file."
        )
    if (kind := _kind_of(info.st_mode)) is not None:
        raise UnusableFile(
            f"'{source}' is {kind}, not a file bulkref can read: save the sheet to a file "
            "(.xlsx, .xlsm or .csv) and give its path."
        )
    if source.name.startswith(LOCK_PREFIX) and info.st_size <= LOCK_MAX_SIZE:
        real = source.with_name(source.name[len(LOCK_PREFIX) :])
        raise UnusableFile(
            f"'{source}' is the lock file Excel keeps while '{real.name}' is open, not a workbook: "
            f"save and close '{real.name}' in Excel, then give its path."
        )
    if info.st_size == 0:
        raise UnusableFile(f"'{source}' is empty (0 bytes): save or export the spreadsheet again.")
    limit = current().max_file_size
    if info.st_size > limit:
        raise UnusableFile(
            f"'{source}' is {_size(info.st_size)}, more than the {_size(limit)} bulkref reads: "
            f"check it is the right file, or raise the limit with --max-file-size (or {MAX_FILE_SIZE_ENV})."
        )
    return read_regular(source, HEAD)


def read_regular(source: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``source``, opened so that it cannot block:
    non-blocking where the platform has it (a FIFO swapped in after the stat
    then opens at once) and checked again to be a regular file once open."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(source, flags)
    except OSError as e:
        raise unreadable(source, e) from None
    with os.fdopen(fd, "rb") as f:
        try:
            if (kind := _kind_of(os.fstat(fd).st_mode)) is not None:
                raise UnusableFile(
                    f"'{source}' is {kind}, not a file bulkref can read: save the sheet to a file "
                    "(.xlsx, .xlsm or .csv) and give its path."
                )
            return f.read(limit)
        except OSError as e:
            raise unreadable(source, e) from None


def named_kind(head: bytes) -> str | None:
    """What a file that is not a spreadsheet is, from its first bytes, if that tells."""
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def lock_file_warning(source: Path, sheet: str) -> list[Problem]:
    """A warning when Excel's lock file lies beside the input: the workbook is
    open, and edits not yet saved are not in the file read."""
    lock = source.with_name(LOCK_PREFIX + source.name)
    try:
        present = lock.is_file()
    except OSError:
        present = False
    if not present:
        return []
    return [
        Problem(
            sheet=sheet,
            row=None,
            column=None,
            code=ProblemCode.OPEN_IN_EXCEL,
            message=(
                "The workbook is open in Excel: save and close it first, or unsaved edits are "
                f"missing ('{lock.name}', Excel's lock file, is beside it)."
            ),
            severity=Severity.WARNING,
        )
    ]
