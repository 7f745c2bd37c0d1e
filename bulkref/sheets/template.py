"""The guided fill-in template, generated from the column spec.

``write_template`` writes the workbook people fill in (or a CSV with the same
header row). Everything in it comes from ``bulkref.spec.columns.SPEC`` and
``bulkref.spec.enums``: headers, help, drop-down lists, formats. To change a
column, change the spec, not this module.

The workbook has three sheets:

* ``Instructions``: how to fill the file, then one line per column;
* ``Referrals``: the header row, and with ``examples=True`` a few example deals
  (``bulkref.sheets.examples``);
* ``Lists``: the values behind the drop-downs, one column per list.

Output is byte-for-byte reproducible (fixed document properties and zip entry
times), so the committed copies can be tested for staleness. Regenerate
``templates/referrals-template.xlsx``, ``examples/referrals.xlsx`` and
``examples/referrals.csv`` after changing the spec, the enums, the examples or
this module with::

    python -m bulkref.sheets.template --refresh
"""

from __future__ import annotations

import argparse
import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Final
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

from openpyxl import Workbook
from openpyxl.cell.cell import Cell, MergedCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from bulkref.sheets.cells import FORMULA_START, csv_safe, put
from bulkref.sheets.examples import EXAMPLES
from bulkref.spec import enums as enums_mod
from bulkref.spec.columns import SPEC, Column, Kind, Need

SHEET_INSTRUCTIONS: Final = "Instructions"
SHEET_REFERRALS: Final = "Referrals"
SHEET_LISTS: Final = "Lists"
FORMATS: Final = ("xlsx", "csv")

# Validations (drop-downs, input messages) cover this many data rows. Excel
# needs a range; bulkref itself reads every row, so this is no limit.
DATA_ROWS: Final = 5000

# How Yes/No columns are written and offered. The reader accepts more
# spellings; these are the two the drop-down shows.
YES_NO: Final = ("Yes", "No")
# How a typed list (the ids of one cell) is written back; the reader splits on ";".
LIST_SEPARATOR: Final = "; "
YES_NO_LIST: Final = "yes_no"

DATE_FORMAT: Final = "yyyy-mm-dd"
TIMESTAMP_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
DECIMAL_FORMAT: Final = "#,##0.00"
TEXT_FORMAT: Final = "@"

# Excel's own limits; going over them gives the "We found a problem with some
# content ... Do you want us to try to recover?" prompt on opening.
MAX_TITLE: Final = 32  # data validation prompt and error titles
MAX_MESSAGE: Final = 255  # data validation prompt and error texts

# The committed copies: path under the repository root -> (format, examples).
COMMITTED: Final[dict[str, tuple[str, bool]]] = {
    "templates/referrals-template.xlsx": ("xlsx", False),
    "examples/referrals.xlsx": ("xlsx", True),
    "examples/referrals.csv": ("csv", True),
}

_REPO_ROOT: Final = Path(__file__).resolve().parents[2]
_FIXED_TIME: Final = datetime(2024, 1, 1)
_CREATOR: Final = "bulkref"

# Text columns whose content is often all digits and must keep its leading
# zeros. Ids and phone/DUNS kinds are recognised on their own; see _keeps_text.
_DIGIT_TEXT_KEYS: Final = frozenset({"postal_code"})
_ID_KEY = re.compile(r"(?:^|[._])id$")

# A list shown inline in the Instructions table when it is this short.
_INLINE_MAX: Final = 60


@dataclass(frozen=True)
class _HeaderStyle:
    fill: str
    font: Font
    meaning: str


_REQUIRED = _HeaderStyle("C65911", Font(bold=True, color="FFFFFF"), "required (marked *)")
_OPTIONAL = _HeaderStyle("DDEBF7", Font(bold=True, color="1F1F1F"), "optional")
_READ_ONLY = _HeaderStyle(
    "D9D9D9", Font(bold=True, italic=True, color="595959"), "read-only, ignored on input"
)
_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=14)
_HEADING = Font(bold=True, size=12)
_TABLE_HEAD_FILL = PatternFill("solid", fgColor="D9D9D9")
_WRAP_TOP = Alignment(wrap_text=True, vertical="top")


