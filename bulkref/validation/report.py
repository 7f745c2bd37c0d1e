"""Validation reports as a person reads them on a terminal."""

from __future__ import annotations

from itertools import groupby

from bulkref.problems import Problem, Report, Severity


def _line(p: Problem) -> str:
    # A finding about the whole file (its encoding, the sheet chosen) has no
    # row or column: the message alone says it.
    where = ", ".join(part for part in (f"row {p.row}" if p.row is not None else "", p.column or "") if part)
    tag = "error" if p.severity is Severity.ERROR else "warning"
    return f"  {tag}: {where + ': ' if where else ''}{p.message} [{p.code}]"


def validation_text(report: Report, source: str, sheet: str | None = None) -> str:
    """One block per row, sheet-level problems first, then a summary line."""
    where = f"{source} (sheet {sheet})" if sheet else source
    lines = [f"{where}: {report.rows} row{'s' if report.rows != 1 else ''}"]
    if report.groups:
        read = report.rows + sum(len(rows) - 1 for rows in report.groups.values())
        lines[0] += f" (referrals, from {read} rows of the export: group_by)"
    if report.skipped:
        n = len(report.skipped)
        why = " ([[skip]] in the mapping)" if report.layout is None else ""
        lines.append(f"  skipped {n} row{'s' if n != 1 else ''}{why}:")
        # A footer's rows share one reason: said once, for the run of rows.
        for _reason, run in groupby(report.skipped, key=lambda s: (s.reason, s.mapping_line)):
            rows = [s.row for s in run]
            where = f"row {rows[0]}" if len(rows) == 1 else f"rows {rows[0]}-{rows[-1]}"
            line = f" (line {_reason[1]})" if _reason[1] is not None else ""
            lines.append(f"    {where}: {_reason[0]}{line}")
    ordered = sorted(report.problems, key=lambda p: (p.row is not None, p.row or 0))
    for _row, problems in groupby(ordered, key=lambda p: p.row):
        lines.extend(_line(p) for p in problems)
    errors, warnings = len(report.errors), len(report.warnings)
    bad_rows = len({p.row for p in report.errors if p.row is not None})
    if errors:
        lines.append(
            f"INVALID: {errors} error{'s' if errors != 1 else ''} in {bad_rows} of "
            f"{report.rows} rows, {warnings} warning{'s' if warnings != 1 else ''}. "
            "Nothing was sent; fix the cells above and validate again."
        )
    else:
        lines.append(
            f"VALID: {report.rows} row{'s' if report.rows != 1 else ''} ready, "
            f"{warnings} warning{'s' if warnings != 1 else ''}."
        )
    return "\n".join(lines)
