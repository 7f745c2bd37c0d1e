"""Partner Center's own co-sell CSV (its bulk upload template, or its download), read as it is.

People who use Partner Center's bulk upload already hold files in its layout:
``Deal Name``, ``Customer Country``, ``Estimated Close Date`` as ``1/30/2027``,
``Microsoft help required?`` with the help asked for as a number, ``Solution 1``
as ``SOL-1234-PQRS, USD, 10, 100``, ``Team member 1`` as ``Bob, Partner,
999999, bob@contoso.com``, and so on (shared/docs/partner-center-csv.md restates
the column table of Partner Center's page). Such a sheet is recognised by its
headers and read through a mapping built here for the columns it has, so that
every convention of the layout is said once, in the mapping language the
rest of bulkref already runs and checks:

- ``CRM ID`` is the External Reference ID (how a re-run finds the deal again);
  ``Engagement ID`` and ``Referral ID`` name an existing deal, for updates;
- the two Yes/No questions give the deal type (help Yes: Co-sell, its help code
  the assistance request; help No and share Yes: Partner-led; both No: Private);
- the numeric help and reason codes become the API's words;
- the status pair Partner Center's page tells users to create with (New with
  substatus Accepted, which the API's table does not allow) is read as New /
  Pending for a new deal (Partner Center accepts the partner's own referral
  when it is created) and as Active / Accepted for an existing one;
- ``Consent to share Customer/Partner contact`` of No leaves the row out, as
  Partner Center creates or updates no deal without it;
- read-only and account-matching columns are ignored, with one note naming them.

The page's 1,000-record upload limit is Partner Center's UI's, not the API's:
none is kept here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from bulkref.mapping.file import Mapping, parse_mapping
from bulkref.problems import Problem, ProblemCode, Severity
from bulkref.sheets.reader import Sheet
from bulkref.spec.enums import fold

__all__ = [
    "HELP_CODES",
    "LAYOUT_HEADERS",
    "LAYOUT_NAME",
    "REASON_CODES",
    "is_partner_center",
    "layout_mapping",
]

_Has = Callable[[str], "str | None"]  # a header of the sheet by its folded text
_Entry = Callable[..., None]  # layout_mapping's entry(field, body, *columns)

#: How messages name the layout, where a mapping file's name would stand.
LAYOUT_NAME = "Partner Center's co-sell layout"

# "What specific help from Microsoft?": the page's numbers -> assistanceRequestCode.
HELP_CODES: dict[str, str] = {
    "1": "WorkloadSpecificValueProposition",
    "2": "CustomerTechnicalArchitecture",
    "3": "ProofOfConceptOrDemo",
    "4": "QuotesOrLicensing",
    "5": "PostSalesCustomerSuccess",
    "6": "GeneralOrOther",
}

# "Declined/Lost/Error reason": the page's numbers, for a deal declined or lost, and for one
# closed as an error. The API keeps a reason as text (statusReason): the words go there.
REASON_CODES: dict[str, str] = {
    "1": "Budget not adequate",
    "2": "Customer did not respond",
    "3": "Customer chose another vendor",
    "4": "Requirement not met",
    "5": "Not a customer",
    "6": "Timeline too short",
    "7": "Abuse, spam or phishing",
    "8": "Others",
}
ERROR_REASON_CODES: dict[str, str] = {
    "1": "Duplicate through bulk upload",
    "2": "Duplicate in Partner Center",
    "3": "Duplicate sent by Microsoft",
    "4": "Connector sync issue",
    "5": "Customer matching issue",
    "6": "Solution issue",
    "7": "Test referral",
    "8": "Data error",
    "9": "Others",
}

# Single columns read as they are: Partner Center's header -> the template field.
_PLAIN: dict[str, str] = {
    "Engagement ID": "Engagement ID",
    "Referral ID": "Referral ID",
    "CRM ID": "External Reference ID",
    "Deal Name": "Referral Name",
    "Customer Name": "Customer Name",
    "Customer Address Line 1": "Address Line 1",
    "Customer Address Line 2": "Address Line 2",
    "Customer City": "City",
    "Customer State": "State",
    "Customer Postal code": "Postal Code",
    "Customer Country": "Country",
    "Customer D-U-N-S ID": "Customer DUNS",
    "Customer Contact First Name": "Customer Contact 1 First Name",
    "Customer Contact Last Name": "Customer Contact 1 Last Name",
    "Customer Contact Phone number": "Customer Contact 1 Phone",
    "Customer Contact Email Address": "Customer Contact 1 Email",
    "Estimated Deal Value": "Deal Value",
    "Currency": "Currency",
    "Marketing Campaign ID": "Campaign ID",
    "Notes": "Notes",
    "Notes to Microsoft": "Invite Notes",
    "PartnerID (formerly MPN ID)": "MPN ID",
    "Marketplace Purchase Intent": "Marketplace Purchase Intent",
}
STATUS, SUBSTATUS = "Partner Referral Status", "Partner Referral Substatus"
REASON = "Declined/Lost/Error reason"
CLOSE_DATE = "Estimated Close Date"
HELP, HELP_CODE = "Microsoft help required?", "What specific help from Microsoft?"
SHARE = "Share with Microsoft sales team"
CONSENT = "Consent to share Customer/Partner contact"

#: The layout's columns other than the numbered ones, in the order of Partner Center's page
#: (``bulkref export --layout partner-center`` writes these, then the numbered columns).
LAYOUT_HEADERS: tuple[str, ...] = (
    "Errors",
    "Engagement ID",
    "Referral ID",
    "Deal Name",
    "Customer Name",
    "Customer Address Line 1",
    "Customer Address Line 2",
    "Customer City",
    "Customer State",
    "Customer Postal code",
    "Customer Country",
    "Customer D-U-N-S ID",
    "Customer Contact First Name",
    "Customer Contact Last Name",
    "Customer Contact Phone number",
    "Customer Contact Email Address",
    STATUS,
    SUBSTATUS,
    "Microsoft Referral Status",
    REASON,
    "Sales Stage",
    "Estimated Deal Value",
    "Currency",
    CLOSE_DATE,
    "CRM ID",
    "Marketing Campaign ID",
    "Notes",
    HELP,
    HELP_CODE,
    SHARE,
    "Notes to Microsoft",
    CONSENT,
    "CLA Number",
    "Device Category",
    "Silicon Type",
    "Azure Certified Device",
    "Attach Services",
    "Microsoft MSX ID",
    "Migrated PSC Deal ID",
    "PartnerID (formerly MPN ID)",
    "Marketplace Purchase Intent",
    "Customer Domain Name",
    "Final Matched Customer Account",
    "Managed Account 1",
    "Managed Account 2",
    "Unmanaged Account 1",
    "Unmanaged Account 2",
    "DUNS Account",
)

# Headers no other sheet has: four of them make a sheet Partner Center's layout. (Customer
# Name, Currency, Notes are the template's too, and say nothing.)
_TELLING = frozenset(
    fold(h)
    for h in (
        "Deal Name",
        HELP,
        HELP_CODE,
        SHARE,
        CONSENT,
        STATUS,
        SUBSTATUS,
        "Estimated Deal Value",
        CLOSE_DATE,
        "CRM ID",
        "Customer Country",
        "Customer City",
        "Customer Address Line 1",
        "Team member 1",
        "Solution 1",
    )
)
_ENOUGH = 4
_NUMBERED = re.compile(r"^(solution|team member|microsoft team member)\s*(\d+)$", re.IGNORECASE)

# One cell of a numbered column: fields separated by commas, the later ones optional, any
# of them blank ("Bob, Partner, , bob@contoso.com" keeps the email fourth).
_TEAM_CELL = (
    r"\s*(?P<first>[^,]*),\s*(?P<last>[^,]*)(?:,\s*(?P<phone>[^,]*)(?:,\s*(?P<email>[^,]*))?)?\s*,?\s*"
)
_SOLUTION_CELL = r"\s*(?P<id>[^,]*?)\s*(?:,.*)?"


def is_partner_center(headers: Sequence[str]) -> bool:
    """True for a header row in Partner Center's co-sell layout (English headers)."""
    folded = {fold(h) for h in headers if h}
    return len(folded & _TELLING) >= _ENOUGH


