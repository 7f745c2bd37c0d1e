"""Reading a referral sheet (.xlsx, .xlsm or .csv) into a :class:`Table`.

The reader keeps cells as they are (the validator judges them); it only drops
blank rows, strips surrounding spaces, maps headers to spec columns and
reports what it notices about the sheet as a whole: unknown, duplicate,
unnamed and missing columns, hidden rows, a guessed encoding.

Anything that is not a readable spreadsheet raises :class:`UnusableFile` with
one sentence saying what is wrong and what to do. Any input is read boundedly:
only a regular file within the size limit (``bulkref.sheets.inputs``); a
workbook's parts checked before and while they are inflated
(``bulkref.sheets.xlsxcheck``), its cells read by the native reader in a
child process with a memory and a time limit (``bulkref.sheets.native``).

The header row may sit below title rows (the first rows are searched for the
one naming the most bulkref columns), and without ``--sheet`` the sheet with
bulkref headers is chosen; both are said in a warning.

Reading is two steps: :func:`read_sheet` gives the sheet as it is (every
header, the cells, Excel row numbers, what was noticed while reading), and
:func:`read_table` matches its headers to the spec. A legacy export read
through a mapping file (``bulkref.mapping.source``) takes the first step only.
"""

from __future__ import annotations

import codecs
import csv
import posixpath
import re
import subprocess
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from xml.etree import ElementTree

import numpy as np

from bulkref.errors import NoSuchSheet, UnusableFile
from bulkref.problems import Problem, ProblemCode, Severity
from bulkref.sheets.inputs import checked_head, lock_file_warning, named_kind, read_regular, unreadable
from bulkref.sheets.native import HEADER_ROWS, NativeTrouble, read_native
from bulkref.sheets.options import current
from bulkref.sheets.partscan import busy_meanwhile, scan_parts_apart
from bulkref.sheets.table import Table
from bulkref.sheets.xlsxcheck import PartFacts, ZipTrouble, check_parts, row_tags, scan_parts
from bulkref.spec.columns import SPEC, Column, Need
from bulkref.spec.enums import closest

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Sheet", "read_sheet", "read_table", "table_of"]

EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm"})
# Extensions whose text content is read as CSV; Excel exports .txt and .tsv too.
TEXT_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
CFB_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
WORKBOOK_PART = "xl/workbook.xml"
RELS_PART = "xl/_rels/workbook.xml.rels"
LISTING_MAX = 16 * 1024 * 1024  # the most of workbook.xml and its rels parsed here

SUPPORTED = "bulkref reads .xlsx, .xlsm and .csv files"
# Columns a CSV line may have: Excel's 16,384, with room for what other tools write.
MAX_COLUMNS = 65_536
# An empty cell, as numpy compares it with a column of cells: the same
# elementwise `== None` as a bare None, which numpy's type stubs do not accept.
_EMPTY = np.array(None, dtype=object)
HIDDEN_LISTED = 5  # row numbers named in the hidden-rows warning
# Unknown headers warned of one by one; the rest in one warning (a sheet of
# tens of thousands of columns would otherwise be as many warnings, each a
# difflib search).
UNKNOWN_LISTED = 50


# --------------------------------------------------------------------------- entry point


def read_table(path: Path | str, sheet: str | None = None) -> Table:
    """Read one referral sheet. ``sheet`` picks a worksheet by name (ignored
    for CSV); without it the sheet named Referrals, else the first visible
    worksheet that is not Instructions or Lists, is read."""
    return _build(read_sheet(path, sheet))


def table_of(raw: Sheet) -> Table:
    """The Table of a sheet :func:`read_sheet` gave: its headers matched to the spec."""
    return _build(raw)


def read_sheet(path: Path | str, sheet: str | None = None) -> Sheet:
    """Read one sheet as it is, headers not yet matched to the spec; the sheet
    is chosen as :func:`read_table` chooses it."""
    source = Path(path)
    head = checked_head(source)
    raw = _read_workbook(source, sheet) if _is_workbook(source, head) else _read_csv(source)
    raw.problems[:0] = lock_file_warning(source, raw.name)
    return raw


# --------------------------------------------------------------------------- sniffing


