"""Validation results as data: one Problem per finding, each with a stable code, rendered elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ProblemCode(StrEnum):
    """Every problem code a finding can carry: stable, for scripts (as pandera's
    ``SchemaErrorReason``). Each member is its code string and has a
    ``description``; the README's table of codes is checked against this list
    by a test, so neither can drift."""

    description: str

    def __new__(cls, value: str, description: str) -> ProblemCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    REQUIRED = (
        "required",
        "a required cell is blank (External Reference ID without a Referral ID; new rows: `*` columns)",
    )
    MISSING_COLUMNS = ("missing_columns", "required columns are not in the header row (one error naming all)")
    INVALID_CHOICE = ("invalid_choice", "the cell is not one of its column's allowed values")
    UNLISTED_CHOICE = (
        "unlisted_choice",
        "a Solution Area or Solution Play not in the fiscal year's table in force (warning: sent as written)",
    )
    NOT_YES_NO = ("not_yes_no", "the cell is not Yes or No (TRUE/FALSE, 1/0 also read)")
    NOT_A_NUMBER = ("not_a_number", "the cell is not a number")
    NOT_A_DATE = ("not_a_date", "the cell is not a date")
    INVALID_EMAIL = ("invalid_email", "the cell is not an email address")
    INVALID_PHONE = (
        "invalid_phone",
        "the cell cannot be a phone number: it has no digit (warning: kept as is)",
    )
    INVALID_COUNTRY = (
        "invalid_country",
        "the cell is not a country (two-letter ISO code, three-letter code or English name)",
    )
    INVALID_CURRENCY = ("invalid_currency", "the cell is not an ISO 4217 currency code")
    INVALID_DUNS = ("invalid_duns", "the cell is not a nine-digit DUNS number")
    NEGATIVE_VALUE = ("negative_value", "Deal Value below 0")
    DUPLICATE_EXTERNAL_ID = ("duplicate_external_id", "two rows claim one deal by External Reference ID")
    DUPLICATE_REFERRAL_ID = ("duplicate_referral_id", "two rows claim one referral by Referral ID")
    SUBSTATUS_MISMATCH = (
        "substatus_mismatch",
        "the substatus does not go with the status (see the status table)",
    )
    PRIVATE_SHARED_WITH_MICROSOFT = (
        "private_shared_with_microsoft",
        "a Private deal says Share With Microsoft Sellers",
    )
    NEEDS_SHARE_WITH_MICROSOFT = (
        "needs_share_with_microsoft",
        "a Partner-led or Co-sell deal does not share with Microsoft sellers",
    )
    COSELL_NEEDS_HELP = ("cosell_needs_help", "a Co-sell deal names no Help Needed")
    HELP_WITHOUT_COSELL = ("help_without_cosell", "Help Needed on a deal that is not Co-sell")
    REFERRAL_TYPE_MISMATCH = ("referral_type_mismatch", "Referral Type contradicts the deal type")
    SHARED_NEEDS_TARGET = ("shared_needs_target", "a Shared private deal names no target")
    SERVICES_COSELL_INCOMPLETE = (
        "services_cosell_incomplete",
        "Partner Role, Solution Area and Solution Play: some but not all filled",
    )
    SERVICES_COSELL_NOT_COSELL = (
        "services_cosell_not_cosell",
        "the Services co-sell trio on a deal that is not Co-sell",
    )
    SOLUTION_PLAY_MISMATCH = (
        "solution_play_mismatch",
        "the Solution Play is not listed under the Solution Area (warning: sent as written)",
    )
    NO_CUSTOMER_CONTACT = ("no_customer_contact", "a new referral names no customer contact")
    CONTACT_NEEDS_EMAIL_OR_PHONE = (
        "contact_needs_email_or_phone",
        "a customer contact has neither email nor phone",
    )
    TEAM_MEMBER_NEEDS_EMAIL = ("team_member_needs_email", "a team member has no email")
    SOLUTION_NEEDS_ID = ("solution_needs_id", "a solution has no id")
    INCOMPLETE_TARGET = ("incomplete_target", "a target has a type without an id, or an id without a type")
    DUPLICATE_COLUMN = ("duplicate_column", "two headers mean the same column")
    UNKNOWN_COLUMN = ("unknown_column", "a header that is not a bulkref column (warning: read, ignored)")
    UNNAMED_COLUMN = ("unnamed_column", "a column with values but no header (warning)")
    HIDDEN_ROWS = ("hidden_rows", "the sheet has hidden rows; they are read (warning)")
    ENCODING_CP1252 = ("encoding_cp1252", "the CSV is not UTF-8 and was read as Windows-1252 (warning)")
    NO_ROWS = ("no_rows", "the sheet has a header row but no data rows (warning)")
    FORMULA_NOT_CALCULATED = (
        "formula_not_calculated",
        "a formula cell without a saved value (written by a script, never opened in Excel)",
    )
    AMBIGUOUS_DATE = (
        "ambiguous_date",
        "a date column of text like 01/02/2027 that reads day-first and month-first alike",
    )
    FORMAT_ASSUMED = (
        "format_assumed",
        "a text column read as decimal-comma numbers or day-first (month-first) dates (warning)",
    )
    HEADER_ROW_BELOW = (
        "header_row_below",
        "the header row is not the first row; rows above it are skipped (warning)",
    )
    SHEET_CHOSEN = (
        "sheet_chosen",
        "the first sheet has no bulkref header row, so a later sheet was read (warning)",
    )
    OPEN_IN_EXCEL = (
        "open_in_excel",
        "Excel's lock file lies beside the input: the workbook is open (warning)",
    )
    UNMAPPED_VALUE = (
        "unmapped_value",
        "with --mapping: the cell's value is not in the entry's value map (and `other` is \"error\")",
    )
    BAD_SOURCE_DATE = (
        "bad_source_date",
        "with --mapping: the cell is not a date in the declared `date_format`",
    )
    BAD_SOURCE_NUMBER = (
        "bad_source_number",
        "with --mapping: the cell is not a number in the declared `decimal` / `thousands`",
    )
    PATTERN_MISMATCH = (
        "pattern_mismatch",
        "with --mapping: the cell does not match the entry's `pattern`",
    )
    NO_RULE_MATCHED = (
        "no_rule_matched",
        "with --mapping: the row's cells match none of the entry's `rules` (and there is no fallback)",
    )
    NO_AMOUNT_CURRENCY = (
        "no_amount_currency",
        "with --mapping: `from_amount` finds no currency code, or a sign (`$`) the entry does not map",
    )
    GROUP_CONFLICT = (
        "group_conflict",
        "with --mapping and `group_by`: the rows of one deal give a field different values",
    )


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding, in the user's terms: the sheet, the row number Excel shows,
    the header text as written in the sheet, a stable code, a plain message
    and the offending value as the cell showed it.

    A problem in an export read through a mapping file also names the export
    (``file``), the template field, the export's column(s) and the mapping
    line of the entry; ``column`` is then a label naming both sides
    (``Est. Close Date -> Closing Date``)."""

    sheet: str
    row: int | None
    column: str | None
    code: ProblemCode | str
    message: str
    value: str | None = None
    severity: Severity = Severity.ERROR
    file: str | None = None
    field: str | None = None
    source_column: str | None = None
    mapping_line: int | None = None

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "code": self.code,
            "message": self.message,
            "value": self.value,
        }
        # Only for mapped input, so the documented document is unchanged otherwise.
        for key, value in (
            ("file", self.file),
            ("field", self.field),
            ("sourceColumn", self.source_column),
            ("mappingLine", self.mapping_line),
        ):
            if value is not None:
                d[key] = value
        return d


@dataclass(frozen=True)
class Skipped:
    """A row of an export that a mapping's ``[[skip]]`` rule left out, and why."""

    row: int
    reason: str
    mapping_line: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason, "mappingLine": self.mapping_line}


@dataclass
class Report:
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    # Only for input read through a mapping file (None otherwise, and not in the JSON):
    skipped: list[Skipped] | None = None  # rows left out by [[skip]] rules
    groups: dict[int, list[int]] | None = None  # with group_by: a referral's first row -> its rows
    layout: str | None = None  # a layout bulkref recognised and read as it is ("partner-center")

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "valid": self.valid,
            "rows": self.rows,
            "errors": [p.as_json() for p in self.errors],
            "warnings": [p.as_json() for p in self.warnings],
        }
        if self.skipped is not None:
            d["skipped"] = [s.as_json() for s in self.skipped]
        if self.groups is not None:
            d["groups"] = [{"row": row, "rows": rows} for row, rows in self.groups.items()]
        if self.layout is not None:
            d["layout"] = self.layout
        return d
