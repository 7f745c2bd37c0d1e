"""Read a spreadsheet and validate it: the library form of ``bulkref validate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulkref.mapping import Mapping
    from bulkref.validate import Validated


def check_file(path: Path | str, sheet: str | None = None,
               mapping: Mapping | Path | str | None = None) -> Validated:
    """Every problem of the sheet at ``path``, and its typed values.

    With ``mapping`` (a mapping file, or one loaded), ``path`` is a legacy
    export read through it (``bulkref.mapped``): rows keep the export's row
    numbers, and problems name the export's columns, the template fields and
    the mapping lines.

    The validator (pandas, pandera) is imported after the sheet is read, not
    before: reading a large workbook is the peak of the run's memory, and
    whatever is loaded by then adds to it. This keeps 100,000 rows well under
    600 MB (benchmarks/validate.py).
    """
    if mapping is not None:
        from bulkref.mapped import check_mapped

        return check_mapped(path, mapping, sheet=sheet)
    from bulkref.read import read_table

    table = read_table(path, sheet=sheet)
    from bulkref.validate import validate

    return validate(table)
