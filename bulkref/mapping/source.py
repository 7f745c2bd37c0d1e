"""A legacy export read through a mapping file: a :class:`Table` ready for ``validate``.

The export is read as it is (``read_sheet``), and each ``[fields]`` entry
fills its template field row by row: the source cells are joined or cut
into pieces, value-mapped, and dates and numbers are parsed in the declared
format. What comes out is a Table like the one ``read_table`` gives for the
template: columns named by spec key, indexed by the **export's** row numbers,
each column's header a label naming both sides (``Est. Close Date -> Closing
Date``), so that every problem the validator finds names the export's column
and the template field.

Before that, ``[[skip]]`` rules leave out the rows that are not deals (each
one kept in ``Mapped.skipped`` with why), and ``[source] group_by`` makes the
rows that share an id one referral: single fields from its rows by the
entry's ``rows`` rule, numbered fields one item per row.

Conversions that fail (a value the value map does not list, a date or a
number not in the declared format, a cell no pattern or rule matches) are
problems of their own with stable codes, naming the mapping line; the
validator's own complaint about the cell left blank is then dropped, so a bad
cell is reported once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkref.errors import NoSuchSheet
from bulkref.mapping.file import (
    FieldMap,
    Mapping,
    MappingError,
    describe_problems,
    fold_pattern,
    load_mapping,
)
from bulkref.problems import Problem, ProblemCode, Skipped
from bulkref.sheets.reader import Sheet, missing_required, read_sheet
from bulkref.sheets.table import Table
from bulkref.sheets.values import CURRENCY_SIGNS, as_text, parse_number, split_amount
from bulkref.spec.columns import SPEC, Kind
from bulkref.spec.enums import closest, fold

__all__ = ["Mapped", "Origin", "locate", "map_sheet", "read_mapped"]

# Rules that judge a cell against another one: when that other cell's conversion
# failed (a Stage the value map misses), the rule only repeats the failure.
_FOLLOWS: dict[ProblemCode | str, str] = {ProblemCode.SUBSTATUS_MISMATCH: "status"}
LIST_SEPARATOR = "; "  # how a list field's items are joined for the validator's list parser
# Family names of two characters: 欧阳娜娜 is 欧阳 + 娜娜, where 王伟 is 王 + 伟.
_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 令狐 公孙 慕容 尉迟 长孙 宇文 司徒 夏侯 轩辕 端木 独孤 南宫 西门".split()  # noqa: SIM905
)


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
    skipped: list[Skipped] = field(default_factory=list)  # rows [[skip]] left out
    groups: dict[int, list[int]] = field(default_factory=dict)  # with group_by: first row -> its rows
    # With group_by: a cell of a referral that a later row of the deal gave -> that row.
    source_rows: dict[tuple[int, str], int] = field(default_factory=dict)


def read_mapped(path: Path | str, mapping: Mapping | Path | str, sheet: str | None = None) -> Mapped:
    """Read the export at ``path`` through ``mapping``. ``sheet`` overrides the
    mapping's ``[source] sheet``."""
    if not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    try:
        raw = read_sheet(path, sheet or mapping.sheet)
    except NoSuchSheet as e:
        if sheet is None and mapping.sheet is not None:
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
            out.append(p if mapped.mapping.layout is None else dataclasses.replace(p, mapping_line=None))
            continue
        if p.row is not None and (
            (p.row, key) in mapped.failed or (p.row, _FOLLOWS.get(p.code)) in mapped.failed
        ):
            continue
        origin = mapped.origins.get(key) if key is not None else None
        if p.row is not None and key is not None and (p.row, key) in mapped.source_rows:
            p = dataclasses.replace(p, row=mapped.source_rows[(p.row, key)])  # the export's row of the cell
        if origin is None:
            out.append(dataclasses.replace(p, file=file))
        else:
            line = origin.line if mapped.mapping.layout is None else None  # a layout has no lines to name
            out.append(
                dataclasses.replace(
                    p, file=file, field=origin.field, source_column=origin.source, mapping_line=line
                )
            )
    # Conversion problems were found before the validator's: put each in its row, in column order.
    order = {label: i for i, label in enumerate(table.headers.values())}
    out.sort(key=lambda p: (p.row or 0, order.get(p.column or "", -1)))
    return out


