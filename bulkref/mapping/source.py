"""A legacy export read through a mapping file: a :class:`Table` ready for ``validate``.

The export is read as it is (``read_sheet``), and each ``[fields]`` entry
fills its template field row by row: the source cells are joined or cut
into pieces, value-mapped, and dates and numbers are parsed in the declared
format. What comes out is a Table like the one ``read_table`` gives for the
template: columns named by spec key, indexed by the **export's** row numbers,
each column's header a label naming both sides (``Est. Close Date -> Closing
Date``), so that every problem the validator finds names the export's column
and the template field.

Conversions that fail (a value the value map does not list, a date or a
number not in the declared format) are problems of their own with stable
codes, naming the mapping line; the validator's own complaint about the cell
left blank is then dropped, so a bad cell is reported once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bulkref.errors import UnusableFile
from bulkref.mapping.file import (
    FieldMap,
    Mapping,
    MappingError,
    NumberFormat,
    describe_problems,
    load_mapping,
)
from bulkref.problems import Problem, ProblemCode
from bulkref.sheets.reader import Sheet, missing_required, read_sheet
from bulkref.sheets.table import Table
from bulkref.sheets.values import as_text
from bulkref.spec.columns import SPEC, Kind
from bulkref.spec.enums import closest, fold

__all__ = ["Mapped", "Origin", "locate", "map_sheet", "parse_number", "read_mapped"]

# Rules that judge a cell against another one: when that other cell's conversion
# failed (a Stage the value map misses), the rule only repeats the failure.
_FOLLOWS = {ProblemCode.SUBSTATUS_MISMATCH: "status"}
LIST_SEPARATOR = "; "  # how a list field's items are joined for the validator's list parser
_CURRENCY_SIGNS = "€$£¥₹"


@dataclass(frozen=True)
class Origin:
    """Where one mapped column comes from."""

    field: str  # the template field's header
    source: str  # the export column(s) read, or the constant
    line: int  # the mapping line of its entry


@dataclass
class Mapped:
    """The mapped table, where each of its columns came from, and the cells whose conversion failed."""

    table: Table
    mapping: Mapping
    origins: dict[str, Origin]  # spec key -> origin
    failed: set[tuple[int, str]] = field(default_factory=set)  # (row, spec key)


def read_mapped(path: Path | str, mapping: Mapping | Path | str, sheet: str | None = None) -> Mapped:
    """Read the export at ``path`` through ``mapping``. ``sheet`` overrides the
    mapping's ``[source] sheet``."""
    if not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    try:
        raw = read_sheet(path, sheet or mapping.sheet)
    except UnusableFile as e:
        if sheet is None and mapping.sheet is not None and "no sheet named" in str(e):
            raise MappingError(
                f"{mapping.name} line {mapping.sheet_line}: [source] sheet = "
                f'"{mapping.sheet}" names no sheet of the export. {e}'
            ) from None
        raise
    return map_sheet(raw, mapping)


def locate(problems: Sequence[Problem], mapped: Mapped) -> list[Problem]:
    """``problems`` with the export file, template field, source column and mapping
    line filled in; a validator problem on a cell whose conversion failed (and was
    reported as such) is dropped."""
    table = mapped.table
    key_of = {label: key for key, label in table.headers.items()}
    file = str(table.source)
    out = []
    for p in problems:
        key = key_of.get(p.column) if p.column is not None else None
        if p.file is not None:  # a conversion problem: located when it was made
            out.append(p)
            continue
        if p.row is not None and (
            (p.row, key) in mapped.failed or (p.row, _FOLLOWS.get(p.code)) in mapped.failed
        ):
            continue
        origin = mapped.origins.get(key) if key is not None else None
        if origin is None:
            out.append(dataclasses.replace(p, file=file))
        else:
            out.append(
                dataclasses.replace(
                    p, file=file, field=origin.field, source_column=origin.source, mapping_line=origin.line
                )
            )
    # Conversion problems were found before the validator's: put each in its row, in column order.
    order = {label: i for i, label in enumerate(table.headers.values())}
    out.sort(key=lambda p: (p.row or 0, order.get(p.column or "", -1)))
    return out


# --------------------------------------------------------------------------- mapping a sheet


