"""Mapping files: how a legacy CRM export maps onto referrals, said once in TOML.

A mapping names, for each template field, where its value comes from: a
column of the export (renamed, value-mapped, split, cut by a pattern, joined,
parsed in a declared date or number format), several columns (joined, or
decided by rules over them), or a constant; and, for the export as a whole,
the rows to skip (``[[skip]]``) and the column whose rows make one referral
(``group_by``). It is
loaded and checked here into a :class:`Mapping`; ``bulkref.mapping.source`` applies
it to an export.

A mapping that cannot be used (TOML syntax, an unknown field or option, a
bad value) raises :class:`MappingError` naming the file and the line of each
problem. tomllib reports no line numbers for values, so the lines are found
again in the raw text (:func:`key_lines`).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
import tomllib
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, NamedTuple

from bulkref.errors import (
    MappingError,
)
from bulkref.mapping.patterns import Pattern, PatternError
from bulkref.spec.columns import SPEC, Column, Kind
from bulkref.spec.enums import TAXONOMY_LISTS, closest
from bulkref.spec.enums import load as load_enums

__all__ = [
    "FieldMap",
    "Mapping",
    "MappingError",
    "NumberFormat",
    "Rule",
    "SkipRule",
    "describe_problems",
    "key_lines",
    "load_mapping",
    "parse_mapping",
]

Scalar = str | int | float | bool | dt.date
Other = Literal["error", "keep", "blank"]

NUMBERED = "{n}"
OTHERS: tuple[Other, ...] = ("error", "keep", "blank")
PARTS = ("first", "last", "rest", "but_last")
DECIMALS = (".", ",")
THOUSANDS = (",", ".", " ", "'", "")
SOURCE_OPTIONS = ("sheet", "date_format", "decimal", "thousands", "group_by", "name_order")
SECTIONS = ("source", "fields", "skip", "patterns")
SKIP_OPTIONS = ("column", "blank", "pattern", "and_below", "reason")
# How the rows of one deal (group_by) give a single field: "same" rows must agree.
ROW_RULES = ("same", "first", "last", "min", "max", "sum")
NAME_PARTS = ("first", "last")
NAME_ORDERS = ("given_family", "family_given", "whole")
WILDCARD = "*"
FIELD_OPTIONS = (
    "column",
    "columns",
    "value",
    "default",
    "values",
    "other",
    "split",
    "part",
    "join",
    "delimiter",
    "date_format",
    "decimal",
    "thousands",
    "pattern",
    "rules",
    "rows",
    "name",
    "name_order",
    "from_amount",
)
# A date every format must read back, so a format without year, month or day is caught.
_PROBE = dt.datetime(2026, 12, 31)


@dataclass(frozen=True)
class NumberFormat:
    """How numbers are written in the export: ``1,234.56`` or ``1.234,56``."""

    decimal: str = "."
    thousands: str = ","  # "" when numbers are written without grouping

    @property
    def example(self) -> str:
        return f"1{self.thousands}234{self.decimal}56"


@dataclass(frozen=True)
class FieldMap:
    """One ``[fields]`` entry: where one template field's value comes from.

    For a numbered field (``Customer Contact {n} Email``) ``column`` is item
    1's column, and each source column (``columns``) or delimited piece
    (``delimiter``) fills the next item.
    """

    name: str  # the field as the mapping writes it
    column: Column
    line: int
    sources: tuple[str, ...] = ()  # export columns read, in order
    numbered: bool = False
    value: Scalar | None = None  # a constant, instead of sources
    default: Scalar | None = None  # when the sources give nothing
    values: MappingType[str, Scalar] | None = None  # the value map
    other: Other = "error"  # values the map does not list
    split: str | None = None
    part: str | int | None = None
    join: str | None = None
    delimiter: str | None = None
    date_format: str | None = None
    number: NumberFormat = field(default_factory=NumberFormat)
    # With part: a named (or numbered) group of the first of these that matches the cell.
    patterns: tuple[Pattern, ...] = ()
    pattern_names: tuple[str, ...] = ()  # as the entry names them: a [patterns] name, or the expression
    rules: tuple[Rule, ...] | None = None  # over sources, first match wins
    rows: str | None = None  # with group_by: how the deal's rows give this field (ROW_RULES)
    name_part: str | None = None  # name = "first" or "last": that part of a full name
    name_order: str = "given_family"
    from_amount: bool = False  # the currency code or sign written with an amount

    @property
    def field(self) -> str:
        """The template field's header, ``{n}`` standing for the item number."""
        if self.numbered:
            assert self.column.group is not None
            group = SPEC.group(self.column.group)
            item = next(f for f in group.fields if f.key == self.column.field)
            return f"{group.label} {NUMBERED} {item.header}"
        return self.column.header

    def item_column(self, n: int) -> Column:
        if not self.numbered:
            return self.column
        assert self.column.group is not None and self.column.field is not None
        return SPEC.column(f"{self.column.group}.{n}.{self.column.field}")


@dataclass(frozen=True)
class Rule:
    """One ``rules`` row: a pattern per source column (``*`` and ``?`` wildcards,
    case and spacing ignored), and the value it gives."""

    when: tuple[str, ...]
    value: Scalar
    number: int = 0  # its place in the entry's list, from 1, for messages

    def matches(self, texts: list[str]) -> bool:
        return all(fnmatch.fnmatchcase(t, p) for t, p in zip(texts, self.folded, strict=True))

    @cached_property
    def folded(self) -> tuple[str, ...]:
        return tuple(fold_pattern(p) for p in self.when)