def _is_workbook(source: Path, head: bytes) -> bool:
    """True for an Excel workbook, False for CSV text; raises for anything else.
    The content decides, not the extension: renamed files are common."""
    suffix = source.suffix.lower()
    if head.startswith(ZIP_MAGIC):
        _check_zip(source, suffix)
        return True
    if head.startswith(CFB_MAGIC):
        raise _ole_problem(source)
    if (kind := named_kind(head)) is not None:
        raise _named_kind(source, kind)
    if suffix in TEXT_SUFFIXES:
        return False
    if suffix in EXCEL_SUFFIXES or suffix == ".xls":
        raise UnusableFile(
            f"'{source}' is not a real Excel workbook (its content is not in Excel's "
            "format, it may be damaged or a renamed text file): open it in Excel and "
            "save it as .xlsx (Excel Workbook)."
        )
    raise _not_spreadsheet(source)


def _not_spreadsheet(source: Path) -> UnusableFile:
    return UnusableFile(f"'{source}' is not a spreadsheet: {SUPPORTED}.")


def _named_kind(source: Path, kind: str) -> UnusableFile:
    return UnusableFile(
        f"'{source}' is {kind}, not a spreadsheet: {SUPPORTED}; check that you picked the right file."
    )


def _damaged(source: Path) -> UnusableFile:
    return UnusableFile(
        f"'{source}' is damaged and cannot be read as an Excel workbook: open it in Excel "
        "(which may repair it) and save it again, or export a fresh copy."
    )


def _unsafe(source: Path, why: str) -> UnusableFile:
    return UnusableFile(
        f"'{source}' is not read because {why}: open it in Excel and save it again, or export a fresh copy."
    )


def _encrypted(source: Path) -> UnusableFile:
    return UnusableFile(
        f"'{source}' is password-protected (encrypted): remove the password "
        "(File > Info > Protect Workbook) and save again."
    )


def _check_zip(source: Path, suffix: str) -> None:
    try:
        with zipfile.ZipFile(source) as z:
            names = set(z.namelist())
            mimetype = z.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError):
        if suffix in EXCEL_SUFFIXES or suffix in TEXT_SUFFIXES:
            raise _damaged(source) from None
        raise _not_spreadsheet(source) from None
    except OSError as e:
        raise unreadable(source, e) from None
    if WORKBOOK_PART in names:
        return
    if "xl/workbook.bin" in names:
        raise UnusableFile(
            f"'{source}' is an Excel Binary Workbook (.xlsb): open it in Excel and save "
            "it as .xlsx (Excel Workbook)."
        )
    if b"opendocument.spreadsheet" in mimetype:
        raise UnusableFile(
            f"'{source}' is an OpenDocument spreadsheet (.ods): save it as .xlsx (Excel Workbook)."
        )
    raise UnusableFile(
        f"'{source}' is {_zip_kind(names)}, not a spreadsheet (it has no {WORKBOOK_PART}): check "
        "that you picked the right file, or save the workbook from Excel as .xlsx."
    )


def _zip_kind(names: set[str]) -> str:
    if "word/document.xml" in names:
        return "a Word document"
    if "ppt/presentation.xml" in names:
        return "a PowerPoint presentation"
    return "a zip archive"


def _ole_problem(source: Path) -> UnusableFile:
    """An OLE2 compound file: Office wraps password-protected .xlsx files in one
    (with an EncryptionInfo stream), and old .xls workbooks are one too."""
    try:
        # Only on this failure path, and within the size limit: the stream
        # names sit in a directory sector that may be anywhere in the file.
        data = source.read_bytes()
    except OSError as e:
        return unreadable(source, e)
    if "EncryptionInfo".encode("utf-16-le") in data:
        return _encrypted(source)
    if "WordDocument".encode("utf-16-le") in data:
        return _named_kind(source, "a Word 97-2003 document (.doc)")
    if any(s.encode("utf-16-le") in data for s in ("Workbook", "Book")):
        return UnusableFile(
            f"'{source}' is an old Excel 97-2003 workbook (.xls): open it in Excel and "
            "save it as .xlsx (File > Save As > Excel Workbook)."
        )
    return _not_spreadsheet(source)


# --------------------------------------------------------------------------- xlsx / xlsm