# --------------------------------------------------------------------------- mapping a sheet


def map_sheet(sheet: Sheet, mapping: Mapping) -> Mapped:
    positions = _positions(sheet, mapping)
    numbers = [int(n) for n in sheet.rows]
    cells = {name: sheet.cells(pos) for name, pos in positions.items()}
    kept, skipped = _kept_rows(mapping, numbers, cells)
    groups = _group_rows(mapping, kept, cells)
    rows = [numbers[g[0]] for g in groups]  # a referral is known by its first row
    out: dict[str, list[Any]] = {}
    labels: dict[str, str] = {}
    letters: dict[str, str] = {}
    origins: dict[str, Origin] = {}
    failed: set[tuple[int, str]] = set()
    source_rows: dict[tuple[int, str], int] = {}  # grouped: (referral row, key) -> the row giving it
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

    grouped = mapping.group_by is not None
    numbered: dict[str, list[_PerRow]] = {}  # grouped numbered entries, by spec group
    for fm in mapping.fields:
        convert = _Conversion(fm, mapping, sheet)
        source_cells = [cells[s] for s in fm.sources]
        per_row = _PerRow(fm)
        for i in kept:
            per_row.items[i] = convert.items([c[i] for c in source_cells], numbers[i], problems)
            per_row.failed[i] = list(convert.failed)
            per_row.reported[i] = list(convert.reported)
        if fm.numbered and grouped:
            assert fm.column.group is not None
            numbered.setdefault(fm.column.group, []).append(per_row)
            continue
        if not fm.numbered:
            column(fm.column.key, fm.sources, fm)
        for g, members in enumerate(groups):
            for i in members:
                for n in per_row.failed[i]:
                    key = fm.item_column(n).key
                    column(key, _item_sources(fm, n), fm)
                    failed.add((rows[g], key))
            if fm.numbered:
                # Every position gets its column, blank ones too: item numbers stay as in the export.
                for n, item in enumerate(per_row.items[members[0]], 1):
                    column(fm.item_column(n).key, _item_sources(fm, n), fm)[g] = item
            elif fm.column.kind is Kind.LIST:
                texts = list(
                    dict.fromkeys(as_text(x) for i in members for x in per_row.items[i] if x is not None)
                )
                column(fm.column.key, fm.sources, fm)[g] = LIST_SEPARATOR.join(texts) if texts else None
            else:
                given = [(numbers[i], v) for i in members if (v := _first(per_row.items[i])) is not None]
                value, came = _of_rows(fm, given, sheet, mapping, problems)
                column(fm.column.key, fm.sources, fm)[g] = value
                if came is not None and came != rows[g]:
                    source_rows[(rows[g], fm.column.key)] = came
    for entries in numbered.values():
        for g, members in enumerate(groups):
            for n, (i, item) in enumerate(_aligned(entries, members), 1):
                for per_row, (value, bad) in zip(entries, item, strict=True):
                    fm = per_row.fm
                    key = fm.item_column(n).key
                    column(key, fm.sources, fm)[g] = value
                    if bad:
                        failed.add((rows[g], key))
                        _renumber(problems, per_row, i, bad, fm.item_column(n).header)
                    if numbers[i] != rows[g]:
                        source_rows[(rows[g], key)] = numbers[i]

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
    grouping = {numbers[g[0]]: [numbers[i] for i in g] for g in groups}
    return Mapped(table, mapping, {k: origins[k] for k in keys}, failed, skipped, grouping, source_rows)


@dataclass
class _PerRow:
    """One entry's items on each row read (by position), and the items that failed."""

    fm: FieldMap
    items: dict[int, list[Any]] = field(default_factory=dict)
    failed: dict[int, list[int]] = field(default_factory=dict)
    reported: dict[int, list[int]] = field(default_factory=dict)  # each failed item's problem, by index


def _renumber(problems: list[Problem], per_row: _PerRow, i: int, n: int, header: str) -> None:
    """A failed item of a grouped deal is reported as the numbered field it became
    (the third contact of the deal, not the first of its row)."""
    index = per_row.reported[i][per_row.failed[i].index(n)]
    p = problems[index]
    assert p.source_column is not None  # a conversion problem always names the export's columns
    problems[index] = dataclasses.replace(
        p, column=f"{p.source_column.replace(', ', ' + ')} -> {header}", field=header
    )


