"""Read a spreadsheet and validate it: the library form of ``bulkref validate``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulkref.mapping.file import Mapping
    from bulkref.mapping.source import Mapped
    from bulkref.sheets.reader import Sheet
    from bulkref.validation.schema import Validated


def check_file(
    path: Path | str, sheet: str | None = None, mapping: Mapping | Path | str | None = None
) -> Validated:
    """Every problem of the sheet at ``path``, and its typed values.

    With ``mapping`` (a mapping file, or one loaded), ``path`` is a legacy
    export read through it (``bulkref.mapping.source``): rows keep the export's row
    numbers, and problems name the export's columns, the template fields and
    the mapping lines.

    The validator (pandas, pandera) is not imported before the sheet is read:
    reading a large workbook is the peak of the run's memory, and whatever is
    loaded by then adds to it. A workbook's cells are read in a child process,
    so the validator is loaded while it works; a CSV's are read here, and the
    validator after them. This keeps 100,000 rows well under 600 MB
    (benchmarks/validate.py).
    """
    if mapping is not None:
        return check_mapped(path, mapping, sheet=sheet)
    from bulkref.sheets.reader import read_sheet, table_of

    if Path(path).suffix.lower() in (".xlsx", ".xlsm"):
        # A workbook is read in a child process (bulkref.sheets.native), so
        # this one is idle meanwhile and holds none of the cells yet: loading
        # the validator now costs no memory at the peak and no wall time.
        threading.Thread(target=_load_validator, name="bulkref-load-validator", daemon=True).start()
    raw = read_sheet(path, sheet=sheet)
    from bulkref.mapping.partner_center import is_partner_center

    if is_partner_center(raw.headers):
        return _check_layout(raw)
    table = table_of(raw)
    from bulkref.validation.schema import validate

    return validate(table)


def _check_layout(raw: Sheet) -> Validated:
    """A sheet in Partner Center's co-sell layout, read through the mapping that layout needs."""
    import dataclasses

    from bulkref.mapping.partner_center import layout_mapping
    from bulkref.mapping.source import map_sheet

    mapping, notes = layout_mapping(raw)
    mapped = map_sheet(raw, mapping)
    mapped.table.problems[:0] = notes
    validated = _validated(mapped)
    report = validated.report
    report.layout = mapping.layout
    report.skipped = [dataclasses.replace(s, mapping_line=None) for s in report.skipped or ()]
    return validated


def check_mapped(path: Path | str, mapping: Mapping | Path | str, sheet: str | None = None) -> Validated:
    """Read and validate the export at ``path`` through ``mapping``: every problem
    names the export's row and column, the template field and the mapping line."""
    from bulkref.mapping.source import read_mapped

    return _validated(read_mapped(path, mapping, sheet))


def _validated(mapped: Mapped) -> Validated:
    from bulkref.mapping.source import locate
    from bulkref.problems import Report
    from bulkref.validation.schema import validate

    validated = validate(mapped.table)
    validated.report = Report(
        rows=validated.report.rows,
        problems=locate(validated.report.problems, mapped),
        skipped=mapped.skipped,
        groups=(
            {row: rows for row, rows in mapped.groups.items() if len(rows) > 1}
            if mapped.mapping.group_by is not None
            else None
        ),
    )
    return validated


def _load_validator() -> None:
    try:
        import pandera.pandas  # noqa: F401

        import bulkref.validation.schema  # noqa: F401
    except Exception:
        pass  # imported again, and any error shown, where it is used
