"""Read a spreadsheet and validate it: the library form of ``bulkref validate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulkref.validate import Validated


def check_file(path: Path | str, sheet: str | None = None) -> Validated:
    """Every problem of the sheet at ``path``, and its typed values.

    The validator (pandas, pandera) is imported after the sheet is read, not
    before: reading a large workbook is the peak of the run's memory, and
    whatever is loaded by then adds to it. This keeps 100,000 rows well under
    600 MB (benchmarks/validate.py).
    """
    from bulkref.read import read_table

    table = read_table(path, sheet=sheet)
    from bulkref.validate import validate

    return validate(table)
