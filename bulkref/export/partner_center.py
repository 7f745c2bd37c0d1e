"""``bulkref export --layout partner-center``: the export in Partner Center's co-sell CSV layout.

For people who keep working in Partner Center's own file: the same headers
its page lists (bulkref.mapping.partner_center.LAYOUT_HEADERS, then ``Solution
N`` and ``Team member N`` for as many as a deal has, and one ``Microsoft team
member 1``), one deal a row, each written as that layout writes it: the deal
type as the two Yes/No questions, the help asked for and a closing reason as
their numbers, dates as M/D/YYYY, a solution as its id, a team member as
``first, last, phone, email``. Reading the file back (bulkref reads that
layout as it is) gives the same deals: with their ids filled, as updates.

What the Referrals API does not hold (Sales Stage, Microsoft's status and team,
customer account matching, IoT details, a solution's price) is left blank.
Every cell is written so that it cannot run as a formula.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import IO, Any

from bulkref.mapping.partner_center import HELP_CODES, LAYOUT_HEADERS, REASON_CODES
from bulkref.sheets.cells import csv_safe

__all__ = ["LAYOUT", "headers", "layout_row", "write_layout_csv"]

LAYOUT = "partner-center"
_HELP_NUMBER = {v: k for k, v in HELP_CODES.items()}
_REASON_NUMBER = {v.casefold(): k for k, v in REASON_CODES.items()}
# The API's marketplace intent -> the words of Partner Center's column.
_INTENT = {"HaveNotDecided": "Have not decided", "Yes": "Yes", "No": "No"}

# Partner Center's header -> the template column key whose value it shows as it is.
_PLAIN: dict[str, str] = {
    "Engagement ID": "engagement_id",
    "Referral ID": "referral_id",
    "Deal Name": "name",
    "Customer Name": "customer_name",
    "Customer Address Line 1": "address_line1",
    "Customer Address Line 2": "address_line2",
    "Customer City": "city",
    "Customer State": "state",
    "Customer Postal code": "postal_code",
    "Customer Country": "country",
    "Customer D-U-N-S ID": "customer_duns",
    "Customer Contact First Name": "contact.1.first_name",
    "Customer Contact Last Name": "contact.1.last_name",
    "Customer Contact Phone number": "contact.1.phone",
    "Customer Contact Email Address": "contact.1.email",
    "Partner Referral Status": "status",
    "Partner Referral Substatus": "substatus",
    "Currency": "currency",
    "CRM ID": "external_id",
    "Marketing Campaign ID": "campaign_id",
    "Notes": "notes",
    "Notes to Microsoft": "invite_notes",
    "PartnerID (formerly MPN ID)": "mpn_id",
}


def headers(counts: Mapping[str, int]) -> list[str]:
    """The layout's header row for deals with up to ``counts["solution"]`` solutions and
    ``counts["team"]`` team members (one of each at least, as the page's template has)."""
    return [
        *LAYOUT_HEADERS,
        *(f"Solution {n}" for n in range(1, max(counts.get("solution", 0), 1) + 1)),
        *(f"Team member {n}" for n in range(1, max(counts.get("team", 0), 1) + 1)),
        "Microsoft team member 1",
    ]


def layout_row(row: Mapping[str, Any], counts: Mapping[str, int]) -> dict[str, str]:
    """One deal (a template row, keyed by column key) as Partner Center's layout writes it."""
    out = {h: _text(row.get(key)) for h, key in _PLAIN.items()}
    help_code = row.get("help_needed")
    cosell = row.get("deal_type") == "Co-sell" or (row.get("deal_type") is None and help_code is not None)
    share = row.get("share_with_microsoft")
    out["Microsoft help required?"] = "Yes" if cosell else "No"
    out["What specific help from Microsoft?"] = _HELP_NUMBER.get(help_code or "", "") if cosell else ""
    out["Share with Microsoft sales team"] = "Yes" if cosell or share else "No"
    out["Consent to share Customer/Partner contact"] = _yes_no(row.get("consent_share_info"))
    out["Marketplace Purchase Intent"] = _INTENT.get(row.get("marketplace_intent") or "", "")
    out["Estimated Deal Value"] = _number(row.get("deal_value"))
    out["Estimated Close Date"] = _date(row.get("closing_date"))
    reason = row.get("status_reason")
    out["Declined/Lost/Error reason"] = _REASON_NUMBER.get(str(reason).casefold(), "") if reason else ""
    for n in range(1, counts.get("solution", 0) + 1):
        out[f"Solution {n}"] = _text(row.get(f"solution.{n}.id"))
    for n in range(1, counts.get("team", 0) + 1):
        person = [row.get(f"team.{n}.{f}") for f in ("first_name", "last_name", "phone", "email")]
        # Commas would shift the fields of the cell: a name with one loses it.
        out[f"Team member {n}"] = (
            ", ".join(_text(p).replace(",", " ") for p in person) if any(p for p in person) else ""
        )
    return out


def write_layout_csv(f: IO[str], rows: Iterable[Mapping[str, Any]], counts: Mapping[str, int]) -> int:
    """Write ``rows`` to ``f`` in the layout; returns the rows written."""
    names = headers(counts)
    w = csv.writer(f)  # the excel dialect, as Partner Center's own file
    w.writerow(names)
    written = 0
    for row in rows:
        cells = layout_row(row, counts)
        w.writerow([csv_safe(cells.get(h, "")) for h in names])
        written += 1
    return written


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _yes_no(value: Any) -> str:
    return "" if value is None else "Yes" if value else "No"


def _number(value: Any) -> str:
    if value is None:
        return ""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return f"{value.month}/{value.day}/{value.year}"  # M/D/YYYY, as Partner Center writes it
    return _text(value)