@dataclass(frozen=True)
class ListRange:
    """One drop-down list as placed on the Lists sheet."""

    name: str
    values: tuple[str, ...]
    column: int  # 1-based column on the Lists sheet

    @property
    def letter(self) -> str:
        return get_column_letter(self.column)

    @property
    def ref(self) -> str:
        """The range a list validation points at, as Excel writes it (no ``=``)."""
        last = len(self.values) + 1
        return f"{SHEET_LISTS}!${self.letter}$2:${self.letter}${last}"


# --- what goes where -------------------------------------------------------


def dropdown_list(c: Column) -> str | None:
    """The name of the list behind ``c``'s drop-down, or None if it has none."""
    if c.kind is Kind.BOOL:
        return YES_NO_LIST
    if c.kind is Kind.CHOICE:
        return c.choices
    return None


def dropdown_lists(columns: Sequence[Column] | None = None) -> dict[str, ListRange]:
    """Every list the drop-downs use, in order of first use, with its place."""
    tables = enums_mod.load()
    out: dict[str, ListRange] = {}
    for c in SPEC.columns() if columns is None else columns:
        name = dropdown_list(c)
        if name is None or name in out:
            continue
        values = YES_NO if name == YES_NO_LIST else tables.lists[name]
        out[name] = ListRange(name, values, len(out) + 1)
    return out


def _keeps_text(c: Column) -> bool:
    if c.kind in (Kind.PHONE, Kind.DUNS):
        return True
    return c.kind is Kind.TEXT and (c.key in _DIGIT_TEXT_KEYS or bool(_ID_KEY.search(c.key)))


def number_format(c: Column) -> str | None:
    """The cell format of ``c``'s data cells, None for Excel's General."""
    if c.kind is Kind.DATE:
        return DATE_FORMAT
    if c.kind is Kind.TIMESTAMP:
        return TIMESTAMP_FORMAT
    if c.kind is Kind.DECIMAL:
        return DECIMAL_FORMAT
    # Without "@", Excel turns 02110 into 2110 and a long id into 1.2E+11.
    return TEXT_FORMAT if _keeps_text(c) else None


def requirement(c: Column) -> str:
    """When ``c`` must be filled, in words for the Instructions sheet."""
    if c.read_only:
        return "read-only (ignored on input)"
    if c.need is Need.ALWAYS:
        return "every row without a Referral ID"
    if c.need is Need.NEW:
        return "new referrals"
    if c.when:
        return f"when {c.when}"
    return "optional"


def example_rows() -> list[dict[str, object]]:
    """The example deals, keyed by ``Column.key`` (a copy, safe to change)."""
    return [dict(row) for row in EXAMPLES]


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, marked with "…"."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "…"


_PROMPT_LEAD: Final = {
    Need.ALWAYS: "Required on every row without a Referral ID. ",
    Need.NEW: "Required for a new referral. ",
}


def _prompt(c: Column) -> str:
    lead = _PROMPT_LEAD.get(c.need, "")
    if not lead and c.when and not c.read_only:
        lead = f"Required when {c.when}. "
    return clip(lead + c.help, MAX_MESSAGE)


# --- the workbook ----------------------------------------------------------


def build_workbook(
    rows: Iterable[Mapping[str, object]] = (),
    counts: dict[str, int] | None = None,
    *,
    data_rows: int = DATA_ROWS,
) -> Workbook:
    """The template workbook with ``rows`` (dicts keyed by ``Column.key``) as data.

    ``counts`` sets how many numbered columns each group gets
    (``{"contact": 3}``), as for ``SPEC.columns``. ``data_rows`` is how many
    data rows the drop-downs and input messages cover (an export that streams
    its rows in afterwards, see bulkref.export.sheet, passes how many it will write).
    """
    columns = SPEC.columns(counts)
    lists = dropdown_lists(columns)
    wb = Workbook()
    instructions = wb.active
    assert instructions is not None  # a new Workbook always has one sheet
    instructions.title = SHEET_INSTRUCTIONS
    _fill_instructions(instructions, columns, lists, data_rows)
    _fill_referrals(wb.create_sheet(SHEET_REFERRALS), columns, lists, _checked(rows, columns), data_rows)
    _fill_lists(wb.create_sheet(SHEET_LISTS), lists)
    return wb


