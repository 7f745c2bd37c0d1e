"""Reading a referral sheet (.xlsx, .xlsm or .csv) into a :class:`Table`.

The reader keeps cells as they are (the validator judges them); it only drops
blank rows, strips surrounding spaces, maps headers to spec columns and
reports what it notices about the sheet as a whole: unknown, duplicate,
unnamed and missing columns, hidden rows, a guessed encoding.

Anything that is not a readable spreadsheet raises :class:`UnusableFile` with
one sentence saying what is wrong and what to do.

Reading is two steps: :func:`read_sheet` gives the sheet as it is (every
header, the cells, Excel row numbers, what was noticed while reading), and
:func:`read_table` matches its headers to the spec. A legacy export read
through a mapping file (``bulkref.mapping.source``) takes the first step only.
"""

from __future__ import annotations

import codecs
import csv
import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from xml.etree import ElementTree

import numpy as np
import python_calamine as calamine

from bulkref.errors import UnusableFile
from bulkref.problems import Problem, ProblemCode, Severity
from bulkref.sheets.table import Table
from bulkref.spec.columns import SPEC, Column, Need
from bulkref.spec.enums import closest

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Sheet", "read_sheet", "read_table"]

EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm"})
# Extensions whose text content is read as CSV; Excel exports .txt and .tsv too.
TEXT_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
# Template sheets that never hold referrals, skipped when choosing a sheet.
SKIP_SHEETS = frozenset({"instructions", "lists"})
REFERRALS_SHEET = "referrals"

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
CFB_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
WORKBOOK_PART = "xl/workbook.xml"

SUPPORTED = "bulkref reads .xlsx, .xlsm and .csv files"
CHUNK = 1 << 20
HIDDEN_LISTED = 5  # row numbers named in the hidden-rows warning


# --------------------------------------------------------------------------- entry point


def read_table(path: Path | str, sheet: str | None = None) -> Table:
    """Read one referral sheet. ``sheet`` picks a worksheet by name (ignored
    for CSV); without it the sheet named Referrals, else the first visible
    worksheet that is not Instructions or Lists, is read."""
    return _build(read_sheet(path, sheet))


def read_sheet(path: Path | str, sheet: str | None = None) -> Sheet:
    """Read one sheet as it is, headers not yet matched to the spec; the sheet
    is chosen as :func:`read_table` chooses it."""
    source = Path(path)
    head = _head(source)
    if _is_workbook(source, head):
        return _read_workbook(source, sheet)
    return _read_csv(source)


def _head(source: Path) -> bytes:
    """The first bytes of the file, after checking it is a readable, non-empty file."""
    try:
        if not source.exists():
            raise UnusableFile(f"'{source}' does not exist: check the path and the file name.")
        if source.is_dir():
            raise UnusableFile(
                f"'{source}' is a folder, not a file: give the path of an .xlsx, .xlsm or .csv file."
            )
        with source.open("rb") as f:
            head = f.read(8)
    except OSError as e:
        raise _unreadable(source, e) from None
    if not head:
        raise UnusableFile(f"'{source}' is empty (0 bytes): save or export the spreadsheet again.")
    return head


def _unreadable(source: Path, e: OSError) -> UnusableFile:
    return UnusableFile(
        f"'{source}' could not be read ({e.strerror or e}): close it in other programs "
        "and check that you may read it."
    )


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


def _damaged(source: Path) -> UnusableFile:
    return UnusableFile(
        f"'{source}' is damaged and cannot be read as an Excel workbook: open it in Excel "
        "(which may repair it) and save it again, or export a fresh copy."
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
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError):
        if suffix in EXCEL_SUFFIXES or suffix in TEXT_SUFFIXES:
            raise _damaged(source) from None
        raise _not_spreadsheet(source) from None
    except OSError as e:
        raise _unreadable(source, e) from None
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
    if suffix not in EXCEL_SUFFIXES:
        raise _not_spreadsheet(source)
    raise UnusableFile(
        f"'{source}' is a zip archive but not an Excel workbook (it has no "
        f"{WORKBOOK_PART}; it looks like {_zip_kind(names)}): check that you picked the "
        "right file, or save the workbook from Excel as .xlsx."
    )


def _zip_kind(names: set[str]) -> str:
    if "word/document.xml" in names:
        return "a Word document"
    if "ppt/presentation.xml" in names:
        return "a PowerPoint presentation"
    return "an ordinary zip file"