def _first(items: list[Any]) -> Any:
    return next((x for x in items if x is not None), None)


def _aligned(entries: list[_PerRow], members: list[int]) -> list[tuple[int, tuple[tuple[Any, int], ...]]]:
    """The numbered items of one deal's rows: each row gives as many items as its
    longest entry (a contact's name, email and phone side by side), rows in order;
    items that are blank or repeat an earlier one go. A person is known by the email
    when there is one: the same contact in two roles is one contact, as the first row says.
    Each item comes with the position of the row that gave it."""
    out: list[tuple[int, tuple[tuple[Any, int], ...]]] = []
    seen: set[tuple[str | None, ...]] = set()
    email = next((k for k, e in enumerate(entries) if e.fm.column.field == "email"), None)
    for i in members:
        width = max(len(e.items[i]) for e in entries)
        for k in range(width):
            item = tuple(
                (
                    e.items[i][k] if k < len(e.items[i]) else None,
                    k + 1 if k + 1 in e.failed[i] else 0,  # the failed item's number in its row
                )
                for e in entries
            )
            texts = tuple(None if v is None else fold_pattern(as_text(v)) for v, _ in item)
            if email is not None and texts[email] is not None:
                texts = (texts[email],)
            if (all(t is None for t in texts) and not any(bad for _, bad in item)) or texts in seen:
                continue
            seen.add(texts)
            out.append((i, item))
    return out


def _of_rows(
    fm: FieldMap, given: list[tuple[int, Any]], sheet: Sheet, mapping: Mapping, problems: list[Problem]
) -> tuple[Any, int | None]:
    """A single field's value from the rows of one deal that give one (row, value),
    and the row it came from (the first, for a sum)."""
    if not given:
        return None, None
    rule = fm.rows or "same"
    values = [v for _, v in given]
    if rule == "first":
        return given[0][1], given[0][0]
    if rule == "last":
        return given[-1][1], given[-1][0]
    if rule in ("min", "max", "sum"):
        try:
            if rule == "sum":
                return sum(values), given[0][0]
            chosen = (min if rule == "min" else max)(given, key=lambda rv: rv[1])
            return chosen[1], chosen[0]
        except TypeError:
            pass  # mixed kinds: the rows disagree, said below as for "same"
    distinct: dict[str, list[int]] = {}
    for row, v in given:
        distinct.setdefault(fold_pattern(as_text(v)), []).append(row)
    if len(distinct) > 1:
        first = given[0][0]
        shown = "; ".join(
            f"'{as_text(next(v for r, v in given if r == rs[0]))}' (row{'s' if len(rs) > 1 else ''} "
            f"{', '.join(map(str, rs))})"
            for rs in distinct.values()
        )
        header = fm.column.header
        fix = (
            f'number the entry, "{fm.field.replace(" 1 ", " {n} ")}", to take one per row'
            if fm.column.group is not None
            else 'say which wins in the entry (rows = "first", "last", "min", "max" or "sum")'
        )
        problems.append(
            Problem(
                sheet=sheet.name,
                row=first,
                column=f"{' + '.join(fm.sources)} -> {header}",
                code=ProblemCode.GROUP_CONFLICT,
                message=(
                    f"the rows of this deal ({mapping.group_by} '{_group_key(sheet, mapping, first)}') "
                    f"give different {header}: {shown}. Make them agree in the export, or {fix} "
                    f"({mapping.name} line {fm.line})."
                ),
                value=as_text(values[0]),
                file=str(sheet.source),
                field=header,
                source_column=", ".join(fm.sources),
                mapping_line=fm.line,
            )
        )
    return given[0][1], given[0][0]


def _group_key(sheet: Sheet, mapping: Mapping, row: int) -> str:
    assert mapping.group_by is not None
    position = _positions(sheet, mapping)[mapping.group_by]
    at = list(map(int, sheet.rows)).index(row)
    return as_text(sheet.cells(position)[at])