def _checked(rows: Iterable[Mapping[str, object]], columns: list[Column]) -> Iterator[Mapping[str, object]]:
    """``rows``, one at a time (an export streams them), each checked for keys
    that are not columns."""
    known = {c.key for c in columns}
    for n, row in enumerate(rows, start=1):
        if unknown := sorted(set(row) - known):
            raise ValueError(f"row {n}: no template column for {', '.join(unknown)}")
        yield row


def _instruction_lines(columns: list[Column], data_rows: int = DATA_ROWS) -> list[tuple[str, Font | None]]:
    """The how-to text, every column name in it taken from the spec."""
    ext = SPEC.single("external_id").header
    rid = SPEC.single("referral_id").header
    contact = SPEC.group("contact")
    email = next(f for f in contact.fields if f.key == "email")
    numbered = [contact.column(n, email).header for n in range(1, contact.in_template + 2)]
    always = ", ".join(c.header for c in columns if c.need is Need.ALWAYS)
    lists = ", ".join(c.header for c in columns if c.kind is Kind.LIST)
    groups = ", ".join(g.label for g in SPEC.groups)
    read_only = ", ".join(c.header for c in columns if c.read_only)
    deal_type = SPEC.single("deal_type")
    body = [
        f"One row = one deal. Keep row 1 of the {SHEET_REFERRALS} sheet (the headers) as it is.",
        f"* marks the columns a new referral needs; {always} is needed on every row, "
        f"new or update, except a row with a {rid} (referrals made in Partner Center may have none).",
        f"{ext} is your own key for the deal (e.g. the CRM opportunity id): bulkref finds "
        "the referral by it, so running the same file again updates instead of creating "
        "duplicates.",
        f"Keep {ext} unique in the file, and do not change it once the deal is in Partner Center.",
        f"Updating an existing referral: keep its {ext} (and {rid}, if you have it) and fill "
        'only what should change. A blank cell means "leave as it is".',
        f'Numbered groups ({groups}): one person or item per number, e.g. "{numbered[0]}", "{numbered[1]}".',
        f'Need more? Insert columns with the next number, e.g. "{numbered[-1]}". '
        "Unused numbers may stay blank.",
        f"Lists ({lists}): several values separated by ; (semicolon).",
        f"Drop-downs offer the allowed values (from the {SHEET_LISTS} sheet). bulkref also "
        "accepts the same value with other case, spaces or hyphens.",
        "Dates: an Excel date or YYYY-MM-DD. Numbers: no currency sign. "
        f"Yes/No columns: {' or '.join(YES_NO)}.",
        f"The columns at the end ({read_only}) are filled by bulkref export and ignored on input.",
        "A CSV file works too: the same headers in row 1, comma-separated, UTF-8.",
        f"Drop-downs and input messages are set on the first {data_rows:,} data rows; "
        "that is no limit: bulkref reads every row.",
    ]
    run = (
        f"Fill the {SHEET_REFERRALS} sheet, then run: bulkref validate FILE, "
        "bulkref plan FILE, bulkref apply FILE."
    )
    return [
        ("bulkref: bulk import of Partner Center referrals", _TITLE),
        (run, None),
        ("", None),
        ("How to fill it", _HEADING),
        *((text, None) for text in body),
        ("", None),
        (deal_type.header, _HEADING),
        # The help says what each deal type means, a sentence each.
        *((text, None) for text in re.split(r"(?<=\.)\s+", deal_type.help)),
        ("", None),
        ("Header colours", _HEADING),
    ]