def _ole_problem(source: Path) -> UnusableFile:
    """An OLE2 compound file: Office wraps password-protected .xlsx files in one
    (with an EncryptionInfo stream), and old .xls workbooks are one too."""
    try:
        # Only on this failure path: the stream names sit in a directory
        # sector that may be anywhere in the file.
        data = source.read_bytes()
    except OSError as e:
        return _unreadable(source, e)
    if "EncryptionInfo".encode("utf-16-le") in data:
        return _encrypted(source)
    if any(s.encode("utf-16-le") in data for s in ("Workbook", "Book")):
        return UnusableFile(
            f"'{source}' is an old Excel 97-2003 workbook (.xls): open it in Excel and "
            "save it as .xlsx (File > Save As > Excel Workbook)."
        )
    return _not_spreadsheet(source)


# --------------------------------------------------------------------------- xlsx / xlsm


def _read_workbook(source: Path, wanted: str | None) -> Sheet:
    with _calamine_errors(source):
        book = calamine.CalamineWorkbook.from_path(str(source))
        sheets = book.sheets_metadata
    with book:
        name = _choose_sheet(source, sheets, wanted)
        part = _sheet_part(source, name)
        # Calamine parses without the GIL, so the hidden-row scan of the same
        # XML runs alongside it and costs (almost) no wall time.
        with ThreadPoolExecutor(max_workers=1) as pool:
            hidden: Future[list[int]] | None = pool.submit(_hidden_rows, source, part) if part else None
            with _calamine_errors(source):
                sheet = book.get_sheet_by_name(name)
                # iter_rows() starts at row 1 but at the range's first column.
                first_col = (sheet.start or (0, 0))[1]
                # Rows come from row 1, so the range's end bounds their number.
                height = (sheet.end or (-1, 0))[0] + 1
                values, numbers = _cells(sheet.iter_rows(), height, first_col + sheet.width, 1, first_col)
                # Calamine's own copy of the cells is as large as ours: let it
                # go before the table is built and validated.
                del sheet
            hidden_rows = hidden.result() if hidden else []
    return _sheet(values, numbers, source, name, hidden_rows, [])


@contextmanager
def _calamine_errors(source: Path) -> Iterator[None]:
    """Turn whatever calamine raises on a malformed file into UnusableFile.
    Not all of it is a CalamineError (a date out of range is a ValueError, a
    Rust panic is pyo3's PanicException, a BaseException); wrap calamine calls
    only, so that bulkref's own bugs still show as bugs."""
    try:
        yield
    except calamine.PasswordError:
        raise _encrypted(source) from None
    except MemoryError:
        raise
    except Exception:
        raise _damaged(source) from None
    except BaseException as e:
        if type(e).__name__ == "PanicException":
            raise _damaged(source) from None
        raise


def _choose_sheet(source: Path, sheets: Sequence[Any], wanted: str | None) -> str:
    def is_worksheet(m: Any) -> bool:
        return bool(m.typ == calamine.SheetTypeEnum.WorkSheet)

    listing = ", ".join(f"'{m.name}'" for m in sheets) or "none"
    if wanted is not None:
        match = next((m for m in sheets if m.name == wanted), None) or next(
            (m for m in sheets if m.name.strip().casefold() == wanted.strip().casefold()), None
        )
        if match is None:
            raise UnusableFile(
                f"'{source}' has no sheet named '{wanted}': its sheets are {listing}, "
                "pass one of these names."
            )
        if not is_worksheet(match):
            raise UnusableFile(
                f"Sheet '{match.name}' in '{source}' is not a worksheet (it holds a chart "
                "or macros): pass the name of the sheet with the referrals."
            )
        return str(match.name)
    worksheets = [m for m in sheets if is_worksheet(m)]
    for m in worksheets:
        if m.name.strip().casefold() == REFERRALS_SHEET:
            return str(m.name)
    for m in worksheets:
        visible = m.visible == calamine.SheetVisibleEnum.Visible
        if visible and m.name.strip().casefold() not in SKIP_SHEETS:
            return str(m.name)
    raise UnusableFile(
        f"'{source}' has no worksheet to read referrals from (its sheets: {listing}): "
        "add a sheet named Referrals with the template's header row."
    )


def _sheet_part(source: Path, name: str) -> str | None:
    """The zip member holding sheet ``name``'s XML, or None when it cannot be
    told (then hidden rows simply go unreported)."""
    try:
        with zipfile.ZipFile(source) as z:
            book = ElementTree.fromstring(z.read(WORKBOOK_PART))
            rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
            members = set(z.namelist())
    except (KeyError, OSError, ValueError, zipfile.BadZipFile, zlib.error, ElementTree.ParseError):
        return None
    rid = next(
        (_attr(e, "id") for e in book.iter() if _local(e.tag) == "sheet" and e.get("name") == name),
        None,
    )
    target = next(
        (e.get("Target") for e in rels.iter() if _local(e.tag) == "Relationship" and e.get("Id") == rid),
        None,
    )
    if not rid or not target:
        return None
    part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
    return part if part in members else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(element: ElementTree.Element, local: str) -> str | None:
    """An attribute by local name whatever its namespace (``r:id``)."""
    return next((v for k, v in element.attrib.items() if _local(k) == local), None)


