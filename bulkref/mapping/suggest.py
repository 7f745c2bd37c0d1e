"""``bulkref map suggest``: a starter mapping file from an export's headers.

Each header is matched to a template field: the spec's own tolerant matching
first (``SPEC.resolve``), then a table of what common CRMs (Dynamics 365,
Salesforce, HubSpot) call the same thing, then a close spelling. The export's
cells decide the details: a date format or number format that reads every
sample, a currency value map from currency names, a delimited column of
emails as numbered contacts. A list field whose values are not on its list
(a CRM's stages for Status) is written as a commented entry with a value map
to fill in; every column left unmapped is listed as a comment, with samples,
so the reviewer sees what is not imported.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bulkref.mapping.file import NumberFormat
from bulkref.sheets.reader import Sheet, read_sheet
from bulkref.sheets.values import EMAIL, as_text, parse_number
from bulkref.spec.columns import SPEC, Column, Kind, Need
from bulkref.spec.enums import load as load_enums

__all__ = ["Suggestion", "suggest_mapping"]

SAMPLES = 3  # sample values shown per column
FULL_NAME = "full_name"  # a synonym target: one column that is a contact's whole name
FUZZY_CUTOFF = 0.86

# What CRMs call a template field, as _norm() writes it (letters and digits only).
SYNONYMS: dict[str, str] = {
    **dict.fromkeys(
        [
            "donotmodifyopportunity",
            "opportunityid",
            "recordid",
            "dealid",
            "opportunityguid",
            "crmid",
            "opportunitynumber",
            "id",
        ],
        "external_id",
    ),
    **dict.fromkeys(["topic", "opportunityname", "dealname", "opportunity", "deal", "subject"], "name"),
    **dict.fromkeys(
        [
            "account",
            "accountname",
            "company",
            "companyname",
            "potentialcustomer",
            "associatedcompany",
            "customer",
            "organization",
            "organisation",
        ],
        "customer_name",
    ),
    **dict.fromkeys(
        ["accountnumber", "accountid", "companyid", "associatedcompanyid"], "customer_external_id"
    ),
    **dict.fromkeys(
        [
            "estrevenue",
            "estimatedrevenue",
            "amount",
            "dealamount",
            "value",
            "revenue",
            "estimatedvalue",
            "opportunityamount",
            "dealvalue",
        ],
        "deal_value",
    ),
    **dict.fromkeys(
        [
            "estclosedate",
            "estimatedclosedate",
            "closedate",
            "expectedclosedate",
            "closingdate",
            "dealclosedate",
        ],
        "closing_date",
    ),
    **dict.fromkeys(
        [
            "currency",
            "currencycode",
            "opportunitycurrency",
            "currencyisocode",
            "dealcurrencycode",
            "transactioncurrency",
        ],
        "currency",
    ),
    **dict.fromkeys(
        [
            "billingcountry",
            "country",
            "countryregion",
            "address1countryregion",
            "billingcountrycode",
            "companycountry",
            "companycountryregion",
            "mailingcountry",
        ],
        "country",
    ),
    **dict.fromkeys(["billingcity", "address1city", "companycity", "mailingcity"], "city"),
    **dict.fromkeys(
        [
            "billingstate",
            "billingstateprovince",
            "stateprovince",
            "address1stateprovince",
            "companystate",
            "companystateregion",
            "mailingstate",
        ],
        "state",
    ),
    **dict.fromkeys(
        [
            "billingzip",
            "billingpostalcode",
            "billingzippostalcode",
            "zippostalcode",
            "address1zippostalcode",
            "companypostalcode",
            "companyzip",
            "mailingzip",
        ],
        "postal_code",
    ),
    **dict.fromkeys(
        [
            "billingstreet",
            "street",
            "street1",
            "address1street1",
            "address",
            "companystreetaddress",
            "streetaddress",
            "mailingstreet",
        ],
        "address_line1",
    ),
    **dict.fromkeys(["street2", "address1street2", "companystreetaddress2"], "address_line2"),
    **dict.fromkeys(["description", "dealdescription", "opportunitydescription", "details"], "notes"),
    **dict.fromkeys(
        ["stage", "dealstage", "salesstage", "opportunitystage", "pipelinestage", "stagename"], "status"
    ),
    **dict.fromkeys(["industry", "industries", "vertical"], "industries"),
    **dict.fromkeys(["product", "products", "productinterest", "productname"], "products"),
    **dict.fromkeys(["campaign", "primarycampaignsource", "sourcecampaign", "campaignname"], "campaign_id"),
    **dict.fromkeys(["contactfullname", "contactname", "primarycontact", "contact", "fullname"], FULL_NAME),
    **dict.fromkeys(
        [
            "contactemail",
            "email",
            "primarycontactemail",
            "associatedcontact",
            "associatedcontactemail",
            "contactemails",
        ],
        "contact.1.email",
    ),
    **dict.fromkeys(
        ["contactphone", "phone", "businessphone", "primarycontactphone", "mobilephone"], "contact.1.phone"
    ),
    **dict.fromkeys(["contactfirstname", "firstname"], "contact.1.first_name"),
    **dict.fromkeys(["contactlastname", "lastname"], "contact.1.last_name"),
    **dict.fromkeys(["contacttitle", "jobtitle", "title"], "contact.1.title"),
}

DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%Y/%m/%d",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%dT%H:%M:%S%z",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%d.%m.%Y %H:%M",
)
NUMBER_FORMATS = (
    NumberFormat(".", ","),
    NumberFormat(",", "."),
    NumberFormat(",", " "),
    NumberFormat(".", "'"),
    NumberFormat(".", ""),
    NumberFormat(",", ""),
)


@dataclass
class _Entry:
    position: int  # the export column's position: the first claim on a field wins
    key: str  # the spec key (item 1's for numbered entries)
    score: int  # how sure the match is: 3 spec name, 2 CRM synonym, 1 close spelling
    text: str  # the TOML entry
    comments: list[str] = field(default_factory=list)  # lines above it
    commented: bool = False  # written as a comment: needs the reviewer to finish it


@dataclass
class Suggestion:
    """A starter mapping for one export, and what it left out."""

    source: Path
    sheet: str
    workbook: bool
    entries: list[_Entry]
    unmapped: list[tuple[str, list[str]]]  # header, samples
    date_format: str | None = None
    number: NumberFormat | None = None

    @property
    def mapped(self) -> list[str]:
        """The template fields the suggestion fills (uncommented entries)."""
        return [SPEC.column(e.key).header for e in self.entries if not e.commented]

    def toml(self) -> str:
        lines = [
            f"# Starter mapping for {self.source.name}, suggested by `bulkref map suggest`.",
            "# Review every entry: the value maps above all. Check it with",
            f"#   bulkref validate {self.source.name} --mapping THIS_FILE",
            "",
            "[source]",
        ]
        if self.workbook:
            lines.append(f"sheet = {_q(self.sheet)}")
        if self.date_format:
            lines.append(
                f"date_format = {_q(self.date_format)}   # the export's dates, e.g. "
                f"{dt.date(2026, 12, 31).strftime(self.date_format)}"
            )
        if self.number and self.number != NumberFormat():
            lines.append(f"decimal = {_q(self.number.decimal)}   # numbers like {self.number.example}")
            lines.append(f"thousands = {_q(self.number.thousands)}")
        lines += ["", "[fields]"]
        order = {c.key: i for i, c in enumerate(SPEC.columns({"contact": 9}))}
        for e in sorted(self.entries, key=lambda e: (order.get(e.key, 999), e.position)):
            lines += [f"# {c}" for c in e.comments]
            lines.append(f"# {e.text}" if e.commented else e.text)
        missing = _missing_required(self.entries)
        if missing:
            lines += [
                "",
                "# Required for new referrals, not found in the export: fill from a column or a constant.",
            ]
            lines += [f"# {line}" for line in missing]
        if self.unmapped:
            lines += ["", "# Columns of the export not mapped (map them above, or leave them out):"]
            width = max(len(_q(h)) for h, _ in self.unmapped)
            for header, samples in self.unmapped:
                shown = ", ".join(_q(s) for s in samples)
                lines.append(f"#   {_q(header):<{width}}  {'e.g. ' + shown if shown else '(empty)'}")
        return "\n".join(lines) + "\n"


def suggest_mapping(path: Path | str, sheet: str | None = None) -> Suggestion:
    """A starter mapping for the export at ``path``: render it with ``.toml()``."""
    raw = read_sheet(path, sheet)
    workbook = raw.name != raw.source.name
    columns = [(i, h) for i, h in enumerate(raw.headers) if h]
    date_format = _common_date_format(raw, columns)
    number = _common_number_format(raw, columns)
    claims: dict[str, _Entry] = {}
    rejected: list[_Entry] = []
    for position, header in columns:
        entry = _entry(raw, position, header, date_format, number)
        if entry is None:
            continue
        held = claims.get(entry.key)
        if held is None or (entry.score, -entry.position) > (held.score, -held.position):
            if held is not None:
                rejected.append(held)
            claims[entry.key] = entry
        else:
            rejected.append(entry)
    entries = list(claims.values())
    # A full name fills two fields: its entry claims both keys.
    used = {e.position for e in entries}
    unmapped = [(h, _samples(raw, i)) for i, h in columns if i not in used]
    return Suggestion(
        raw.source,
        raw.name,
        workbook,
        entries,
        unmapped,
        date_format if _any_kind(entries, Kind.DATE) else None,
        number if _any_kind(entries, Kind.DECIMAL) else None,
    )


# --------------------------------------------------------------------------- matching


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def _variants(header: str) -> list[str]:
    """The header, without parenthesised notes ("Amount (converted)"), and after a
    Salesforce-style "Object: " prefix ("Contact: Email" -> "Email")."""
    out = [header]
    bare = re.sub(r"\([^)]*\)", "", header).strip()
    if bare and bare != header:
        out.append(bare)
    if ":" in header:
        out.append(header.rsplit(":", 1)[1].strip())
    return out


def _match(header: str) -> tuple[str, int] | None:
    """The spec key (or FULL_NAME) a header means, and how sure: 3, 2 or 1."""
    column = SPEC.resolve(header)
    if column is not None and not column.read_only:
        return column.key, 3
    whole = _norm(header)
    if whole in SYNONYMS:
        return SYNONYMS[whole], 2
    for variant in _variants(header)[1:]:
        column = SPEC.resolve(variant)
        if column is not None and not column.read_only:
            return column.key, 2
        if _norm(variant) in SYNONYMS and _norm(header) not in _CAUTIOUS:
            return SYNONYMS[_norm(variant)], 2
    names = _fuzzy_names()
    close = difflib.get_close_matches(whole, list(names), n=1, cutoff=FUZZY_CUTOFF)
    return (names[close[0]], 1) if close else None


# "(Do Not Modify) Modified On" is not a date to import, whatever its last word says.
_CAUTIOUS = frozenset({"donotmodifyrowchecksum", "donotmodifymodifiedon"})


@cache
def _fuzzy_names() -> dict[str, str]:
    names = {_norm(n): c.key for c in SPEC.columns() if not c.read_only for n in (c.header, *c.aliases)}
    names.update(SYNONYMS)
    return names


def _entry(
    raw: Sheet, position: int, header: str, date_format: str | None, number: NumberFormat | None
) -> _Entry | None:
    found = _match(header)
    if found is None:
        return None
    key, score = found
    cells = [c for c in raw.cells(position) if c is not None]
    samples = _samples(raw, position)
    if key == FULL_NAME:
        return _full_name(position, header, score)
    column = SPEC.column(key)
    if column.read_only or (column.need is Need.OPTIONAL and column.group is None and not cells):
        return None
    q = _q(header)
    entry = _Entry(position, key, score, f"{_q(column.header)} = {q}")
    if column.group is not None:
        return _group_entry(entry, column, header, cells)
    if column.kind is Kind.CHOICE:
        return _choice_entry(entry, column, header, cells, samples)
    if column.kind is Kind.CURRENCY:
        return _currency_entry(entry, column, header, cells)
    if column.kind is Kind.COUNTRY:
        return _country_entry(entry, column, header, cells)
    if column.kind is Kind.DATE:
        entry.comments.append(f"{header}: {', '.join(samples)}")
        if not all(isinstance(c, dt.date) for c in cells) and date_format is None:
            entry.comments.append('no date format reads all of these: add date_format = "..." (strftime)')
    if column.kind is Kind.DECIMAL and number is None and cells:
        entry.comments.append(f"{header}: {', '.join(samples)}: add decimal and thousands for this format")
    return entry


def _full_name(position: int, header: str, score: int) -> _Entry:
    q = _q(header)
    text = (
        f'"Customer Contact 1 First Name" = {{ column = {q}, split = " ", part = "first" }}\n'
        f'"Customer Contact 1 Last Name" = {{ column = {q}, split = " ", part = "rest" }}'
    )
    return _Entry(
        position,
        "contact.1.first_name",
        score,
        text,
        comments=[f"{header} is a whole name: first word -> first name, the rest -> last name"],
    )


def _group_entry(entry: _Entry, column: Column, header: str, cells: list[Any]) -> _Entry:
    """A contact column; one holding several emails or phones, delimited, fills numbered contacts."""
    texts = [as_text(c) for c in cells]
    delimiter = next((d for d in (";", ",", "|") if any(d in t for t in texts)), None)
    if delimiter is not None and column.kind in (Kind.EMAIL, Kind.PHONE):
        numbered = column.header.replace(" 1 ", " {n} ")
        entry.text = f"{_q(numbered)} = {{ column = {_q(header)}, delimiter = {_q(delimiter)} }}"
        entry.comments.append(
            f"{header} holds several, separated by {delimiter!r}: one Customer Contact each"
        )
    if column.kind is Kind.EMAIL and texts:
        pieces = [p.strip() for t in texts for p in (t.split(delimiter) if delimiter else [t]) if p.strip()]
        if not all(EMAIL.match(p) for p in pieces):
            entry.commented = True
            entry.comments.append(f"{header} does not hold email addresses only: check before using it")
    return entry


def _choice_entry(entry: _Entry, column: Column, header: str, cells: list[Any], samples: list[str]) -> _Entry:
    assert column.choices is not None
    enums = load_enums()
    values = list(dict.fromkeys(as_text(c) for c in cells))
    unknown = [v for v in values if enums.canonical(column.choices, v) is None]
    if not unknown:
        return entry
    allowed = enums.values(column.choices)
    listed = ", ".join(allowed) if len(allowed) <= 8 else "see the Lists sheet of the template"
    entry.commented = True
    shown = unknown[:12]
    pairs = ", ".join(f'{_q(v)} = "?"' for v in shown)
    entry.comments.append(
        f"{header} holds {', '.join(_q(v) for v in shown)}"
        f"{' ...' if len(unknown) > 12 else ''}; {column.header} takes {listed}."
    )
    entry.comments.append("Map each value (replace every ?), then remove the # to use it:")
    entry.text = f"{_q(column.header)} = {{ column = {_q(header)}, values = {{ {pairs} }} }}"
    if column.key == "status":
        sub = ", ".join(f'{_q(v)} = "?"' for v in shown)
        entry.text += (
            f'\n# "Substatus" = {{ column = {_q(header)}, values = {{ {sub} }} }}'
            "   # New: Pending/Received; Active: Accepted; Closed: Won/Lost/Declined/Expired"
        )
    return entry


@cache
def _currency_names() -> dict[str, str]:
    import pycountry

    return {_norm(c.name): c.alpha_3 for c in pycountry.currencies}


def _currency_entry(entry: _Entry, column: Column, header: str, cells: list[Any]) -> _Entry:
    import pycountry

    codes = {c.alpha_3 for c in pycountry.currencies}
    values = list(dict.fromkeys(as_text(c).strip() for c in cells))
    unknown = [v for v in values if v.upper() not in codes]
    if not unknown:
        return entry
    names = _currency_names()
    # By name ("Euro"), else a code inside the text ("EUR €").
    guessed = {
        v: names.get(_norm(v)) or next((t for t in re.findall(r"[A-Z]{3}", v.upper()) if t in codes), None)
        for v in unknown
    }
    pairs = ", ".join(f"{_q(v)} = {_q(code or '?')}" for v, code in guessed.items())
    entry.text = f'{_q(column.header)} = {{ column = {_q(header)}, values = {{ {pairs} }}, other = "keep" }}'
    if any(code is None for code in guessed.values()):
        entry.commented = True
        entry.comments.append("Replace each ? with the ISO code, then remove the # to use it:")
    else:
        entry.comments.append(f"{header} names currencies; the codes were looked up: check them")
    return entry


def _country_entry(entry: _Entry, column: Column, header: str, cells: list[Any]) -> _Entry:
    import pandas as pd

    from bulkref.sheets.values import parse_country

    values = list(dict.fromkeys(as_text(c) for c in cells))
    _typed, bad = parse_country(pd.Series(values, dtype=object))
    unknown = [v for v, b in zip(values, bad, strict=True) if b]
    if unknown:
        pairs = ", ".join(f'{_q(v)} = "?"' for v in unknown[:12])
        entry.comments.append(
            f"not country names bulkref knows: {', '.join(_q(v) for v in unknown[:12])}; "
            f'map them, e.g. values = {{ {pairs} }}, other = "keep"'
        )
    return entry


def _missing_required(entries: list[_Entry]) -> list[str]:
    have = {e.key for e in entries if not e.commented}
    if any(e.key == "contact.1.first_name" for e in entries if not e.commented):
        have.add("contact.1.last_name")
    out = []
    for column in SPEC.singles:
        if column.need in (Need.ALWAYS, Need.NEW) and column.key not in have:
            if column.kind is Kind.CHOICE:
                assert column.choices is not None
                allowed = load_enums().values(column.choices)
                example = allowed[min(1, len(allowed) - 1)]  # Partner-led, the usual deal type
                out.append(f"{_q(column.header)} = {{ value = {_q(example)} }}")
            else:
                out.append(f'{_q(column.header)} = "<column of the export>"')
    if not any(k.startswith("contact.") and k.endswith((".email", ".phone")) for k in have):
        out.append('"Customer Contact 1 Email" = "<column of the export>"   # or a Phone: one is needed')
    return out


# --------------------------------------------------------------------------- formats


def _kind_columns(raw: Sheet, columns: Iterable[tuple[int, str]], kind: Kind) -> list[int]:
    out = []
    for i, header in columns:
        found = _match(header)
        if found is not None and found[0] != FULL_NAME and SPEC.column(found[0]).kind is kind:
            out.append(i)
    return out


def _text_cells(raw: Sheet, positions: list[int]) -> list[str]:
    return [c.strip() for i in positions for c in raw.cells(i) if isinstance(c, str) and c.strip()]


def _common_date_format(raw: Sheet, columns: list[tuple[int, str]]) -> str | None:
    """The first format that reads every text date of the date fields. A day over
    12 tells dd/mm from mm/dd; when none does, dd/mm is listed first and wins."""
    texts = _text_cells(raw, _kind_columns(raw, columns, Kind.DATE))
    if not texts:
        return None
    for fmt in DATE_FORMATS:
        if all(_reads_date(t, fmt) for t in texts):
            return fmt
    return None


def _reads_date(text: str, fmt: str) -> bool:
    try:
        dt.datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True


def _common_number_format(raw: Sheet, columns: list[tuple[int, str]]) -> NumberFormat | None:
    texts = _text_cells(raw, _kind_columns(raw, columns, Kind.DECIMAL))
    if not texts:
        return NumberFormat()
    return next(
        (
            f
            for f in NUMBER_FORMATS
            if all(parse_number(t, f.decimal, f.thousands, currency=True) is not None for t in texts)
        ),
        None,
    )


def _any_kind(entries: list[_Entry], kind: Kind) -> bool:
    return any(SPEC.column(e.key).kind is kind for e in entries if not e.commented)


# --------------------------------------------------------------------------- text


def _samples(raw: Sheet, position: int) -> list[str]:
    out: list[str] = []
    for c in raw.cells(position):
        if c is None:
            continue
        text = as_text(c).replace("\n", " / ")
        text = text if len(text) <= 40 else text[:37] + "..."
        if text not in out:
            out.append(text)
        if len(out) == SAMPLES:
            break
    return out


def _q(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's."""
    return json.dumps(text, ensure_ascii=False)