def _fill_instructions(
    ws: Worksheet, columns: list[Column], lists: dict[str, ListRange], data_rows: int = DATA_ROWS
) -> None:
    heads = ("Column", "Required", "Type", "Allowed values", "Help", "Example")
    for i, width in enumerate((34, 24, 14, 44, 90, 30), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    row = 0
    # One line per cell, unwrapped: the text runs on over the empty cells beside it.
    for row, (text, font) in enumerate(_instruction_lines(columns, data_rows), start=1):
        cell = ws.cell(row, 1)
        _put(cell, text or None)
        if font is not None:
            cell.font = font
    for style in (_REQUIRED, _OPTIONAL, _READ_ONLY):
        row += 1
        cell = ws.cell(row, 1, style.meaning)
        cell.fill = PatternFill("solid", fgColor=style.fill)
        cell.font = style.font
    row += 2
    ws.cell(row, 1, "The columns").font = _HEADING
    row = _table(ws, row + 1, heads, (_column_line(c, lists) for c in columns))
    tables = enums_mod.load()
    status, substatus = SPEC.single("status"), SPEC.single("substatus")
    ws.cell(row + 1, 1, f"{status.header} and {substatus.header}").font = _HEADING
    pairs = ((s, ", ".join(subs)) for s, subs in tables.status_substatus.items())
    row = _table(ws, row + 2, (status.header, substatus.header), pairs)
    area, play = SPEC.single("solution_area"), SPEC.single("solution_play")
    fy = tables.taxonomy.fiscal_year
    ws.cell(row + 1, 1, f"{area.header} and {play.header} ({fy})").font = _HEADING
    # Unwrapped, as the how-to lines: it runs on over the empty cells beside it.
    _put(
        ws.cell(row + 2, 1),
        f"The {fy} table bulkref has. Partner Center changes it every fiscal year: a newer "
        "name is taken with a warning and sent as written (bulkref taxonomy prints the table; "
        "--taxonomy FILE uses another).",
    )
    # One play a line, unwrapped: the narrow second column would make tall rows.
    plays = ((a, p) for a, ps in tables.solution_plays.items() for p in ps)
    _table(ws, row + 3, (area.header, play.header), plays, wrap=False)


def _column_line(c: Column, lists: dict[str, ListRange]) -> tuple[str, ...]:
    return (c.label, requirement(c), c.kind.value, _allowed(c, lists), c.help, c.example)


def _allowed(c: Column, lists: dict[str, ListRange]) -> str:
    name = dropdown_list(c)
    if name is None:
        return ""
    found = lists[name]
    inline = ", ".join(found.values)
    if len(inline) <= _INLINE_MAX:
        return inline
    return f"{len(found.values)} values: see the {SHEET_LISTS} sheet, column {found.letter} ({name})"


def _table(
    ws: Worksheet,
    top: int,
    heads: Sequence[str],
    lines: Iterable[Sequence[str]],
    wrap: bool = True,
) -> int:
    """Writes a headed table from row ``top``; returns its last row."""
    for col, head in enumerate(heads, start=1):
        cell: Cell | MergedCell = ws.cell(top, col, head)
        cell.font = _BOLD
        cell.fill = _TABLE_HEAD_FILL
    row = top
    for row, line in enumerate(lines, start=top + 1):
        for col, text in enumerate(line, start=1):
            cell = ws.cell(row, col)
            _put(cell, text or None)
            if wrap:
                cell.alignment = _WRAP_TOP
    return row


def _header_style(c: Column) -> _HeaderStyle:
    if c.read_only:
        return _READ_ONLY
    return _REQUIRED if c.required else _OPTIONAL


def _fill_referrals(
    ws: Worksheet,
    columns: list[Column],
    lists: dict[str, ListRange],
    rows: Iterable[Mapping[str, object]],
    data_rows: int = DATA_ROWS,
) -> None:
    header_align = Alignment(wrap_text=True, vertical="center")
    for i, c in enumerate(columns, start=1):
        letter = get_column_letter(i)
        style = _header_style(c)
        cell: Cell | MergedCell = ws.cell(1, i, c.label)
        cell.fill = PatternFill("solid", fgColor=style.fill)
        cell.font = style.font
        cell.alignment = header_align
        dim = ws.column_dimensions[letter]
        dim.width = c.width
        # A column style rather than 5,000 styled cells: it reaches every row,
        # and the file stays small. Cells written below carry it themselves.
        if (fmt := number_format(c)) is not None:
            dim.number_format = fmt
        ws.add_data_validation(_validation(c, lists, f"{letter}2:{letter}{data_rows + 1}"))
    ws.row_dimensions[1].height = 45
    last = get_column_letter(len(columns))
    ws.freeze_panes = "B2"  # keeps the headers and the External Reference ID in view
    ws.auto_filter.ref = f"A1:{last}1"
    for r, row in enumerate(rows, start=2):
        for i, c in enumerate(columns, start=1):
            value = row.get(c.key)
            if value is None or value == "":
                continue
            cell = ws.cell(r, i)
            _put(cell, value)
            if (fmt := number_format(c)) is not None:
                cell.number_format = fmt


def _validation(c: Column, lists: dict[str, ListRange], sqref: str) -> DataValidation:
    """The input message on every column, plus the drop-down on list columns."""
    dv = DataValidation(
        allow_blank=True,
        showInputMessage=True,
        promptTitle=clip(c.header, MAX_TITLE),
        prompt=_prompt(c),
    )
    name = dropdown_list(c)
    if name is not None:
        found = lists[name]
        dv.type = "list"
        dv.formula1 = found.ref
        dv.showErrorMessage = True
        # "warning", not "stop": bulkref accepts other spellings of a value
        # ("partner led") and reports wrong ones itself, so the sheet should
        # let people keep what they typed rather than block them.
        dv.errorStyle = "warning"
        dv.errorTitle = "Not a value from the list"
        dv.error = clip(
            f"{c.header} takes one of the values in the list ({SHEET_LISTS} sheet, column "
            f"{found.letter}). Keep your value only if it is one of them spelt differently.",
            MAX_MESSAGE,
        )
        if name in enums_mod.TAXONOMY_LISTS:
            # The list is one fiscal year's table, and Partner Center may use a newer
            # one: a name from it is to be kept, not corrected.
            fy = enums_mod.load().taxonomy.fiscal_year
            dv.errorTitle = clip(f"Not in the {fy} list", MAX_TITLE)
            dv.error = clip(
                f"{c.header}: the list ({SHEET_LISTS} sheet, column {found.letter}) is the {fy} table "
                "bulkref has. Keep a newer name Partner Center uses (bulkref warns and sends it as "
                "written), or pick one from the list.",
                MAX_MESSAGE,
            )
    dv.add(sqref)
    return dv


def _fill_lists(ws: Worksheet, lists: dict[str, ListRange]) -> None:
    for found in lists.values():
        ws.cell(1, found.column, found.name).font = _BOLD
        for r, value in enumerate(found.values, start=2):
            _put(ws.cell(r, found.column), value)
        width = max(len(v) for v in (found.name, *found.values))
        ws.column_dimensions[found.letter].width = width + 2
    ws.freeze_panes = "A2"


def _put(cell: Cell | MergedCell, value: object) -> None:
    """Writes a plain value (never a formula), booleans as Yes/No."""
    # openpyxl types every cell it hands out as possibly merged; nothing here
    # writes into a merged range (a merged cell's value cannot be set at all).
    assert isinstance(cell, Cell)
    if isinstance(value, bool):
        value = YES_NO[0] if value else YES_NO[1]
    elif isinstance(value, tuple):  # a list cell, typed (Industries, Products, Services)
        value = LIST_SEPARATOR.join(map(str, value))
    elif isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)  # Excel has no time zones
    put(cell, value)