def map_sheet(sheet: Sheet, mapping: Mapping) -> Mapped:
    positions = _positions(sheet, mapping)
    rows = [int(n) for n in sheet.rows]
    cells = {name: sheet.cells(pos) for name, pos in positions.items()}
    out: dict[str, list[Any]] = {}
    labels: dict[str, str] = {}
    letters: dict[str, str] = {}
    origins: dict[str, Origin] = {}
    failed: set[tuple[int, str]] = set()
    problems: list[Problem] = []

    def column(key: str, sources: Sequence[str], fm: FieldMap) -> list[Any]:
        if key not in out:
            out[key] = [None] * len(rows)
            header = SPEC.column(key).header
            named = " + ".join(sources) if sources else f"{mapping.name} line {fm.line}"
            labels[key] = f"{named} -> {header}"
            origins[key] = Origin(header, ", ".join(sources) if sources else f"value = {fm.value!r}", fm.line)
            if sources:
                letters[key] = sheet.letter(positions[sources[0]])
        return out[key]

    for fm in mapping.fields:
        convert = _Conversion(fm, mapping, sheet)
        source_cells = [cells[s] for s in fm.sources]
        if not fm.numbered:
            column(fm.column.key, fm.sources, fm)
        for i, row in enumerate(rows):
            items = convert.items([c[i] for c in source_cells], row, problems)
            for n in convert.failed:
                key = fm.item_column(n).key
                column(key, _item_sources(fm, n), fm)
                failed.add((row, key))
            if fm.numbered:
                # Every position gets its column, blank ones too: item numbers stay as in the export.
                for n, item in enumerate(items, 1):
                    column(fm.item_column(n).key, _item_sources(fm, n), fm)[i] = item
            elif fm.column.kind is Kind.LIST:
                texts = [as_text(x) for x in items if x is not None]
                column(fm.column.key, fm.sources, fm)[i] = LIST_SEPARATOR.join(texts) if texts else None
            else:
                column(fm.column.key, fm.sources, fm)[i] = next((x for x in items if x is not None), None)

    keys = _in_template_order(out)
    import pandas as pd  # after the read, as read_table does (see bulkref/check.py)

    frame = pd.DataFrame(
        {k: out[k] for k in keys}, index=pd.Index(rows, name="row", dtype="int64"), dtype=object
    )
    table = Table(
        source=sheet.source,
        sheet=sheet.name,
        frame=frame,
        columns={k: SPEC.column(k) for k in keys},
        headers={k: labels[k] for k in keys},
        letters={k: letters[k] for k in keys if k in letters},
        header_row=sheet.header_row,
        problems=[
            *sheet.problems,
            *_missing_fields(sheet, mapping, frame),
            *sheet.hidden_problems(),
            *problems,
        ],
    )
    return Mapped(table, mapping, {k: origins[k] for k in keys}, failed)


def _item_sources(fm: FieldMap, n: int) -> tuple[str, ...]:
    """The export column of item ``n`` of a numbered entry: the n-th of repeated
    columns, or the one delimited column every item comes from."""
    if fm.numbered and fm.delimiter is None and len(fm.sources) > 1:
        return (fm.sources[n - 1],) if n <= len(fm.sources) else fm.sources
    return fm.sources


def _in_template_order(out: dict[str, list[Any]]) -> list[str]:
    counts: dict[str, int] = {}
    for key in out:
        column = SPEC.column(key)
        if column.group is not None and column.index is not None:
            counts[column.group] = max(counts.get(column.group, 0), column.index)
    return [c.key for c in SPEC.columns(counts) if c.key in out]


def _positions(sheet: Sheet, mapping: Mapping) -> dict[str, int]:
    """Each export column the mapping reads -> its position; every unknown one is a MappingError."""
    exact: dict[str, int] = {}
    folded: dict[str, int] = {}
    for i, h in enumerate(sheet.headers):
        if h:
            exact.setdefault(h, i)
            folded.setdefault(fold(h), i)
    found: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    where = f"'{sheet.source.name}'" + (f" (sheet {sheet.name})" if sheet.name != sheet.source.name else "")
    for fm in mapping.fields:
        for name in fm.sources:
            pos = exact.get(name.strip(), folded.get(fold(name)))
            if pos is not None:
                found[name] = pos
                continue
            close = closest(name, [h for h in sheet.headers if h])
            hint = (
                f" Did you mean '{close}'?"
                if close
                else f" Its columns are: {', '.join(repr(h) for h in sheet.headers if h)[:300]}."
            )
            problems.append(
                (
                    fm.line,
                    f"[fields] \"{fm.name}\" reads column '{name}', which is not in "
                    f"{where}.{hint} Fix the column name in the mapping (or the export's header "
                    f"in row {sheet.header_row}).",
                )
            )
    if problems:
        raise MappingError(describe_problems(mapping.path, problems))
    return found