def layout_mapping(sheet: Sheet) -> tuple[Mapping, list[Problem]]:
    """The mapping that reads ``sheet`` (in Partner Center's layout) as referrals, built
    for the columns it has, and the note naming the columns it leaves out."""
    present = {fold(h): h for h in sheet.headers if h}
    has = present.get
    lines = ["[fields]"]
    used: set[str] = set()

    def entry(field: str, body: str, *columns: str) -> None:
        lines.append(f"{_q(field)} = {body}")
        used.update(fold(c) for c in columns)

    for theirs, ours in _PLAIN.items():
        if (header := has(fold(theirs))) is not None:
            entry(ours, _q(header), header)
    if (header := has(fold(CLOSE_DATE))) is not None:
        # Partner Center writes M/D/YYYY, taken as UTC (a date is sent as midnight UTC anyway).
        entry("Closing Date", f'{{ column = {_q(header)}, date_format = "%m/%d/%Y" }}', header)
    _status_entries(has, entry)
    _deal_type_entries(has, entry)
    if (header := has(fold(CONSENT))) is not None:
        entry("Consent To Share Info With Others", _q(header), header)
    numbered = _numbered(sheet.headers)
    if numbered.get("solution"):
        cols = numbered["solution"]
        entry(
            "Solution {n} ID",
            f'{{ columns = {_list(cols)}, pattern = {_q(_SOLUTION_CELL)}, part = "id" }}',
            *cols,
        )
    if numbered.get("team member"):
        cols = numbered["team member"]
        for part, field in (
            ("first", "First Name"),
            ("last", "Last Name"),
            ("phone", "Phone"),
            ("email", "Email"),
        ):
            entry(
                f"Team Member {{n}} {field}",
                f"{{ columns = {_list(cols)}, pattern = {_q(_TEAM_CELL)}, part = {_q(part)} }}",
                *cols,
            )
    if (header := has(fold(CONSENT))) is not None:
        lines += [
            "",
            "[[skip]]",
            f"column = {_q(header)}",
            "pattern = '(?i)^\\s*no\\s*$'",
            _q_kv(
                "reason",
                f"{header} is No: Partner Center creates or updates no deal without the customer's consent",
            ),
        ]
    mapping = parse_mapping("\n".join(lines) + "\n", Path(LAYOUT_NAME))
    mapping = dataclasses.replace(mapping, layout="partner-center")
    ignored = [h for h in sheet.headers if h and fold(h) not in used and fold(h) != fold("Errors")]
    return mapping, _ignored_note(sheet, ignored)