def _read_workbook(source: Path, wanted: str | None) -> Sheet:
    """The sheet, read by calamine in a child process (``bulkref.sheets.native``)
    while every part is inflated once to check it and to find hidden rows and
    uncalculated formulas: in a thread, or in another child where this process
    is busy meanwhile (``bulkref.sheets.partscan``)."""
    size = source.stat().st_size
    try:
        with zipfile.ZipFile(source) as z:
            inflated = check_parts(z, current().max_file_size)
    except ZipTrouble as e:
        raise _unsafe(source, str(e)) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError):
        raise _damaged(source) from None
    worksheets = _worksheet_parts(source)
    watch = _Watch()
    with ThreadPoolExecutor(max_workers=1) as pool:
        scan = pool.submit(_scan, source, worksheets, watch, busy_meanwhile.get())
        try:
            read = read_native(
                str(source), wanted, inflated, size, current().max_file_size, on_start=watch.started
            )
        except NativeTrouble as e:
            watch.done.set()
            if (trouble := _scan_trouble(scan)) is not None:
                raise _unsafe(source, trouble) from None
            raise _native_problem(source, e, wanted) from None
        if (trouble := _scan_trouble(scan)) is not None:
            raise _unsafe(source, trouble) from None
        facts = scan.result()
    part = facts.get(read.name) or PartFacts()
    values, numbers = read.values, read.numbers
    del read.values, read.numbers
    raw = _sheet(values, numbers, source, read.name, part.hidden, [], [s.name for s in read.sheets])
    raw.uncalculated = part.uncalculated
    if read.passed_over:
        raw.problems.append(_chosen_problem(read.name, read.passed_over, raw.available))
    return raw


class _Watch:
    """Lets the scan of the parts stop the native reader's child the moment it
    finds the file unsafe, instead of waiting for the child to run out."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._failed = False
        self._child: subprocess.Popen[bytes] | None = None

    def started(self, child: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._child = child
            if self._failed:
                child.kill()

    def fail(self) -> None:
        with self._lock:
            self._failed = True
            if self._child is not None:
                self._child.kill()


def _scan(source: Path, worksheets: dict[str, str], watch: _Watch, apart: bool) -> dict[str, PartFacts]:
    try:
        scan = scan_parts_apart if apart else scan_parts
        return scan(source, worksheets, stopped=watch.done.is_set)
    except ZipTrouble:
        watch.fail()
        raise


def _scan_trouble(scan: Future[Any]) -> str | None:
    error = scan.exception()
    return str(error) if isinstance(error, ZipTrouble) else None


def _native_problem(source: Path, e: NativeTrouble, wanted: str | None) -> UnusableFile:
    listing = ", ".join(f"'{s.name}'" for s in e.sheets) or "none"
    match e.kind:
        case "encrypted":
            return _encrypted(source)
        case "no_sheet":
            return NoSuchSheet(
                f"'{source}' has no sheet named '{wanted}': its sheets are {listing}, "
                "pass one of these names to --sheet."
            )
        case "not_worksheet":
            return UnusableFile(
                f"Sheet '{wanted}' in '{source}' is not a worksheet (it holds a chart "
                f"or macros): pass --sheet the name of the sheet with the referrals (its sheets: {listing})."
            )
        case "no_worksheet":
            return UnusableFile(
                f"'{source}' has no worksheet to read referrals from (its sheets: {listing}): "
                "add a sheet named Referrals with the template's header row, or pass --sheet a hidden one."
            )
        case "memory" | "time":
            return _unsafe(
                source,
                "it is damaged or larger than bulkref reads safely (the reader ran out of "
                + ("time)" if e.kind == "time" else "memory or stopped)"),
            )
        case _:
            return _damaged(source)


def _chosen_problem(name: str, passed_over: list[str], available: list[str]) -> Problem:
    skipped = ", ".join(f"'{s}'" for s in passed_over)
    listing = ", ".join(f"'{s}'" for s in available)
    return Problem(
        sheet=name,
        row=None,
        column=None,
        code=ProblemCode.SHEET_CHOSEN,
        message=(
            f"Sheet {skipped} has no bulkref header row, so sheet '{name}' was read (the workbook's "
            f"sheets: {listing}); pass --sheet to read another."
        ),
        severity=Severity.WARNING,
    )


def _worksheet_parts(source: Path) -> dict[str, str]:
    """Zip member -> sheet name, for every sheet the workbook lists; empty when
    that cannot be told (then hidden rows and formulas simply go unreported)."""
    try:
        with zipfile.ZipFile(source) as z:
            if any(z.getinfo(n).file_size > LISTING_MAX for n in (WORKBOOK_PART, RELS_PART)):
                return {}  # no workbook lists sheets in megabytes: leave it to calamine
            book_xml = z.read(WORKBOOK_PART)
            rels_xml = z.read(RELS_PART)
            members = set(z.namelist())
        if b"<!DOCTYPE" in book_xml.upper() or b"<!DOCTYPE" in rels_xml.upper():
            return {}  # the scan refuses the file
        book = ElementTree.fromstring(book_xml)
        rels = ElementTree.fromstring(rels_xml)
    except (KeyError, OSError, ValueError, zipfile.BadZipFile, zlib.error, ElementTree.ParseError):
        return {}
    targets = {e.get("Id"): e.get("Target") for e in rels.iter() if _local(e.tag) == "Relationship"}
    parts = {}
    for e in book.iter():
        if _local(e.tag) != "sheet" or not (target := targets.get(_attr(e, "id"))):
            continue
        part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
        if part in members:
            parts[part] = str(e.get("name"))
    return parts


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(element: ElementTree.Element, local: str) -> str | None:
    """An attribute by local name whatever its namespace (``r:id``)."""
    return next((v for k, v in element.attrib.items() if _local(k) == local), None)


def _row_tags(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(row number, attributes) of every row tag, in order (``xlsxcheck.row_tags``)."""
    return row_tags(stream)