# --- files -----------------------------------------------------------------


def save_workbook(wb: Workbook, out: Path) -> Path:
    """Saves ``wb`` reproducibly: same workbook, same bytes."""
    wb.properties.creator = _CREATOR
    wb.properties.lastModifiedBy = _CREATOR
    wb.properties.created = _FIXED_TIME
    wb.properties.modified = _FIXED_TIME
    buf = io.BytesIO()
    # ExcelWriter instead of wb.save(): save() stamps "modified" with the clock.
    ExcelWriter(wb, ZipFile(buf, "w", ZIP_DEFLATED)).save()
    out.parent.mkdir(parents=True, exist_ok=True)
    with ZipFile(buf) as src, ZipFile(out, "w", ZIP_DEFLATED) as dst:
        for info in src.infolist():
            # Zip entries carry the clock too; pin them.
            fixed = ZipInfo(info.filename, date_time=_FIXED_TIME.timetuple()[:6])
            fixed.compress_type = ZIP_DEFLATED
            dst.writestr(fixed, src.read(info))
    return out


def csv_text(value: object) -> str:
    """A cell value as the CSV template writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return YES_NO[0] if value else YES_NO[1]
    if isinstance(value, tuple):
        return LIST_SEPARATOR.join(map(str, value))
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 48000, not 48000.0
    if isinstance(value, int | float):
        return str(value)
    # Text that starts like a formula gets the apostrophe Excel reads as "text";
    # bulkref's reader takes it off again, so it reads back as written.
    return str(csv_safe(str(value)))


def write_csv(
    out: Path, rows: Iterable[Mapping[str, object]] = (), counts: dict[str, int] | None = None
) -> Path:
    """The header row and ``rows`` as CSV: UTF-8 with a BOM, so Excel reads it right.

    Text that starts with ``=``, ``+``, ``-`` or ``@`` gets a leading apostrophe
    (``cells.csv_safe``) so that Excel never runs it as a formula; bulkref's
    reader drops it, so a phone number such as ``+1 425 555 0100`` reads back as is.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8-sig", newline="") as f:
        write_csv_rows(f, rows, counts)
    return out