def _status_entries(has: _Has, entry: _Entry) -> None:
    status, substatus = has(fold(STATUS)), has(fold(SUBSTATUS))
    if status is None:
        return
    referral = has(fold("Referral ID"))
    sub = substatus
    columns = [c for c in (referral, status, sub) if c is not None]

    def rule(new_deal: bool | None, st: str, ss: str, value: str) -> list[str]:
        out = []
        if referral is not None:
            out.append("" if new_deal else "?*" if new_deal is False else "*")
        out.append(st)
        if sub is not None:
            out.append(ss)
        return [*out, value]

    if sub is None:
        rules = [*(rule(None, s, "", v) for s, v in _STATUS_WORDS.items()), rule(None, "", "", "")]
        entry("Status", f"{{ columns = {_list(columns)}, rules = {json.dumps(rules)} }}", *columns)
        return
    status_rules = [
        # The pair Partner Center's page says to create with: the API's New/Pending for a new
        # deal (accepted on creation by Partner Center), Active/Accepted for an existing one.
        rule(True, "new", "accepted", "New"),
        rule(False, "new", "accepted", "Active"),
        *(rule(None, s, "*", v) for s, v in _STATUS_WORDS.items()),
        rule(None, "", "*", ""),  # blank: a new deal is New, an existing one keeps its status
    ]
    substatus_rules = [
        rule(True, "new", "accepted", "Pending"),
        rule(None, "*", "error", "Declined"),
        rule(None, "error", "*", "Declined"),
        *(rule(None, "*", s, v) for s, v in _SUBSTATUS_WORDS.items()),
        *(rule(None, s, "", v) for s, v in _CLOSED_BY_STATUS.items()),
        rule(None, "*", "", ""),
    ]
    entry("Status", f"{{ columns = {_list(columns)}, rules = {json.dumps(status_rules)} }}", *columns)
    entry("Substatus", f"{{ columns = {_list(columns)}, rules = {json.dumps(substatus_rules)} }}", *columns)
    if (reason := has(fold(REASON))) is not None:
        reason_columns = [status, sub, reason]
        reason_rules = [["*", "*", "", ""]]
        reason_rules += [[s, "*", k, v] for s in ("error",) for k, v in ERROR_REASON_CODES.items()]
        reason_rules += [["*", "error", k, v] for k, v in ERROR_REASON_CODES.items()]
        reason_rules += [["*", "*", k, v] for k, v in REASON_CODES.items()]
        entry(
            "Status Reason",
            f"{{ columns = {_list(reason_columns)}, rules = {json.dumps(reason_rules)} }}",
            reason,
        )