def fold_pattern(text: str) -> str:
    """Cells and rule patterns compare casefolded, runs of blanks as one space."""
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class SkipRule:
    """One ``[[skip]]`` table: rows where ``column`` is blank, or matches ``pattern``,
    are not read (with ``and_below``: that row and every row under it)."""

    column: str
    line: int
    blank: bool = False
    pattern: Pattern | None = None
    and_below: bool = False
    reason: str | None = None

    def describe(self, value: str | None) -> str:
        if self.reason:
            return self.reason
        if self.blank:
            return f"{self.column} is blank"
        assert self.pattern is not None
        return f"{self.column} '{value}' matches '{self.pattern.pattern}'"


@dataclass(frozen=True)
class Mapping:
    path: Path
    fields: tuple[FieldMap, ...]
    sheet: str | None = None
    sheet_line: int = 1  # where [source] names the sheet, for a sheet the export does not have
    group_by: str | None = None  # the column whose rows make one referral
    group_line: int = 1
    skips: tuple[SkipRule, ...] = ()
    # A layout bulkref knows (bulkref.mapping.partner_center), read through a mapping it
    # builds: no file the user wrote, so messages name the layout, never a line of it.
    layout: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def where(self, line: int) -> str:
        """Where an entry is, for a message: the file and line, or the layout."""
        return self.name if self.layout is not None else f"{self.name} line {line}"


# --------------------------------------------------------------------------- loading


def load_mapping(path: Path | str) -> Mapping:
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_MAPPING_BYTES + 1)  # no more than the bound: a huge file is not read whole
        if len(data) > MAX_MAPPING_BYTES:
            raise MappingError(_too_large(path))
        text = data.decode("utf-8-sig")
    except FileNotFoundError:
        raise MappingError(
            f"The mapping file '{path}' does not exist: check the path, or start one "
            "with `bulkref map suggest EXPORT -o mapping.toml`."
        ) from None
    except IsADirectoryError:
        raise MappingError(f"The mapping '{path}' is a folder: give the path of a .toml file.") from None
    except OSError as e:
        raise MappingError(f"The mapping file '{path}' could not be read ({e.strerror or e}).") from None
    except UnicodeDecodeError:
        raise MappingError(f"The mapping file '{path}' is not UTF-8 text: save it as UTF-8.") from None
    return parse_mapping(text, path)


_TOML_AT = re.compile(r"^(.*?)\s*\(at line (\d+), column (\d+)\)$")

# A mapping names columns and values: a few kilobytes, three or four levels deep
# (a rule list in an entry's inline table). Far past any real one, these bounds keep
# a hostile file from costing memory, or tomllib's recursion its stack (a deep
# enough array was a RecursionError: a traceback on the command line, a 500 in the app).
MAX_MAPPING_BYTES = 2**20
MAX_NESTING = 16


def _too_large(path: Path) -> str:
    return (
        f"The mapping file '{path.name}' is over {MAX_MAPPING_BYTES // 2**20} MB: a mapping names "
        "columns and values, a few kilobytes. Is it the export itself? Give the mapping's .toml file."
    )


def _too_deep(path: Path, line: int | str) -> str:
    return (
        f"{path.name} line {line} nests arrays, tables or dotted keys more than {MAX_NESTING} deep: "
        "a mapping needs a few levels at most; check the brackets, braces and dots on that line."
    )


def parse_mapping(text: str, path: Path | str = "mapping.toml") -> Mapping:
    path = Path(path)
    if len(text) > MAX_MAPPING_BYTES:
        raise MappingError(_too_large(path))
    deepest, line = _nesting(text)
    if deepest > MAX_NESTING:  # before tomllib, whose parser recurses once per level
        raise MappingError(_too_deep(path, line))
    try:
        doc = tomllib.loads(text)
    except RecursionError:  # a safety net under the count above: a sentence, never a traceback
        raise MappingError(_too_deep(path, "?")) from None
    except tomllib.TOMLDecodeError as e:
        m = _TOML_AT.match(str(e))
        what, at, col = (m.group(1), m.group(2), m.group(3)) if m else (str(e), "?", "?")
        raise MappingError(
            f"{path.name} line {at} is not valid TOML ({what[:1].lower()}{what[1:]}, at column "
            f"{col}): check the quotes, commas, braces and '=' on that line (strings need double "
            'quotes: "Closing Date" = "Close Date").'
        ) from None
    lines = key_lines(text)
    too_deep = _deeper_than(doc, MAX_NESTING)  # dotted keys nest too, without brackets
    if too_deep is not None:
        raise MappingError(_too_deep(path, line_of(lines, too_deep)))
    return _Checker(path, doc, lines, text).mapping()