def write_csv_rows(
    f: IO[str],
    rows: Iterable[Mapping[str, object]] = (),
    counts: dict[str, int] | None = None,
    header: bool = True,
) -> int:
    """The CSV template's header row and ``rows``, streamed to the open text file ``f``
    (opened with ``newline=""``; the caller picks the encoding); returns how many rows.
    Without ``header``, the rows alone (the later rows of a file written in parts)."""
    columns = SPEC.columns(counts)
    writer = csv.writer(f)
    if header:
        writer.writerow(c.label for c in columns)
    keys = [c.key for c in columns]
    written = 0
    for row in _checked(rows, columns):
        get = row.get
        # csv_text, its two commonest cases (a blank, plain text) inline: an
        # export writes some 80 cells a row, 100,000 rows.
        writer.writerow(
            [
                ""
                if (v := get(k)) is None
                else v
                if v.__class__ is str and not v.startswith(FORMULA_START)
                else csv_text(v)
                for k in keys
            ]
        )
        written += 1
    return written


def write_template(out: Path, fmt: str = "xlsx", examples: bool = False) -> Path:
    """Writes the fill-in template to ``out`` as ``fmt`` ("xlsx" or "csv"),
    with the example deals as data rows when ``examples``; returns ``out``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown template format {fmt!r}; use one of {', '.join(FORMATS)}")
    rows = example_rows() if examples else []
    out = Path(out)
    if fmt == "csv":
        return write_csv(out, rows)
    return save_workbook(build_workbook(rows), out)


def refresh_committed(root: Path = _REPO_ROOT) -> list[Path]:
    """Regenerates the committed template and example files under ``root``."""
    return [write_template(root / rel, fmt, ex) for rel, (fmt, ex) in COMMITTED.items()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bulkref.sheets.template",
        description="Write the bulkref template, or regenerate the committed copies.",
    )
    parser.add_argument("out", nargs="?", type=Path, default=Path("referrals-template.xlsx"))
    parser.add_argument("--format", choices=FORMATS, default="xlsx")
    parser.add_argument("--examples", action="store_true")
    parser.add_argument("--refresh", action="store_true", help="regenerate " + ", ".join(COMMITTED))
    parser.add_argument("--root", type=Path, default=_REPO_ROOT, help="repository root")
    args = parser.parse_args(argv)
    written = (
        refresh_committed(args.root)
        if args.refresh
        else [write_template(args.out, args.format, args.examples)]
    )
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