# Partner Center's words for a status -> the API's; its closed statuses are the API's substatuses.
_STATUS_WORDS = {
    "new": "New",
    "active": "Active",
    "closed": "Closed",
    "won": "Closed",
    "lost": "Closed",
    "declined": "Closed",
    "expired": "Closed",
    "error": "Closed",
}
_SUBSTATUS_WORDS = {
    "pending": "Pending",
    "received": "Received",
    "accepted": "Accepted",
    "won": "Won",
    "lost": "Lost",
    "declined": "Declined",
    "expired": "Expired",
}
_CLOSED_BY_STATUS = {"won": "Won", "lost": "Lost", "declined": "Declined", "expired": "Expired"}


def _deal_type_entries(has: _Has, entry: _Entry) -> None:
    help_, share, code = has(fold(HELP)), has(fold(SHARE)), has(fold(HELP_CODE))
    if help_ is None:
        return
    if share is not None:
        rules = [["yes", "*", "Co-sell"], ["no", "yes", "Partner-led"], ["no", "no", "Private"]]
        entry(
            "Deal Type", f"{{ columns = {_list([help_, share])}, rules = {json.dumps(rules)} }}", help_, share
        )
    else:
        rules = [["yes", "Co-sell"], ["no", "Partner-led"]]
        entry("Deal Type", f"{{ columns = {_list([help_])}, rules = {json.dumps(rules)} }}", help_)
    if code is not None:
        # The code counts only when help is asked for: a leftover number on a No row is not sent.
        code_rules = [["yes", k, v] for k, v in HELP_CODES.items()]
        code_rules += [["yes", "", ""], ["no", "*", ""], ["", "*", ""]]
        entry(
            "Help Needed",
            f"{{ columns = {_list([help_, code])}, rules = {json.dumps(code_rules)} }}",
            code,
        )


def _numbered(headers: Iterable[str]) -> dict[str, list[str]]:
    """``Solution N`` and ``Team member N`` columns, in their numbers' order."""
    found: dict[str, list[tuple[int, str]]] = {}
    for h in headers:
        m = _NUMBERED.match(h.strip()) if h else None
        if m and m.group(1).lower() != "microsoft team member":
            found.setdefault(m.group(1).lower(), []).append((int(m.group(2)), h))
    return {k: [h for _, h in sorted(v)] for k, v in found.items()}


def _ignored_note(sheet: Sheet, ignored: list[str]) -> list[Problem]:
    if not ignored:
        return []
    shown = ", ".join(f"'{h}'" for h in _collapsed(ignored))
    return [
        Problem(
            sheet.name,
            sheet.header_row,
            None,
            ProblemCode.UNKNOWN_COLUMN,
            f"Read as {LAYOUT_NAME}; these columns are not read: {shown}. They are Partner "
            "Center's own (read-only, customer account matching, IoT details, Microsoft's "
            "team) or have no place in the Referrals API (a solution's currency, price and "
            "quantity after its id).",
            severity=Severity.WARNING,
            file=str(sheet.source),
        )
    ]


def _collapsed(headers: list[str]) -> list[str]:
    """Numbered columns said once: 'Microsoft team member 1-50'."""
    out: list[str] = []
    runs: dict[str, list[int]] = {}
    for h in headers:
        m = re.match(r"^(.*?)\s*(\d+)$", h)
        if m and m.group(1):
            if m.group(1) not in runs:
                out.append(m.group(1))
            runs.setdefault(m.group(1), []).append(int(m.group(2)))
        else:
            out.append(h)
    return [
        f"{h} {min(runs[h])}-{max(runs[h])}"
        if h in runs and len(runs[h]) > 1
        else f"{h} {runs[h][0]}"
        if h in runs
        else h
        for h in out
    ]


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _q_kv(key: str, text: str) -> str:
    return f"{key} = {_q(text)}"


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_q(x) for x in items) + "]"