def _deeper_than(doc: dict[str, Any], limit: int) -> tuple[str, ...] | None:
    """The key path of a value nested more than ``limit`` deep in ``doc``, or None.
    Walked with a list, not by recursion, whatever the depth."""
    todo: list[tuple[Any, tuple[str, ...], int]] = [(doc, (), 0)]
    while todo:
        value, keys, depth = todo.pop()
        if depth > limit:
            return keys
        if isinstance(value, dict):
            todo.extend((v, (*keys, str(k)), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            todo.extend((v, keys, depth + 1) for v in value)
    return None


class _Checker:
    """Builds the Mapping, collecting every problem before raising once."""

    def __init__(
        self, path: Path, doc: dict[str, Any], lines: dict[tuple[str, ...], int], text: str = ""
    ) -> None:
        self.path, self.doc, self.lines, self.raw_lines = path, doc, lines, text
        self.problems: list[tuple[int, str]] = []
        self.patterns: dict[str, Pattern] = {}
        self.name_order = "given_family"
        self.group_by: str | None = None

    def line(self, *keys: str) -> int:
        return line_of(self.lines, keys)

    def problem(self, line: int, message: str) -> None:
        self.problems.append((line, message))

    def mapping(self) -> Mapping:
        for key in self.doc:
            if key not in SECTIONS:
                self.problem(
                    self.line(key),
                    f"[{key}] is not a section of a mapping file: use [source] "
                    "(the export's sheet and formats), [fields] (one entry per template field), "
                    "[[skip]] (rows that are not deals) and [patterns] (named regular expressions).",
                )
        self.patterns = self._patterns(self.doc.get("patterns", {}))
        source = self.doc.get("source", {})
        if not isinstance(source, dict):
            self.problem(self.line("source"), "source must be a table: write [source] on a line of its own.")
            source = {}
        sheet, date_format, number = self._source(source)
        group_by = self._text_setting(source, "group_by", "the export's column that holds the deal's id")
        self.name_order = self._name_order(source.get("name_order"), ("source", "name_order"), "[source]")
        skips = self._skips(self.doc.get("skip", []))
        self.group_by = group_by
        fields = self.doc.get("fields")
        out: list[FieldMap] = []
        if not isinstance(fields, dict) or not fields:
            self.problem(
                self.line("fields"),
                "the mapping has no [fields]: add a [fields] section with "
                'one line per template field, like "Referral Name" = "Opportunity Name".',
            )
        else:
            for name, entry in fields.items():
                fm = self._field(name, entry, date_format, number)
                if fm is not None:
                    out.append(fm)
            self._conflicts(out)
        if self.problems:
            raise MappingError(describe_problems(self.path, self.problems))
        return Mapping(
            self.path,
            tuple(out),
            sheet,
            self.line("source", "sheet"),
            group_by,
            self.line("source", "group_by"),
            skips,
        )

    # ------------------------------------------------------------------ [patterns], [[skip]]

    def _patterns(self, table: Any) -> dict[str, Pattern]:
        if not isinstance(table, dict):
            self.problem(self.line("patterns"), "[patterns] must be a table of name = 'regular expression'.")
            return {}
        out = {}
        for name, text in table.items():
            compiled = self._regex(text, ("patterns", name), f"[patterns] {name}")
            if compiled is not None:
                out[name] = compiled
        return out

    def _regex(self, text: Any, keys: tuple[str, ...], where: str, line: int | None = None) -> Pattern | None:
        """``text`` compiled, or None with a problem on ``line`` (else the line of ``keys``)."""
        line = self.line(*keys) if line is None else line
        if not isinstance(text, str) or not text:
            self.problem(
                line,
                f"{where} must be a regular expression in single quotes, like '^Total', not {_show(text)}.",
            )
            return None
        try:
            return Pattern(text)
        except PatternError as e:
            self.problem(
                line,
                f"{where} {e}: mapping patterns run on RE2, in time linear in the cell, which has no "
                "backreferences, lookaround, atomic groups or possessive quantifiers; rewrite it without."
                if e.unsupported
                else f"{where} {e}: check its brackets and escapes (single-quoted TOML strings keep "
                "backslashes as they are).",
            )
            return None

    def _skips(self, skips: Any) -> tuple[SkipRule, ...]:
        if isinstance(skips, dict):
            skips = [skips]
        if not isinstance(skips, list) or not all(isinstance(s, dict) for s in skips):
            self.problem(
                self.line("skip"),
                "skip must be tables, one per rule: [[skip]] on a line of its own, then "
                "column = \"...\" and blank = true or pattern = '...'.",
            )
            return ()
        # [[skip]] tables share their header's key: their lines are the headers', in order.
        starts = _array_lines(self.raw_lines, "skip")
        out = []
        for i, table in enumerate(skips):
            line = starts[i] if i < len(starts) else self.line("skip")
            where = "[[skip]]" if i < len(starts) else f"skip rule {i + 1}"
            before = len(self.problems)
            for key in table:
                if key not in SKIP_OPTIONS:
                    self.problem(
                        line,
                        f"{where} has no option '{key}'{_did_you_mean(key, SKIP_OPTIONS)}: its options "
                        f"are {', '.join(SKIP_OPTIONS)}.",
                    )
            column = table.get("column")
            if not isinstance(column, str) or not column.strip():
                self.problem(line, f'{where} needs column = "...": the export\'s column the rule looks at.')
            blank, pattern = table.get("blank", False), table.get("pattern")
            if not isinstance(blank, bool):
                self.problem(line, f"{where} blank must be true or false, not {_show(blank)}.")
            if (blank is True) == (pattern is not None):
                self.problem(
                    line,
                    f"{where} needs one condition: blank = true (the cell is empty) or "
                    "pattern = '...' (the cell matches a regular expression, like '^Total').",
                )
            compiled = None if pattern is None else self._regex(pattern, ("skip",), f"{where} pattern", line)
            and_below = table.get("and_below", False)
            if not isinstance(and_below, bool):
                self.problem(line, f"{where} and_below must be true or false, not {_show(and_below)}.")
            reason = table.get("reason")
            if reason is not None and not isinstance(reason, str):
                self.problem(line, f"{where} reason must be text, not {_show(reason)}.")
            if len(self.problems) == before:
                assert isinstance(column, str)
                out.append(SkipRule(column, line, blank is True, compiled, and_below is True, reason))
        return tuple(out)

    def _text_setting(self, source: dict[str, Any], key: str, what: str) -> str | None:
        value = source.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.problem(self.line("source", key), f"[source] {key} must be {what}, in quotes.")
            return None
        return value

    def _name_order(
        self, value: Any, keys: tuple[str, ...], where: str, inherited: str = "given_family"
    ) -> str:
        if value is None:
            return inherited
        if value not in NAME_ORDERS:
            self.problem(
                self.line(*keys),
                f'{where} name_order must be "given_family" (Anna Schäfer), "family_given" '
                f'(Kim Min-jun, 王伟) or "whole" (the full name is the last name), not {_show(value)}.',
            )
            return inherited
        return value

    # ------------------------------------------------------------------ [source]

    def _source(self, source: dict[str, Any]) -> tuple[str | None, str | None, NumberFormat]:
        for key in source:
            if key not in SOURCE_OPTIONS:
                self.problem(
                    self.line("source", key),
                    f"[source] has no option '{key}'"
                    f"{_did_you_mean(key, SOURCE_OPTIONS)}: its options are "
                    f"{', '.join(SOURCE_OPTIONS)}.",
                )
        sheet = source.get("sheet")
        if sheet is not None and not isinstance(sheet, str):
            self.problem(self.line("source", "sheet"), "[source] sheet must be the sheet's name in quotes.")
            sheet = None
        date_format = self._date_format(source.get("date_format"), ("source", "date_format"), "[source]")
        number = self._number(source, ("source",), "[source]", NumberFormat())
        return sheet, date_format, number

    def _date_format(self, value: Any, keys: tuple[str, ...], where: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or "%" not in value:
            self.problem(
                self.line(*keys),
                f"{where} date_format must be a strftime pattern like "
                f'"%d/%m/%Y" (31/12/2026) or "%m/%d/%Y", not {_show(value)}.',
            )
            return None
        try:
            back = dt.datetime.strptime(_PROBE.strftime(value), value)
        except ValueError:
            back = None
        if back is None or back.date() != _PROBE.date():
            self.problem(
                self.line(*keys),
                f"{where} date_format {_show(value)} does not read a whole date: "
                'it needs the year (%Y), month (%m or %b) and day (%d), e.g. "%d/%m/%Y".',
            )
            return None
        return value

    def _number(
        self, table: dict[str, Any], keys: tuple[str, ...], where: str, inherited: NumberFormat
    ) -> NumberFormat:
        if "decimal" not in table and "thousands" not in table:
            return inherited
        decimal, thousands = table.get("decimal"), table.get("thousands")
        if decimal is None:  # only thousands given: keep the decimal mark unless they clash
            clash = inherited.decimal == thousands
            decimal = ("," if thousands == "." else ".") if clash else inherited.decimal
        if decimal not in DECIMALS:
            self.problem(
                self.line(*keys, "decimal"), f'{where} decimal must be "." or ",", not {_show(decimal)}.'
            )
            return inherited
        if thousands is None:  # only the decimal mark given: the usual grouping that goes with it
            thousands = "." if decimal == "," else ","
        if thousands not in THOUSANDS or thousands == decimal:
            self.problem(
                self.line(*keys, "thousands"),
                f"{where} thousands must be one of "
                f'{", ".join(_show(t) for t in THOUSANDS if t != decimal)} ("" for none), not '
                f"{_show(thousands)}.",
            )
            return inherited
        return NumberFormat(decimal, thousands)

    # ------------------------------------------------------------------ [fields]

    def _field(self, name: str, entry: Any, date_format: str | None, number: NumberFormat) -> FieldMap | None:
        line = self.line("fields", name)
        where = f'[fields] "{name}"'
        if isinstance(entry, str):
            entry = {"column": entry}
        if not isinstance(entry, dict):
            self.problem(
                line,
                f'{where} must be a column name in quotes ("{name}" = "Column") or a '
                f'table ({{ column = "Column", ... }}), not {_show(entry)}.',
            )
            return None
        before = len(self.problems)
        reads = entry.get("column", entry.get("columns"))
        column, numbered = self._column(
            name, line, where if reads is None else f"{where} (reading column {_show(reads)})"
        )
        for key in entry:
            if key not in FIELD_OPTIONS:
                self.problem(
                    self.line("fields", name, key),
                    f"{where} has no option '{key}'"
                    f"{_did_you_mean(key, FIELD_OPTIONS)}: the options are "
                    f"{', '.join(FIELD_OPTIONS)}.",
                )
        sources = self._sources(entry, line, where)
        value = entry.get("value")
        default = entry.get("default")
        for opt, v in (("value", value), ("default", default)):
            if v is not None and not isinstance(v, Scalar):
                self.problem(
                    line, f"{where} {opt} must be text, a number, true/false or a date, not {_show(v)}."
                )
        if value is not None and sources:
            self.problem(line, f"{where} has both value (a constant) and column(s): keep one.")
        misspelt = len(self.problems) > before  # an unknown option, likely the source's: say that only
        if value is None and not sources and not misspelt:
            hint = (
                "default only fills blanks of a column: use value = ... for a constant"
                if default is not None
                else 'say where it comes from: column = "...", '
                'columns = ["...", "..."] or value = ... (a constant)'
            )
            self.problem(line, f"{where} has no source: {hint}.")
        values, other = self._values(entry, name, line, where)
        pattern = self._field_pattern(entry, name, line, where)
        split, part = self._split(entry, line, where, pattern)
        rules = self._rules(entry, sources, line, where)
        if rules is not None and other == "keep":
            self.problem(
                line,
                f'{where} rules give one value from several columns: other = "keep" has no one value to '
                'keep; end the rules with a row of "*" (the fallback), or use other = "blank".',
            )
        rows = self._rows_rule(entry, name, line, where)
        name_part, name_order = self._name(entry, name, line, where)
        from_amount = entry.get("from_amount", False)
        if not isinstance(from_amount, bool):
            self.problem(line, f"{where} from_amount must be true or false, not {_show(from_amount)}.")
            from_amount = False
        join = self._text_option(entry, "join", line, where)
        delimiter = self._text_option(entry, "delimiter", line, where)
        if join is not None and len(sources) < 2:
            self.problem(
                line, f'{where} join combines several columns: list them in columns = ["...", "..."].'
            )
        if column is None:
            return None
        kind = column.kind
        fm_date, fm_number = None, number
        if "date_format" in entry and kind is not Kind.DATE:
            self.problem(line, f"{where} date_format is for date fields; {column.header} is {kind}.")
        else:
            fm_date = self._date_format(entry.get("date_format"), ("fields", name, "date_format"), where)
        if ("decimal" in entry or "thousands" in entry) and kind is not Kind.DECIMAL:
            self.problem(
                line, f"{where} decimal and thousands are for number fields; {column.header} is {kind}."
            )
        else:
            fm_number = self._number(entry, ("fields", name), where, number)
        many = delimiter is not None or (len(sources) > 1 and join is None and "rules" not in entry)
        if many and not numbered and kind is not Kind.LIST:
            self.problem(
                line,
                f"{where} gives several values per row but {column.header} holds one: "
                'add join = ", " to combine the columns, or map them to a numbered field '
                f'("{column.header.replace(" 1 ", " {n} ")}" for contacts and team members).'
                if column.group
                else f"{where} gives several values per row but {column.header} holds one: "
                'add join = ", " to combine the columns into one.',
            )
        if from_amount and kind is not Kind.CURRENCY:
            self.problem(
                line,
                f"{where} from_amount takes the currency written with an amount (USD 310,000.00): it is "
                f"for the Currency field; {column.header} reads the amount itself without it.",
            )
        if name_part is not None and column.field not in ("first_name", "last_name"):
            self.problem(
                line, f"{where} name is for First Name and Last Name fields; {column.header} is not one."
            )
        if rows is not None and self.group_by is None:
            self.problem(
                line,
                f"{where} rows says how the rows of one deal give the field: it needs "
                '[source] group_by = "<the column of the deal\'s id>".',
            )
        if rows in ("min", "max", "sum") and kind not in (Kind.DECIMAL, Kind.DATE):
            self.problem(
                line, f'{where} rows = "{rows}" is for numbers and dates; {column.header} is {kind}.'
            )
        if rows is not None and (numbered or kind is Kind.LIST):
            self.problem(
                line,
                f"{where} rows is for single fields: with group_by, the items of numbered and list "
                "fields come from every row of the deal already.",
            )
        if kind is Kind.CHOICE:
            self._choices(column, name, line, where, values, value, default, rules)
        if numbered and value is not None:
            self.problem(
                line,
                f"{where} is numbered ({NUMBERED}) and takes columns, not a constant: "
                "name item 1 for a constant (Customer Contact 1 ...).",
            )
        if len(self.problems) > before:
            return None
        return FieldMap(
            name=name,
            column=column,
            line=line,
            sources=sources,
            numbered=numbered,
            value=value,
            default=default,
            values=values,
            other=other,
            split=split,
            part=part,
            join=join,
            delimiter=delimiter,
            date_format=fm_date or (date_format if kind is Kind.DATE else None),
            number=fm_number,
            patterns=pattern,
            pattern_names=self._pattern_names(entry) if pattern else (),
            rules=rules,
            rows=rows,
            name_part=name_part,
            name_order=name_order,
            from_amount=from_amount,
        )

    def _pattern_names(self, entry: dict[str, Any]) -> tuple[str, ...]:
        given = entry.get("pattern")
        listed = given if isinstance(given, list) else [given]
        return tuple(f"'{t}'" if t not in self.patterns else str(t) for t in listed)

    def _field_pattern(self, entry: dict[str, Any], name: str, line: int, where: str) -> tuple[Pattern, ...]:
        """The entry's pattern, or its list of patterns (tried in order), each a
        regular expression or the name of one under [patterns]."""
        given = entry.get("pattern")
        out = []
        for text in given if isinstance(given, list) else [] if given is None else [given]:
            if isinstance(text, str) and text in self.patterns:
                out.append(self.patterns[text])
            elif (compiled := self._regex(text, ("fields", name, "pattern"), f"{where} pattern")) is not None:
                out.append(compiled)
        return tuple(out)

    def _rules(
        self, entry: dict[str, Any], sources: tuple[str, ...], line: int, where: str
    ) -> tuple[Rule, ...] | None:
        rules = entry.get("rules")
        if rules is None:
            return None
        width = len(sources)
        shape = (
            f'each rule is [{", ".join(_show(s) for s in sources)}, "value"]: a pattern per column '
            f'("*" for any value), then the value'
        )
        if not sources or not isinstance(rules, list) or not rules:
            self.problem(line, f'{where} rules need columns = ["...", "..."] and a list of rules: {shape}.')
            return None
        for other in ("values", "join", "delimiter", "split", "pattern"):
            if other in entry:
                self.problem(line, f"{where} has rules and {other}: rules decide the value alone; keep one.")
        out = []
        for i, rule in enumerate(rules, 1):
            if (
                not isinstance(rule, list)
                or len(rule) != width + 1
                or not all(isinstance(p, str) for p in rule[:width])
                or not isinstance(rule[width], Scalar)
            ):
                shown = json.dumps(rule, ensure_ascii=False, default=str)
                self.problem(line, f"{where} rule {i} is {shown}; {shape}.")
                continue
            out.append(Rule(tuple(rule[:width]), rule[width], i))
        return tuple(out)

    def _rows_rule(self, entry: dict[str, Any], name: str, line: int, where: str) -> str | None:
        rows = entry.get("rows")
        if rows is not None and rows not in ROW_RULES:
            self.problem(
                self.line("fields", name, "rows"),
                f'{where} rows must be "same" (the deal\'s rows must agree: the default), "first", "last" '
                f'(the first or last row that has a value), "min", "max" or "sum", not {_show(rows)}.',
            )
            return None
        return rows

    def _name(self, entry: dict[str, Any], name: str, line: int, where: str) -> tuple[str | None, str]:
        part = entry.get("name")
        order = self._name_order(
            entry.get("name_order"), ("fields", name, "name_order"), where, self.name_order
        )
        if part is not None and part not in NAME_PARTS:
            self.problem(
                line,
                f'{where} name must be "first" (the given name) or "last" (the family name), '
                f"not {_show(part)}.",
            )
            part = None
        if "name_order" in entry and part is None:
            self.problem(line, f'{where} name_order goes with name = "first" or name = "last".')
        return part, order

    def _column(self, name: str, line: int, where: str) -> tuple[Column | None, bool]:
        numbered = NUMBERED in name
        # "City {n}" means City: resolved without the {n}, to say {n} does not belong there.
        column = SPEC.resolve(name.replace(NUMBERED, "1")) or (
            SPEC.resolve(name.replace(NUMBERED, "")) if numbered else None
        )
        if column is None:
            self.problem(
                line,
                f"{where}: no template field is called that{_field_hint(name)}. Name a "
                "template header (as in `bulkref template`), its key or its JSON name.",
            )
            return None, numbered
        if numbered and column.group is None:
            groups = ", ".join(g.label for g in SPEC.groups)
            self.problem(
                line,
                f"{where}: {NUMBERED} is for numbered groups ({groups}); "
                f"{column.header} is a single field, write it without {NUMBERED}.",
            )
            return None, numbered
        if column.read_only:
            self.problem(
                line,
                f"{where}: {column.header} is filled by Partner Center and ignored on "
                "input: remove this entry.",
            )
            return None, numbered
        return column, numbered

    def _sources(self, entry: dict[str, Any], line: int, where: str) -> tuple[str, ...]:
        one, many = entry.get("column"), entry.get("columns")
        if one is not None and many is not None:
            self.problem(line, f"{where} has both column and columns: use columns = [...] for several.")
            return ()
        if one is not None:
            if not isinstance(one, str) or not one.strip():
                self.problem(
                    line, f"{where} column must be the export's column header in quotes, not {_show(one)}."
                )
                return ()
            return (one,)
        if many is not None:
            if (
                not isinstance(many, list)
                or not many
                or not all(isinstance(c, str) and c.strip() for c in many)
            ):
                self.problem(
                    line,
                    f"{where} columns must be a list of column headers, like "
                    f'["Street 1", "Street 2"], not {_show(many)}.',
                )
                return ()
            return tuple(many)
        return ()

    def _values(
        self, entry: dict[str, Any], name: str, line: int, where: str
    ) -> tuple[dict[str, Scalar] | None, Other]:
        values = entry.get("values")
        other = entry.get("other", "error")
        if other not in OTHERS:
            self.problem(
                self.line("fields", name, "other"),
                f'{where} other must be "error" (the '
                'default: a value the map does not list is an error), "keep" (pass it '
                f'through) or "blank" (leave the field blank), not {_show(other)}.',
            )
            other = "error"
        if values is None:
            if "other" in entry and "rules" not in entry:
                self.problem(
                    line,
                    f"{where} other says what to do with values the value map does not "
                    "list: add values = { ... } too, or remove other.",
                )
            return None, other
        if not isinstance(values, dict) or not values:
            self.problem(
                self.line("fields", name, "values"),
                f'{where} values must be a table like {{ "Closed Won" = "Closed" }}, not {_show(values)}.',
            )
            return None, other
        for k, v in values.items():
            if not isinstance(v, Scalar):
                self.problem(
                    self.line("fields", name, "values", k),
                    f'{where} values: "{k}" maps to '
                    f"{_show(v)}; map each value to text, a number, true/false or a date.",
                )
        return dict(values), other

    def _split(
        self, entry: dict[str, Any], line: int, where: str, patterns: tuple[Pattern, ...] = ()
    ) -> tuple[str | None, str | int | None]:
        split, part = entry.get("split"), entry.get("part")
        if "pattern" in entry:
            if split is not None:
                self.problem(
                    line, f"{where} has split and pattern: a pattern cuts the cell itself; keep one."
                )
            for pattern in patterns:
                names = ", ".join(f'"{g}"' for g in pattern.groupindex) or "none"
                ok = (isinstance(part, str) and part in pattern.groupindex) or (
                    isinstance(part, int) and not isinstance(part, bool) and 0 <= part <= pattern.groups
                )
                if not ok:
                    self.problem(
                        line,
                        f"{where} part must name a group of the pattern '{pattern.pattern}' (its named "
                        f"groups: {names}; 0 is the whole match), "
                        + ("and is missing." if part is None else f"not {_show(part)}."),
                    )
                    return None, None
            return None, part
        if split is None and part is None:
            return None, None
        if split is None or part is None:
            self.problem(
                line,
                f'{where} split and part go together: split = " " cuts the value, part '
                f"says which piece ({', '.join(PARTS)}, or a number).",
            )
            return None, None
        if not isinstance(split, str) or not split:
            self.problem(
                line, f'{where} split must be the text to cut at, like " " or ",", not {_show(split)}.'
            )
        ok_part = (part in PARTS) or (isinstance(part, int) and not isinstance(part, bool) and part != 0)
        if not ok_part:
            self.problem(
                line,
                f"{where} part must be one of {', '.join(PARTS)}, or a piece number "
                f"(1 is the first, -1 the last), not {_show(part)}.",
            )
        return split, part

    def _text_option(self, entry: dict[str, Any], option: str, line: int, where: str) -> str | None:
        value = entry.get(option)
        if value is not None and (not isinstance(value, str) or (option == "delimiter" and not value)):
            self.problem(line, f'{where} {option} must be text like ";" , not {_show(value)}.')
            return None
        return value

    def _choices(
        self,
        column: Column,
        name: str,
        line: int,
        where: str,
        values: dict[str, Scalar] | None,
        value: Any,
        default: Any,
        rules: tuple[Rule, ...] | None = None,
    ) -> None:
        """Values the mapping itself writes into a list field must be on its list:
        said once here, with the line, instead of once per row by the validator."""
        assert column.choices is not None
        if column.choices in TAXONOMY_LISTS:
            return  # a newer fiscal year's name is the validator's warning, per row, not a mapping error
        enums = load_enums()
        allowed = enums.values(column.choices)
        listed = ", ".join(allowed) if len(allowed) <= 12 else "see the Lists sheet of the template"
        written = [
            (self.line("fields", name, "values", k), f'values: "{k}" maps to', v)
            for k, v in (values or {}).items()
        ]
        written += [
            (line, f"{opt} is", v) for opt, v in (("value", value), ("default", default)) if v is not None
        ]
        written += [(line, f"rule {r.number} gives", r.value) for r in rules or ()]
        for at, what, v in written:
            if v != "" and (not isinstance(v, str) or enums.canonical(column.choices, v) is None):
                self.problem(
                    at, f"{where} {what} {_show(v)}, which is not a {column.header}: use one of {listed}."
                )

    def _conflicts(self, fields: list[FieldMap]) -> None:
        """Two entries may not fill the same field: which would win is not obvious to a reviewer."""
        seen: dict[str, FieldMap] = {}
        numbered: dict[tuple[str, str], FieldMap] = {}
        for fm in fields:
            if fm.numbered:
                assert fm.column.group is not None and fm.column.field is not None
                key = (fm.column.group, fm.column.field)
                if key in numbered:
                    self._twice(fm, numbered[key])
                numbered.setdefault(key, fm)
                continue
            if fm.column.key in seen:
                self._twice(fm, seen[fm.column.key])
            seen.setdefault(fm.column.key, fm)
        for fm in seen.values():
            if fm.column.group is not None and (fm.column.group, fm.column.field or "") in numbered:
                self._twice(fm, numbered[(fm.column.group, fm.column.field or "")])

    def _twice(self, fm: FieldMap, first: FieldMap) -> None:
        self.problem(
            fm.line,
            f'[fields] "{fm.name}" fills {fm.column.header}, which "{first.name}" '
            f"(line {first.line}) fills already: keep one of the two entries.",
        )


def describe_problems(path: Path, problems: list[tuple[int, str]]) -> str:
    """One sentence for one problem; a list, one line each, for several."""
    problems = sorted(problems, key=lambda p: p[0])
    if len(problems) == 1:
        line, message = problems[0]
        return f"{path.name} line {line}: {message}"
    listed = "\n".join(f"  line {line}: {message}" for line, message in problems)
    return f"{path.name} has {len(problems)} problems; fix them and run again:\n{listed}"


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _did_you_mean(text: str, options: tuple[str, ...]) -> str:
    close = closest(text, options)
    return f" (did you mean '{close}'?)" if close else ""


def _field_hint(name: str) -> str:
    close = closest(name.replace(NUMBERED, "1"), (c.header for c in SPEC.columns()))
    return f' (did you mean "{close}"?)' if close else ""


# --------------------------------------------------------------------------- lines


def _array_lines(text: str, name: str) -> list[int]:
    """The lines of the ``[[name]]`` headers in ``text``, in order."""
    header = re.compile(rf"^\s*\[\[\s*{re.escape(name)}\s*\]\]")
    return [n for n, line in enumerate(text.splitlines(), 1) if header.match(line)]


def line_of(lines: dict[tuple[str, ...], int], keys: tuple[str, ...]) -> int:
    """The line of ``keys``, or of the nearest enclosing entry that has one
    (a key inside an inline table shares its entry's line)."""
    for n in range(len(keys), 0, -1):
        if keys[:n] in lines:
            return lines[keys[:n]]
    return 1


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The 1-based line of every table header and key/value key in ``text``, by
    its full key path (``("fields", "Status")``). Multi-line strings and
    arrays are skipped; keys inside inline tables are not listed."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    depth = 0  # brackets and braces open across lines
    open_string: str | None = None  # the delimiter of a multi-line string that is open
    for number, line in enumerate(text.splitlines(), 1):
        pos = 0
        if open_string is not None:
            end = line.find(open_string)
            if end < 0:
                continue
            pos, open_string = end + 3, None
        elif depth == 0:
            stripped = line.lstrip()
            pos = len(line) - len(stripped)
            if stripped.startswith("["):
                inner = stripped.lstrip("[")
                keys, _ = _keys(inner)
                if keys:
                    table = tuple(keys)
                    lines.setdefault(table, number)
                continue
            keys, used = _keys(stripped)
            if keys and stripped[used:].lstrip().startswith("="):
                path = table + tuple(keys)
                for n in range(len(table) + 1, len(path) + 1):  # dotted keys define their parents too
                    lines.setdefault(path[:n], number)
                pos += stripped.index("=", used) + 1
        depth, open_string, _, _ = _scan(line, pos, depth)
    return lines


def _nesting(text: str) -> tuple[int, int]:
    """How deep ``text`` nests, and the first line that deep, counted on the raw
    text so that a file tomllib would choke on is refused before it is parsed:
    brackets and braces outside strings and comments (its parser recurses once
    per level), and a line's dots (a dotted key of n parts nests n deep, and
    parsing one costs n squared)."""
    deepest, deepest_line = 0, 1
    depth = 0
    open_string: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        pos = 0
        if open_string is not None:
            end = line.find(open_string)
            if end < 0:
                continue
            pos, open_string = end + 3, None
        scanned = _scan(line, pos, depth)
        depth, open_string = scanned.depth, scanned.open_string
        # A line of floats has dots too: only far more than a key could use counts.
        most = max(scanned.deepest, scanned.dots // 4)
        if most > deepest:
            deepest, deepest_line = most, number
    return deepest, deepest_line


def _keys(text: str) -> tuple[list[str], int]:
    """The dotted key at the start of ``text`` and where it ends ([], 0 if none)."""
    keys: list[str] = []
    i = 0
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] in "\"'":
            end = _string_end(text, i)
            if end < 0:
                return [], 0
            try:
                keys.append(tomllib.loads(f"k = {text[i:end]}")["k"])
            except tomllib.TOMLDecodeError:
                return [], 0
            i = end
        elif m := _BARE.match(text, i):
            keys.append(m.group(0))
            i = m.end()
        else:
            return ([], 0) if not keys else (keys, i)
        j = i
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == ".":
            i = j + 1
            continue
        return keys, i


def _string_end(text: str, i: int) -> int:
    """The position after the one-line string starting at ``text[i]``, or -1."""
    quote = text[i]
    j = i + 1
    while j < len(text):
        if quote == '"' and text[j] == "\\":
            j += 2
            continue
        if text[j] == quote:
            return j + 1
        j += 1
    return -1


class _Scanned(NamedTuple):
    depth: int  # brackets and braces open after the line
    open_string: str | None  # the delimiter of a multi-line string left open
    deepest: int  # the most brackets and braces open on the line
    dots: int  # dots outside strings and comments: the parts of dotted keys, and floats


def _scan(line: str, pos: int, depth: int) -> _Scanned:
    """Follow ``line`` from ``pos``, strings and comments skipped."""
    i = pos
    deepest, dots = depth, 0
    while i < len(line):
        ch = line[i]
        if ch == "#":
            break
        if line.startswith(('"""', "'''"), i):
            delimiter = line[i : i + 3]
            end = line.find(delimiter, i + 3)
            if end < 0:
                return _Scanned(depth, delimiter, deepest, dots)
            i = end + 3
            continue
        if ch in "\"'":
            end = _string_end(line, i)
            i = len(line) if end < 0 else end
            continue
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == ".":
            dots += 1
        i += 1
    return _Scanned(depth, None, deepest, dots)