# --------------------------------------------------------------------------- csv


def _read_csv(source: Path) -> Sheet:
    limit = current().max_file_size
    data = read_regular(source, limit + 1)
    if len(data) > limit:  # it grew since checked_head looked
        raise UnusableFile(
            f"'{source}' is larger than the {limit:,} bytes bulkref reads: raise the limit "
            "with --max-file-size."
        )
    sheet = source.name
    text, encoding_problems = _decode(source, sheet, data)
    del data
    delimiter, text = _delimiter(text)
    text = _formula_quotes(text, delimiter)
    # Before parsing: a line of millions of delimiters would be a row of as
    # many fields, 8 bytes each.
    if _has_too_wide_line(text, delimiter):
        raise _too_wide(source, f"more than {MAX_COLUMNS:,}")
    # A block of lines at a time into arrays, not every line as a list first: at 100,000
    # lines those lists were half a gigabyte at the peak, the array a tenth of it.
    blocks: list[tuple[np.ndarray, np.ndarray]] = []
    block: list[list[str]] = []
    line = 1
    try:
        for row in csv.reader(_lines(text), delimiter=delimiter):
            if len(row) > MAX_COLUMNS:  # quoted line breaks can hide a line from the scan
                raise _too_wide(source, f"{len(row):,}")
            block.append(row)
            if len(block) == _CSV_BLOCK:
                blocks.append(_cells(block, len(block), max(map(len, block)), line, 0))
                line += len(block)
                block = []
    except csv.Error as e:
        raise UnusableFile(
            f"'{source}' could not be read as CSV ({e}): open it in Excel and save it again as CSV UTF-8."
        ) from None
    del text
    blocks.append(_cells(block, len(block), max(map(len, block), default=0), line, 0))
    del block
    width = max(v.shape[1] for v, _ in blocks)
    values = np.empty((sum(len(v) for v, _ in blocks), width), dtype=object)  # filled with None
    at = 0
    for v, _ in blocks:
        values[at : at + len(v), : v.shape[1]] = v
        at += len(v)
    numbers = np.concatenate([n for _, n in blocks]) if blocks else np.empty(0, dtype=np.int64)
    blocks.clear()
    return _sheet(values, numbers, source, sheet, [], encoding_problems)


