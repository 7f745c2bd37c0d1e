"""What the pages say where the library's messages speak to a terminal.

The library's messages are written for ``bulkref validate``: some end with
command-line advice (``pass --locale de-DE``, ``bulkref map suggest``) that a
person on the Check page cannot follow. The page says what to do there instead:
fix the cell in the page, or state the export's formats on the mapping page.
The rest of each message, what is wrong and where, is the library's, unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Advice clauses for a terminal, each with what the page says instead ("" drops it).
_ADVICE: tuple[tuple[re.Pattern[str], str], ...] = (
    # not_a_number / not_a_date: "...; for numbers written 1.234,50 pass --locale de-DE (or your locale)."
    (re.compile(r";\s*for (?:numbers|dates) written .*?pass --locale.*$"), "."),
    # unlisted_choice: "... (a newer table: see bulkref taxonomy)"
    (re.compile(r"\(a newer table: see bulkref taxonomy\)"), "(perhaps of a newer fiscal year's table)"),
    # format_assumed: "...: check the values, or pass --locale (de-DE, en-US, ...) to say how ..."
    (
        re.compile(r",? or pass --locale \([^)]*\) to say how the file writes numbers and dates\.?"),
        ", or state the file's date and number formats on the mapping page (Map columns).",
    ),
    # ambiguous_date: "...: pass --locale de-DE (day first) or --locale en-US (month first), write it as
    # YYYY-MM-DD, or read the file through a mapping from `bulkref map suggest`."
    (
        re.compile(
            r"pass --locale [^,]*\([^)]*\) or --locale [^,]*\([^)]*\), (write it as YYYY-MM-DD), or read the "
            r"file through a mapping from `bulkref map suggest`\.?"
        ),
        r"\1, or state the date format on the mapping page (Map columns).",
    ),
)
# Whatever advice is left that names a flag or a command: the clause goes, the sentence ends.
_FLAG_CLAUSE = re.compile(
    r"(?:[;,:]\s*(?:or\s+)?|\s+or\s+)[^;,:.]*"
    r"(?:--[a-z][\w-]*|`bulkref [^`]*`|\bbulkref [a-z]+ [A-Z-]+)[^.]*\.?"
)


def page_message(message: str) -> str:
    """``message`` as a page says it: no flag or command to type."""
    for pattern, instead in _ADVICE:
        message = pattern.sub(instead, message)
    message = _FLAG_CLAUSE.sub(".", message)
    return re.sub(r"\.\.+$", ".", message)


@dataclass(frozen=True)
class SheetNote:
    """One line of the sheet-level box: several problems of one kind said once."""

    severity: str
    code: str
    message: str


def sheet_notes(problems: list[Any], mapped: bool) -> list[SheetNote]:
    """The sheet's own problems, errors first, as the top of the Check page shows
    them: the headers that are not bulkref columns in one line instead of one each."""
    notes: list[SheetNote] = []
    unknown: list[str] = []
    for p in problems:
        if str(p.code) == "unknown_column" and p.column:
            unknown.append(str(p.column))
            continue
        where = f"{p.column}: " if p.column and str(p.code) != "missing_columns" else ""
        notes.append(SheetNote(str(p.severity), str(p.code), where + page_message(p.message)))
    if unknown:
        listed = ", ".join(unknown[:12]) + (f" and {len(unknown) - 12} more" if len(unknown) > 12 else "")
        what = "header is not a bulkref column" if len(unknown) == 1 else "headers are not bulkref columns"
        hint = "" if mapped else ": map them to bulkref's fields on the mapping page (Map columns)"
        notes.append(
            SheetNote(
                "warning", "unknown_column", f"{len(unknown)} {what} and will be ignored ({listed}){hint}."
            )
        )
    return sorted(notes, key=lambda n: n.severity != "error")


# The suggestion's TODOs speak of its TOML ('replace every "?", then remove the #'):
# the mapping page has drop-downs marked "choose…" instead.
_TODO = (
    (
        re.compile(r'\s*\(replace every "\?"\),? then remove the #'),
        ': pick a value for each one marked "choose…"',
    ),
    (
        re.compile(r'replace each "\?" with the two-letter code, then remove the #'),
        "type each one's two-letter code",
    ),
    (re.compile(r",? then remove the #"), ""),
)


def page_todo(text: str) -> str:
    """A suggestion's open question as the mapping page says it."""
    for pattern, instead in _TODO:
        text = pattern.sub(instead, text)
    return page_message(text)
