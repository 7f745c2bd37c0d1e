"""What a mapping can name, for a person writing one in a form (``bulkref serve``'s
mapping page): the template fields a ``[fields]`` entry may fill, each with its
kind and allowed values, and an export's columns with the values each holds.

The mapping file stays the format: these lists only say what there is to choose
from. The page turns the choices into TOML, and ``load_mapping`` judges it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkref.sheets.reader import read_sheet
from bulkref.sheets.values import as_text
from bulkref.spec.columns import SPEC, Column, Kind
from bulkref.spec.enums import load as load_enums

__all__ = ["ExportColumn", "ExportProfile", "MappableField", "mapping_fields", "profile_export"]

NUMBERED = "{n}"
YES_NO = ("Yes", "No")
# Distinct values kept per column: enough for a stage or country column's value
# map, not a copy of a free-text column.
MAX_VALUES = 60


@dataclass(frozen=True)
class MappableField:
    """One template field as a mapping's ``[fields]`` names it."""

    name: str  # "Status", or "Customer Contact {n} Email" for each item of a numbered group
    kind: str  # the spec's kind: "text", "choice", "yes/no", "date", ...
    choices: tuple[str, ...]  # the allowed values of a choice or yes/no field, else ()
    required: bool  # needed for new referrals (or always)
    section: str
    help: str
    numbered: bool = False


@dataclass(frozen=True)
class ExportColumn:
    """One column of an export: its header, letter and the values it holds."""

    header: str
    letter: str
    values: tuple[str, ...]  # distinct non-blank values as text, first seen first, at most MAX_VALUES
    distinct: int  # how many distinct non-blank values the column has in all
    filled: int  # how many rows have a value

    @property
    def samples(self) -> tuple[str, ...]:
        return self.values[:3]


@dataclass(frozen=True)
class ExportProfile:
    sheet: str
    header_row: int
    rows: int
    columns: tuple[ExportColumn, ...]
    template_columns: int  # how many headers are the template's own (or its aliases)

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def column(self, header: str) -> ExportColumn | None:
        return next((c for c in self.columns if c.header == header), None)


def _choices(column: Column) -> tuple[str, ...]:
    if column.kind is Kind.BOOL:
        return YES_NO
    if column.kind is Kind.CHOICE and column.choices is not None:
        return tuple(load_enums().values(column.choices))
    return ()


def mapping_fields() -> list[MappableField]:
    """Every field a mapping may fill, in the template's order: the single columns
    Partner Center does not fill itself, then each numbered group's fields once,
    as ``{n}`` entries (each source column or delimited piece fills the next item)."""
    out: list[MappableField] = []
    for item in SPEC.layout:
        if isinstance(item, Column):
            if not item.read_only:
                out.append(
                    MappableField(
                        item.header, str(item.kind), _choices(item), item.required, item.section, item.help
                    )
                )
            continue
        for f in item.fields:
            if f.read_only:
                continue
            numbered = SPEC.column(f"{item.key}.1.{f.key}")
            out.append(
                MappableField(
                    f"{item.label} {NUMBERED} {f.header}",
                    str(f.kind),
                    _choices(f),
                    numbered.required,
                    item.section,
                    f"{item.help} {f.help}".strip(),
                    numbered=True,
                )
            )
    return out


def _letter(position: int) -> str:
    letters = ""
    n = position + 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _text(value: Any) -> str:
    return as_text(value).strip()


def profile_export(path: Path | str, sheet: str | None = None) -> ExportProfile:
    """The export's columns (named ones only) and the values each holds, as a
    mapping reads them: the sheet is chosen as ``read_sheet`` chooses it."""
    raw = read_sheet(path, sheet)
    columns = []
    for position, header in enumerate(raw.headers):
        if not header:
            continue
        seen: dict[str, None] = {}
        filled = 0
        for cell in raw.cells(position):
            text = _text(cell) if cell is not None else ""
            if not text:
                continue
            filled += 1
            seen.setdefault(text)
        values = tuple(list(seen)[:MAX_VALUES])
        columns.append(ExportColumn(header, _letter(position), values, len(seen), filled))
    known = sum(1 for c in columns if SPEC.resolve(c.header) is not None)
    return ExportProfile(raw.name, raw.header_row, len(raw.rows), tuple(columns), known)