# Lines of a CSV file parsed before they are put into the sheet's array.
_CSV_BLOCK = 4096
# A line as ``io.StringIO(text, newline="")`` yields one: up to \n, \r\n or a lone \r, kept.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` as StringIO(text, newline="") yields them, without its copy
    of the text (four bytes a character once read: 230 MB for a 58 MB file)."""
    for match in _LINE.finditer(text):
        yield match.group()


def _has_too_wide_line(text: str, delimiter: str) -> bool:
    """Whether a line has more than MAX_COLUMNS fields. Such a line is
    longer than MAX_COLUMNS characters, so it covers a whole aligned window of
    half that with no line break: only lines found so are counted (str.find
    and str.count, no Python step per line or character)."""
    window = MAX_COLUMNS // 2
    at = 0
    while at + window <= len(text):
        if text.find("\n", at, at + window) >= 0:
            at += window
            continue
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        if text.count(delimiter, start, end) >= MAX_COLUMNS:  # fields: one more than delimiters
            return True
        at = end + 1
    return False


def _too_wide(source: Path, fields: str) -> UnusableFile:
    return UnusableFile(
        f"'{source}' has a line of {fields} fields, more than any spreadsheet holds (Excel's limit "
        "is 16,384 columns): check that it is a CSV file, or export it again."
    )


def _formula_quotes(text: str, delimiter: str) -> str:
    """Drop the apostrophe that keeps a cell from running as a formula in Excel
    ("'=..." is how bulkref, and OWASP's advice, write text that starts with
    = + - or @ to CSV), so such text reads back as written. One pass over the
    whole text, not a Python step per cell."""
    if "'" not in text:
        return text
    cell_start = rf'(^|{re.escape(delimiter)})("?)' + "'" + r"(?=[=+\-@\t\r])"
    return re.sub(cell_start, r"\1\2", text, flags=re.MULTILINE)


_BOMS = (
    # UTF-32 first: its little-endian BOM starts with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(source: Path, sheet: str, data: bytes) -> tuple[str, list[Problem]]:
    codec = next((c for bom, c in _BOMS if data.startswith(bom)), None)
    if codec == "utf-8":
        data = data[len(codecs.BOM_UTF8) :]
        codec = None  # still checked below: a BOM does not make the rest valid
    elif codec is None:
        codec = _utf16_without_bom(data)
    if codec is not None:
        text = data.decode(codec, errors="replace")
        problems: list[Problem] = []
    elif b"\x00" in data:
        raise _binary(source)
    else:
        text, problems = _utf8_or_cp1252(data, sheet)
    if _looks_binary(text):
        raise _binary(source)
    return text, problems


def _utf8_or_cp1252(data: bytes, sheet: str) -> tuple[str, list[Problem]]:
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    # Excel's plain "CSV" on Windows is cp1252; accents are right most of the time.
    warning = Problem(
        sheet=sheet,
        row=None,
        column=None,
        code=ProblemCode.ENCODING_CP1252,
        message=(
            "The file is not UTF-8, so it was read as Windows-1252 (Western European). "
            "Check that accented letters look right, or save it as CSV UTF-8 to be sure."
        ),
        severity=Severity.WARNING,
    )
    return data.decode("cp1252", errors="replace"), [warning]


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 without a BOM shows as a NUL in every other byte (for the Latin
    text of a referral sheet): odd bytes for little-endian, even for big."""
    sample = data[:4096]
    half = len(sample) // 2
    if half < 2:
        return None
    even = sample[0 : 2 * half : 2].count(0)
    odd = sample[1 : 2 * half : 2].count(0)
    if odd >= half * 0.3 and even <= half * 0.02:
        return "utf-16-le"
    if even >= half * 0.3 and odd <= half * 0.02:
        return "utf-16-be"
    return None