_ROOT = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?worksheet\b")
_ROW_NUMBER = re.compile(rb"""\br=["'](\d+)""")
_HIDDEN = re.compile(rb"""\bhidden=["'](?:1|true)""")


def _hidden_rows(source: Path, part: str) -> list[int]:
    """Row numbers of ``<row hidden="1">`` in the sheet XML. A streaming
    regex pass: calamine does not report row visibility, and openpyxl would
    parse the whole sheet a second time."""
    try:
        with zipfile.ZipFile(source) as z, z.open(part) as f:
            return [n for n, attrs in _row_tags(f) if _HIDDEN.search(attrs)]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        return []  # damage is calamine's to report


def _row_tags(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(row number, attributes) of every row tag, in order."""
    carry = b""
    root = None
    while root is None and (chunk := stream.read(CHUNK)):
        carry += chunk
        root = _ROOT.search(carry)
    prefix = root.group(1) + b":" if root and root.group(1) else b""
    # A literal "<row" prefix lets the regex engine skip ahead quickly.
    tag = re.compile(rb"<" + re.escape(prefix) + rb"row\b([^>]*)>")
    number = 0
    while True:
        chunk = stream.read(CHUNK)
        if chunk:
            buf = carry + chunk
            # Keep a possibly incomplete tag for the next round ("<" never
            # occurs inside a tag, so the last one starts it).
            cut = buf.rfind(b"<")
            done, carry = (buf[:cut], buf[cut:]) if cut >= 0 else (buf, b"")
        else:
            done, carry = carry, b""
        for m in tag.finditer(done):
            r = _ROW_NUMBER.search(m.group(1))
            # r is optional in the file format: a row without it follows the last.
            number = int(r.group(1)) if r else number + 1
            yield number, m.group(1)
        if not chunk:
            return


# --------------------------------------------------------------------------- csv


def _read_csv(source: Path) -> Sheet:
    try:
        data = source.read_bytes()
    except OSError as e:
        raise _unreadable(source, e) from None
    sheet = source.name
    text, encoding_problems = _decode(source, sheet, data)
    del data
    delimiter, text = _delimiter(text)
    text = _formula_quotes(text, delimiter)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as e:
        raise UnusableFile(
            f"'{source}' could not be read as CSV ({e}): open it in Excel and save it again as CSV UTF-8."
        ) from None
    del text
    width = max(map(len, rows), default=0)
    values, numbers = _cells(rows, len(rows), width, 1, 0)
    rows.clear()
    return _sheet(values, numbers, source, sheet, [], encoding_problems)


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


def _sheet(
    values: np.ndarray,
    numbers: np.ndarray,
    source: Path,
    sheet: str,
    hidden: list[int],
    problems: list[Problem],
) -> Sheet:
    """The sheet of rows ``values`` (blank ones too), whose Excel row numbers
    are ``numbers``: the first row with a value is the header."""
    filled = _filled_rows(values)
    if not len(filled):
        raise UnusableFile(
            f"Sheet '{sheet}' in '{source}' is empty: it needs a header row (see the "
            "template) and one row per referral."
        )
    at = int(filled[0])
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
    )


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
            f"'{source}' is not a referral sheet: none of the headers in row {header_row} "
            f"({shown}) is a bulkref column. Start from `bulkref template`."
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
    problems += _missing_columns(sheet, header_row, found, frame)
    problems += raw.hidden_problems()
    return Table(
        source=source,
        sheet=sheet,
        frame=frame,
        columns={f.column.key: f.column for f in found},
        headers={f.column.key: f.text for f in found},
        letters={f.column.key: _letter(f.position) for f in found},
        header_row=header_row,
        problems=problems,
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
    share = {}.setdefault
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
        blank = blank[np.equal(values[blank, j], None)]
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

    for position, text in enumerate(header):
        if not text:
            if not np.equal(values[:, position], None).all():
                problem(
                    None,
                    ProblemCode.UNNAMED_COLUMN,
                    f"Column {_letter(position)} has data but no header, so it is ignored. "
                    "Give it a header from the template or delete it.",
                    Severity.WARNING,
                )
            continue
        column = SPEC.resolve(text)
        if column is None:
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


def _missing_columns(sheet: str, header_row: int, found: list[_Found], frame: pd.DataFrame) -> list[Problem]:
    missing = missing_required({f.column.key for f in found}, frame)
    if not missing:
        return []
    plural = len(missing) > 1
    message = (
        f"Missing required column{'s' if plural else ''}: {', '.join(missing)}. "
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