def _kept_rows(
    mapping: Mapping, numbers: list[int], cells: dict[str, Any]
) -> tuple[list[int], list[Skipped]]:
    """The positions of the rows read, and the rows [[skip]] rules leave out (each with why)."""
    kept: list[int] = []
    skipped: list[Skipped] = []
    below: Skipped | None = None  # the footer's first row, once an and_below rule held
    for i, number in enumerate(numbers):
        if below is not None:
            skipped.append(Skipped(number, f"below row {below.row}: {below.reason}", below.mapping_line))
            continue
        for rule in mapping.skips:
            cell = cells[rule.column][i]
            text = None if cell is None else as_text(cell)
            if rule.blank:
                hit = text is None or not text.strip()
            else:
                assert rule.pattern is not None
                hit = text is not None and rule.pattern.search(text) is not None
            if hit:
                skipped.append(Skipped(number, rule.describe(text), rule.line))
                if rule.and_below:
                    below = skipped[-1]
                break
        else:
            kept.append(i)
    return kept, skipped


def _group_rows(mapping: Mapping, kept: list[int], cells: dict[str, Any]) -> list[list[int]]:
    """The kept rows, by deal: rows with the same group_by value (spaces around it
    ignored) make one referral, in the order their first rows come."""
    if mapping.group_by is None:
        return [[i] for i in kept]
    ids = cells[mapping.group_by]
    groups: dict[object, list[int]] = {}
    for i in kept:
        # A row without an id is a referral of its own: the validator says its id is missing.
        key: object = object() if ids[i] is None else as_text(ids[i]).strip()
        groups.setdefault(key, []).append(i)
    return list(groups.values())


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
    # (who reads it, the mapping line, the column): entries, then group_by and [[skip]] rules.
    reads = [(f'[fields] "{fm.name}"', fm.line, name) for fm in mapping.fields for name in fm.sources]
    if mapping.group_by is not None:
        reads.append(("[source] group_by", mapping.group_line, mapping.group_by))
    reads += [("[[skip]]", rule.line, rule.column) for rule in mapping.skips]
    for who, line, name in reads:
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
                line,
                f"{who} reads column '{name}', which is not in "
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
    if mapping.layout is not None:
        message = (
            f"Read as {mapping.name}, the file has no column for {', '.join(missing)}, required for "
            "new referrals: add the column(s) Partner Center's template has for them."
        )
        return [
            Problem(
                sheet.name,
                sheet.header_row,
                None,
                ProblemCode.MISSING_COLUMNS,
                message,
                file=str(sheet.source),
            )
        ]
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
        self.reported: list[int] = []  # and where in ``problems`` each was reported

    def items(self, cells: list[Any], row: int, problems: list[Problem]) -> list[Any]:
        """The row's value(s) for the entry: one for a single field, the items of
        a list or numbered field in order (None where a piece is blank)."""
        fm = self.fm
        self.failed, self.reported = [], []
        if not fm.sources:
            return [_blank_to_none(fm.value)]
        if fm.rules is not None:
            return [self._rule(cells, row, problems)]
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

    def _rule(self, cells: list[Any], row: int, problems: list[Problem]) -> Any:
        """The value of the first rule every cell of the row matches."""
        fm = self.fm
        assert fm.rules is not None
        texts = [fold_pattern(as_text(c)) if c is not None else "" for c in cells]
        for rule in fm.rules:
            if rule.matches(texts):
                value = _blank_to_none(rule.value)
                return None if value is None else self._typed(value, 1, row, problems)
        if all(c is None for c in cells) and fm.default is not None:
            return _blank_to_none(fm.default)
        if fm.other == "blank":
            return None
        shown = ", ".join(
            f"{source} '{'' if c is None else as_text(c)}'"
            for source, c in zip(fm.sources, cells, strict=True)
        )
        fix = (
            f"is not a combination {self._where} takes for {fm.column.header}: fix the cells ({_takes(fm)})"
            if self.mapping.layout is not None
            else f"matches none of the rules of {self._where}: add a rule for it, or end the "
            f'rules with a fallback of "*" in every column'
        )
        return self._fail(
            problems,
            row,
            1,
            ProblemCode.NO_RULE_MATCHED,
            " / ".join("" if c is None else as_text(c) for c in cells),
            f"{shown} {fix}.",
        )

    def _one(self, item: Any, n: int, row: int, problems: list[Problem]) -> Any:
        fm = self.fm
        if fm.patterns:
            text = as_text(item).strip()
            m = next((m for p in fm.patterns if (m := p.fullmatch(text)) is not None), None)
            if m is None:
                shown = " or ".join(fm.pattern_names)
                return self._fail(
                    problems,
                    row,
                    n,
                    ProblemCode.PATTERN_MISMATCH,
                    text,
                    f"'{text}' does not match the pattern {shown} of {self._where} (a pattern must "
                    "match the whole cell): fix the cell, or widen the pattern.",
                )
            assert fm.part is not None
            piece = m.group(fm.part)
            item = piece.strip() if piece is not None and piece.strip() else None
            if item is None:
                return None
        if fm.name_part is not None:
            item = _name_piece(as_text(item), fm.name_part, fm.name_order)
            if item is None:
                return None
        if fm.from_amount:
            return self._currency_of(as_text(item), n, row, problems)
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
        return self._typed(item, n, row, problems)

    def _typed(self, item: Any, n: int, row: int, problems: list[Problem]) -> Any:
        if self.kind is Kind.DATE:
            return self._date(item, n, row, problems)
        if self.kind is Kind.DECIMAL:
            return self._number(item, n, row, problems)
        return item

    def _currency_of(self, text: str, n: int, row: int, problems: list[Problem]) -> Any:
        """The currency an amount is written with: its ISO code, a sign that names one
        currency (€, £), or what the entry's value map says a sign is ("$" = "USD")."""
        split = split_amount(text)
        token = split[0] if split is not None else None
        if token is None and self.fm.default is not None:
            return _blank_to_none(self.fm.default)
        if token is not None and self.values is not None:
            hit = self.values.get(token, self.values.get(fold(token), _MISSING))
            if hit is not _MISSING:
                return _blank_to_none(hit)
        if token is not None and token in CURRENCY_SIGNS:
            return CURRENCY_SIGNS[token]
        if token is not None and len(token) == 3 and token.isalpha():
            return token
        why = (
            f"'{text}' is written with '{token}', which stands for several currencies: add "
            f'values = {{ "{token}" = "USD" }} (the ISO code it means) to {self._where}'
            if token is not None
            else f"'{text}' names no currency (no ISO code like USD before or after the number, "
            f'and no sign like €): fix the cell, or add default = "EUR" to {self._where}'
        )
        return self._fail(problems, row, n, ProblemCode.NO_AMOUNT_CURRENCY, text, why + ".")

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
        fmt = self.fm.number
        number = parse_number(as_text(item), fmt.decimal, fmt.thousands, currency=True)
        if number is None:
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
        return self.mapping.where(self.fm.line)

    def _unmapped(self, text: str) -> str:
        listed = ", ".join(f'"{k}"' for k in list(self.fm.values or {})[:8])
        if self.mapping.layout is not None:
            return f"'{text}' is not a value {self._where} takes here ({listed}): fix the cell."
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
        self.reported.append(len(problems) - 1)
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