def _missing_fields(sheet: Sheet, mapping: Mapping, frame: Any) -> list[Problem]:
    """The template's required fields that no entry fills: a sheet-level error,
    as a missing column is for the template."""
    missing = missing_required(set(frame.columns), frame)
    if not missing:
        return []
    plural = len(missing) > 1
    message = (
        f"The mapping {mapping.name} fills no {', '.join(missing)}, required for new referrals: "
        f"add {'entries' if plural else 'an entry'} under [fields], from a column of the export "
        'or as a constant (value = "...").'
    )
    return [
        Problem(
            sheet.name, sheet.header_row, None, ProblemCode.MISSING_COLUMNS, message, file=str(sheet.source)
        )
    ]


# --------------------------------------------------------------------------- one entry, one row


class _Conversion:
    """One ``[fields]`` entry applied to the cells of a row."""

    def __init__(self, fm: FieldMap, mapping: Mapping, sheet: Sheet) -> None:
        self.fm, self.mapping, self.sheet = fm, mapping, sheet
        self.kind = fm.column.kind
        self.values = _value_map(fm)
        self.failed: list[int] = []  # the items of the current row that could not be converted

    def items(self, cells: list[Any], row: int, problems: list[Problem]) -> list[Any]:
        """The row's value(s) for the entry: one for a single field, the items of
        a list or numbered field in order (None where a piece is blank)."""
        fm = self.fm
        self.failed = []
        if not fm.sources:
            return [_blank_to_none(fm.value)]
        if fm.join is not None:
            texts = [as_text(c) for c in cells if c is not None]
            items: list[Any] = [fm.join.join(texts)] if texts else []
        else:
            items = list(cells)
        if fm.delimiter is not None:
            items = [
                piece.strip() or None
                for c in items
                if c is not None
                for piece in as_text(c).split(fm.delimiter)
            ]
        if fm.split is not None:
            items = [None if c is None else _part(as_text(c), fm.split, fm.part) for c in items]
        out = []
        for n, item in enumerate(items, 1):
            out.append(None if item is None else self._one(item, n, row, problems))
        if all(x is None for x in out) and fm.default is not None and not self.failed:
            return [_blank_to_none(fm.default)]
        return out

    def _one(self, item: Any, n: int, row: int, problems: list[Problem]) -> Any:
        fm = self.fm
        if self.values is not None:
            text = as_text(item)
            hit = self.values.get(text.strip(), self.values.get(fold(text), _MISSING))
            if hit is not _MISSING:
                item = _blank_to_none(hit)
            elif fm.other == "blank":
                return None
            elif fm.other == "error":
                return self._fail(problems, row, n, ProblemCode.UNMAPPED_VALUE, text, self._unmapped(text))
            if item is None:
                return None
        if self.kind is Kind.DATE:
            return self._date(item, n, row, problems)
        if self.kind is Kind.DECIMAL:
            return self._number(item, n, row, problems)
        return item

    def _date(self, item: Any, n: int, row: int, problems: list[Problem]) -> Any:
        fmt = self.fm.date_format
        if isinstance(item, dt.datetime):
            return item.date()
        if isinstance(item, dt.date) or fmt is None or not isinstance(item, str):
            return item  # a real date, or no format declared: the validator reads it as the template's
        try:
            return dt.datetime.strptime(item.strip(), fmt).date()
        except ValueError:
            example = dt.date(2026, 12, 31).strftime(fmt)
            return self._fail(
                problems,
                row,
                n,
                ProblemCode.BAD_SOURCE_DATE,
                item,
                f"'{item}' is not a date in the format {fmt} that {self._where} declares "
                f"(31 December 2026 is written {example}): fix the cell, or the "
                "mapping's date_format.",
            )

    def _number(self, item: Any, n: int, row: int, problems: list[Problem]) -> Any:
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            return float(item)
        number = parse_number(as_text(item), self.fm.number)
        if number is None:
            fmt = self.fm.number
            return self._fail(
                problems,
                row,
                n,
                ProblemCode.BAD_SOURCE_NUMBER,
                as_text(item),
                f"'{as_text(item)}' is not a number as {self._where} declares numbers "
                f"(decimal mark '{fmt.decimal}', thousands "
                f"{repr(fmt.thousands) if fmt.thousands else 'not grouped'}, like "
                f"{fmt.example}): fix the cell, or the mapping's decimal and thousands.",
            )
        return number

    @property
    def _where(self) -> str:
        return f"{self.mapping.name} line {self.fm.line}"

    def _unmapped(self, text: str) -> str:
        listed = ", ".join(f'"{k}"' for k in list(self.fm.values or {})[:8])
        return (
            f"'{text}' is not in the value map of {self._where} ({listed}"
            f'{", ..." if len(self.fm.values or {}) > 8 else ""}): add "{text}" = "..." to it, or '
            'other = "keep" to pass unlisted values through.'
        )

    def _fail(self, problems: list[Problem], row: int, n: int, code: str, value: str, message: str) -> None:
        fm = self.fm
        sources = _item_sources(fm, n)
        header = fm.item_column(n).header
        problems.append(
            Problem(
                sheet=self.sheet.name,
                row=row,
                column=f"{' + '.join(sources)} -> {header}",
                code=code,
                message=message,
                value=value,
                file=str(self.sheet.source),
                field=header,
                source_column=", ".join(sources),
                mapping_line=fm.line,
            )
        )
        self.failed.append(n)
        return None