def _looks_binary(text: str) -> bool:
    sample = text[:8192]
    if "\x00" in sample:
        return True
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\n\r\f\v")
    return controls > max(2, len(sample) // 100)


def _binary(source: Path) -> UnusableFile:
    return UnusableFile(
        f"'{source}' is not a text (CSV) file, it holds binary data: {SUPPORTED}; "
        "save the sheet from Excel as CSV UTF-8 or .xlsx."
    )


_SEP_LINE = re.compile(r'\A"?sep=(.)"?[^\S\r\n]*(?:\r\n|\n|\r|\Z)')
DELIMITERS = ",;\t"


def _delimiter(text: str) -> tuple[str, str]:
    """The field delimiter and the text to parse. Honours Excel's ``sep=;``
    first line (which Excel does not show as a row), else sniffs among comma,
    semicolon and tab."""
    if m := _SEP_LINE.match(text):
        return m.group(1), text[m.end() :]
    sample = text[:16384]
    if len(text) > len(sample) and (cut := sample.rfind("\n")) > 0:
        sample = sample[:cut]
    header = next((line for line in sample.splitlines() if line.strip()), "")
    try:
        found = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        found = ""
    if found and found in header:
        return found, text
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return (best if counts[best] else ","), text


# --------------------------------------------------------------------------- the table


@dataclass
class Sheet:
    """One sheet as read, before its headers mean anything: the header row's
    texts by position, and below it the cells of every row (blank rows
    included, ``filled`` says which are not) with their Excel row numbers."""

    source: Path
    name: str
    header_row: int
    headers: list[str]  # header text by 0-based position; "" for a blank header cell
    values: np.ndarray  # (rows, columns) object array below the header row; None is blank
    numbers: np.ndarray  # the Excel row number of each row of ``values``
    filled: np.ndarray  # positions in ``values`` of the rows that are not blank
    hidden: list[int]  # Excel row numbers of hidden rows
    problems: list[Problem]  # noticed while reading (a guessed encoding)
    available: list[str] = field(default_factory=list)  # every sheet of the workbook; [] for CSV
    # (Excel row, 0-based column) of formula cells never calculated: they read as blank.
    uncalculated: list[tuple[int, int]] = field(default_factory=list)

    @property
    def rows(self) -> np.ndarray:
        """The Excel row numbers of the rows that are not blank."""
        return self.numbers[self.filled]

    def cells(self, position: int) -> np.ndarray:
        """Column ``position``'s cells on the rows that are not blank."""
        return self.values[self.filled, position]

    def letter(self, position: int) -> str:
        return _letter(position)

    def hidden_problems(self) -> list[Problem]:
        """The warning about hidden rows among the rows read, if any."""
        return _hidden_problem(self.name, self.hidden, self.rows)

    def where(self) -> str:
        """Which sheet was read, for a sheet-level sentence: with the workbook's
        sheets and --sheet when there are others to choose."""
        if len(self.available) < 2:
            return f"sheet '{self.name}'"
        listing = ", ".join(f"'{s}'" for s in self.available)
        return f"sheet '{self.name}' (the workbook's sheets: {listing}; pass --sheet to read another)"


def _sheet(
    values: np.ndarray,
    numbers: np.ndarray,
    source: Path,
    sheet: str,
    hidden: list[int],
    problems: list[Problem],
    available: list[str] | None = None,
) -> Sheet:
    """The sheet of rows ``values`` (blank ones too), whose Excel row numbers
    are ``numbers``. The header is the row among the first filled ones that
    names the most bulkref columns (title rows may sit above it), else the
    first filled row (an export read through a mapping has its own headers)."""
    filled = _filled_rows(values)
    available = available or []
    if not len(filled):
        where = Sheet(source, sheet, 0, [], values, numbers, filled, [], [], available).where()
        raise UnusableFile(
            f"The {where} in '{source}' is empty: it needs a header row (see the "
            "template) and one row per referral."
        )
    at, found_at = _header_position(values, filled)
    problems = list(problems)
    if found_at > 0:
        above = [_header_text(v) for v in values[int(filled[0])] if not _blank(v)]
        problems.append(
            Problem(
                sheet=sheet,
                row=int(numbers[at]),
                column=None,
                code=ProblemCode.HEADER_ROW_BELOW,
                message=(
                    f"The header row is row {int(numbers[at])}; the {found_at} filled "
                    f"row{'s' if found_at > 1 else ''} above it (from '{(above or [''])[0][:40]}') "
                    "are not read. Delete them if they hold referrals' data."
                ),
                severity=Severity.WARNING,
            )
        )
    header = [_header_text(v) for v in values[at]]
    body, numbers_below = values[at + 1 :], numbers[at + 1 :]
    return Sheet(
        source=source,
        name=sheet,
        header_row=int(numbers[at]),
        headers=header,
        values=body,
        numbers=numbers_below,
        filled=_filled_rows(body),
        hidden=hidden,
        problems=problems,
        available=available,
    )


@lru_cache(maxsize=1 << 16)
def _resolve(text: str) -> Column | None:
    """SPEC.resolve, once per text: the header row is resolved while looking for
    it and again when matched, and a sheet may have tens of thousands of columns."""
    return SPEC.resolve(text)


def _header_position(values: np.ndarray, filled: np.ndarray) -> tuple[int, int]:
    """(position in ``values``, position among the filled rows) of the header row."""
    best, best_count = 0, 0
    for k, at in enumerate(filled[:HEADER_ROWS]):
        count = sum(
            1 for v in values[int(at)] if v.__class__ is str and _resolve(_header_text(v)) is not None
        )
        if count > best_count:
            best, best_count = k, count
    return int(filled[best]), best


@dataclass(frozen=True)
class _Found:
    """A header cell that names a spec column."""

    position: int  # 0-based column position in the sheet
    text: str
    column: Column


def _build(raw: Sheet) -> Table:
    """The Table of ``raw``'s non-blank rows and the columns whose headers the spec knows."""
    source, sheet, header_row, header = raw.source, raw.name, raw.header_row, raw.headers
    found, header_problems = _match_headers(sheet, header_row, header, raw.values)
    if not found:
        # Not one bulkref header: this is some other file (a report, a text
        # file), not a referral sheet with mistakes in it.
        shown = ", ".join(f"'{h}'" for h in header if h)[:120]
        raise UnusableFile(
            f"'{source}' is not a referral sheet: in {raw.where()}, none of the first "
            f"{HEADER_ROWS} rows holds a bulkref column header (row {header_row} has {shown}); "
            "start from `bulkref template`, or read another file through a mapping (bulkref map suggest)."
        )
    problems = [*raw.problems, *header_problems]

    row_numbers = raw.rows
    block = _select(raw.values, raw.filled, [f.position for f in found])
    # pandas is loaded only now, once the workbook reader has let go of its
    # copy of the cells: that load is the run's peak memory, and every module
    # already imported adds to it (see bulkref/check.py).
    import pandas as pd

    frame = pd.DataFrame(
        block,
        columns=[f.column.key for f in found],
        index=pd.Index(row_numbers, name="row"),
        dtype=object,
        copy=False,
    )
    problems += _missing_columns(sheet, header_row, found, frame, raw)
    problems += raw.hidden_problems()
    keys = {f.position: f.column.key for f in found}
    rows_read = set(row_numbers.tolist()) if raw.uncalculated else set()
    uncalculated = [(row, keys[col]) for row, col in raw.uncalculated if col in keys and row in rows_read]
    return Table(
        source=source,
        sheet=sheet,
        frame=frame,
        columns={f.column.key: f.column for f in found},
        headers={f.column.key: f.text for f in found},
        letters={f.column.key: _letter(f.position) for f in found},
        header_row=header_row,
        problems=problems,
        uncalculated=uncalculated,
        available=raw.available,
    )


def _blank(value: Any) -> bool:
    return value is None or (value.__class__ is str and not value.strip())


def _header_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a numeric header reads as Excel shows it: 2026, not 2026.0
    return str(value).strip()


def _cells(
    rows: Iterable[Sequence[Any]], height: int, width: int, first_row: int, first_col: int
) -> tuple[np.ndarray, np.ndarray]:
    """The non-blank rows of ``rows`` (at most ``height`` of them) as an
    (n, width) object array, strings stripped and blank cells None, and their
    Excel row numbers (``rows[i]`` is row ``first_row + i``, its first cell in
    column ``first_col``).

    Filled row by row into one array, so the sheet is held once instead of as
    a list of lists and then an array (the peak memory of a 100,000-row sheet
    is what this saves); rows of empty cells cost a count, not a copy;
    repeated strings (countries, currencies, statuses) are shared, not stored
    once per cell.
    """
    values = np.empty((height, width), dtype=object)  # filled with None
    numbers: list[int] = []
    shared: dict[str, str] = {}
    share = shared.setdefault
    for i, row in enumerate(rows):
        if row.count("") == len(row):
            continue
        values[len(numbers), first_col : first_col + len(row)] = [
            ((share(t, t) if (t := v.strip()) else None) if v.__class__ is str else v) for v in row
        ]
        numbers.append(first_row + i)
    return values[: len(numbers)], np.asarray(numbers, dtype=np.int64)


def _filled_rows(values: np.ndarray) -> np.ndarray:
    """Positions of the rows with at least one value. Only rows blank in every
    column so far are checked against the next column, so a sheet whose first
    column is filled costs one column's check, not the whole sheet's."""
    blank = np.arange(len(values))
    for j in range(values.shape[1]):
        if not len(blank):
            break
        blank = blank[np.equal(values[blank, j], _EMPTY)]
    filled = np.ones(len(values), dtype=bool)
    filled[blank] = False
    return np.flatnonzero(filled)


def _select(values: np.ndarray, rows: np.ndarray, columns: list[int]) -> np.ndarray:
    """``values`` cut to ``rows`` and ``columns``, copying only when that cuts anything."""
    if len(rows) < len(values):
        values = values[rows]
    if columns != list(range(values.shape[1])):
        values = values[:, np.array(columns, dtype=np.intp)]
    return values


def _match_headers(
    sheet: str, header_row: int, header: list[str], values: np.ndarray
) -> tuple[list[_Found], list[Problem]]:
    found: dict[str, _Found] = {}
    problems: list[Problem] = []

    def problem(column: str | None, code: str, message: str, severity: Severity) -> None:
        problems.append(Problem(sheet, header_row, column, code, message, severity=severity))

    unknown = 0
    for position, text in enumerate(header):
        if not text:
            if not np.equal(values[:, position], _EMPTY).all():
                problem(
                    None,
                    ProblemCode.UNNAMED_COLUMN,
                    f"Column {_letter(position)} has data but no header, so it is ignored. "
                    "Give it a header from the template or delete it.",
                    Severity.WARNING,
                )
            continue
        column = _resolve(text)
        if column is None:
            unknown += 1
            if unknown <= UNKNOWN_LISTED:
                problem(text, ProblemCode.UNKNOWN_COLUMN, _unknown_message(text), Severity.WARNING)
        elif (first := found.get(column.key)) is not None:
            problem(
                text,
                ProblemCode.DUPLICATE_COLUMN,
                f"Columns '{first.text}' ({_letter(first.position)}) and '{text}' "
                f"({_letter(position)}) are both {column.header}; only the first is read. "
                "Delete or rename the other.",
                Severity.ERROR,
            )
        else:
            found[column.key] = _Found(position, text, column)
    if unknown > UNKNOWN_LISTED:
        problem(
            None,
            ProblemCode.UNKNOWN_COLUMN,
            f"{unknown - UNKNOWN_LISTED:,} more columns are not bulkref columns and are ignored.",
            Severity.WARNING,
        )
    return list(found.values()), problems


def _unknown_message(text: str) -> str:
    message = f"Column '{text}' is not a bulkref column and is ignored."
    close = closest(text.rstrip("* "), (c.header for c in SPEC.columns()))
    return f"{message} Did you mean '{close}'?" if close else message


def missing_required(present: set[str], frame: pd.DataFrame) -> list[str]:
    """The headers of the required columns a sheet lacks: the ALWAYS ones, and the
    NEW ones when some row creates a referral (has no Referral ID)."""
    creates = "referral_id" not in present or bool(frame["referral_id"].isna().any())
    needed = (Need.ALWAYS, Need.NEW) if creates else (Need.ALWAYS,)
    return [c.header for c in SPEC.singles if c.need in needed and c.key not in present]


def _missing_columns(
    sheet: str, header_row: int, found: list[_Found], frame: pd.DataFrame, raw: Sheet
) -> list[Problem]:
    missing = missing_required({f.column.key for f in found}, frame)
    if not missing:
        return []
    plural = len(missing) > 1
    message = (
        f"Missing required column{'s' if plural else ''}"
        f"{f' in {raw.where()}' if len(raw.available) > 1 else ''}: {', '.join(missing)}. "
        f"Add {'them' if plural else 'it'} to the header row (see the template)."
    )
    return [Problem(sheet, header_row, None, ProblemCode.MISSING_COLUMNS, message)]


def _hidden_problem(sheet: str, hidden: list[int], row_numbers: np.ndarray) -> list[Problem]:
    if not hidden:
        return []
    rows = [int(n) for n in row_numbers[np.isin(row_numbers, hidden)]]
    if not rows:
        return []
    listed = ", ".join(map(str, rows[:HIDDEN_LISTED])) + (", ..." if len(rows) > HIDDEN_LISTED else "")
    count = f"{len(rows)} rows are" if len(rows) > 1 else "1 row is"
    message = (
        f"{count} hidden in Excel (row{'s' if len(rows) > 1 else ''} {listed}); bulkref "
        "reads hidden rows like any other. Unhide them to check them, or delete the rows "
        "you do not want imported."
    )
    return [Problem(sheet, rows[0], None, ProblemCode.HIDDEN_ROWS, message, severity=Severity.WARNING)]


def _letter(position: int) -> str:
    """Excel's column letters for a 0-based position: 0 -> A, 27 -> AB."""
    letters = ""
    n = position + 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters
