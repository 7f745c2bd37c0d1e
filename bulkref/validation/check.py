"""Read a spreadsheet and validate it: the library form of ``bulkref validate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulkref.mapping.file import Mapping
    from bulkref.validation.schema import Validated


def check_file(
    path: Path | str, sheet: str | None = None, mapping: Mapping | Path | str | None = None
) -> Validated:
    """Every problem of the sheet at ``path``, and its typed values.

    With ``mapping`` (a mapping file, or one loaded), ``path`` is a legacy
    export read through it (``bulkref.mapping.source``): rows keep the export's row
    numbers, and problems name the export's columns, the template fields and
    the mapping lines.

    The validator (pandas, pandera) is imported after the sheet is read, not
    before: reading a large workbook is the peak of the run's memory, and
    whatever is loaded by then adds to it. This keeps 100,000 rows well under
    600 MB (benchmarks/validate.py).
    """
    if mapping is not None:
        return check_mapped(path, mapping, sheet=sheet)
    from bulkref.sheets.reader import read_table

    table = read_table(path, sheet=sheet)
    from bulkref.validation.schema import validate

    return validate(table)


def check_mapped(path: Path | str, mapping: Mapping | Path | str, sheet: str | None = None) -> Validated:
    """Read and validate the export at ``path`` through ``mapping``: every problem
    names the export's row and column, the template field and the mapping line."""
    from bulkref.mapping.source import locate, read_mapped

    mapped = read_mapped(path, mapping, sheet)
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