_MISSING = object()


def _value_map(fm: FieldMap) -> dict[str, Any] | None:
    """The value map, looked up by exact text and by folded text (case, spaces,
    hyphens and underscores ignored), the exact spelling winning."""
    if fm.values is None:
        return None
    table: dict[str, Any] = {}
    for k, v in fm.values.items():
        table.setdefault(fold(k), v)
    table.update({k.strip(): v for k, v in fm.values.items()})
    return table


def _blank_to_none(value: Any) -> Any:
    return None if value == "" else value


def _part(text: str, split: str, part: str | int | None) -> str | None:
    """One piece of ``text`` cut at ``split``: a space cuts at any run of blanks
    (names typed with two spaces), a line break at Windows' line breaks too."""
    cut = text.split() if split == " " else text.replace("\r\n", "\n").split(split)
    pieces = [p.strip() for p in cut if p.strip()]
    joiner = split
    if not pieces:
        return None
    if part == "first":
        chosen = pieces[:1]
    elif part == "last":
        chosen = pieces[-1:] if len(pieces) > 1 else []
    elif part == "rest":
        chosen = pieces[1:]
    elif part == "but_last":
        chosen = pieces[:-1] if len(pieces) > 1 else pieces
    else:
        assert isinstance(part, int)
        index = part - 1 if part > 0 else part
        chosen = [pieces[index]] if -len(pieces) <= index < len(pieces) else []
    return joiner.join(chosen).strip() or None


@cache
def _number_pattern(fmt: NumberFormat) -> re.Pattern[str]:
    d = re.escape(fmt.decimal)
    if fmt.thousands:
        t = re.escape(fmt.thousands)
        whole = rf"(?:\d{{1,3}}(?:{t}\d{{3}})+|\d+)"
    else:
        whole = r"\d+"
    return re.compile(rf"^[+-]?(?:{whole}(?:{d}\d+)?|{d}\d+)$")


def parse_number(text: str, fmt: NumberFormat) -> float | None:
    """``text`` as a number written in ``fmt`` ("1.234,56" with decimal ","), or
    None. Thousands must group by three, so "1.5" is not read as 15 when "." groups
    thousands. Currency signs and spaces around the number are ignored."""
    cleaned = text.strip().strip(_CURRENCY_SIGNS).strip()
    if fmt.thousands == " ":
        cleaned = re.sub(r"[\s\u00a0\u202f]", " ", cleaned)
    else:
        cleaned = re.sub(r"[\s\u00a0\u202f]", "", cleaned)
    if not _number_pattern(fmt).match(cleaned):
        return None
    if fmt.thousands:
        cleaned = cleaned.replace(fmt.thousands, "")
    return float(cleaned.replace(fmt.decimal, "."))