def _takes(fm: FieldMap) -> str:
    """The combinations a layout's rules take, in words, for a cell that fits none."""
    assert fm.rules is not None
    seen = dict.fromkeys(
        " / ".join(p for p in r.when if p not in ("*", "?*"))
        for r in fm.rules
        if any(p not in ("*", "?*", "") for p in r.when)
    )
    return "; ".join(list(seen)[:12])


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


def _name_piece(text: str, part: str, order: str) -> str | None:
    """The given (``part`` "first") or family ("last") name of a full name written in
    ``order``. "Lopez, Maria" is family-first whatever the order; a single word is
    the family name, except a Chinese, Japanese or Korean name written in its own
    script without a space (王伟), which is family-first in any order: its family
    name is its first character (two for the compound family names)."""
    text = " ".join(text.split())
    if not text:
        return None
    if order == "whole":
        return text if part == "last" else None
    if "," in text:
        family, _, given = (x.strip() for x in text.partition(","))
    elif " " in text:
        words = text.split(" ")
        if order == "given_family":
            given, family = words[0], " ".join(words[1:])
        else:
            family, given = words[0], " ".join(words[1:])
    elif len(text) > 1 and all(_cjk(ch) for ch in text):  # written in its own script: family first
        cut = 2 if text[:2] in _COMPOUND_SURNAMES and len(text) > 2 else 1
        family, given = text[:cut], text[cut:]
    else:
        family, given = text, ""
    return (given if part == "first" else family) or None


def _cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF
