"""``bulkref map suggest``: a starter mapping file from an export's headers.

Each header is matched to a template field: the spec's own tolerant matching
first (``SPEC.resolve``), then a table of what common CRMs (Dynamics 365,
Salesforce, HubSpot, Pipedrive, Zoho) call the same thing, read with an
entity prefix where there is one ("Person - Email"), then a close spelling.
The export's cells decide the details: a date format or number format that
reads every sample, a currency value map from currency names, a delimited
column of emails as numbered contacts, street lines and whole addresses cut
into fields, the currency of amounts written with one. Then the sheet as a
whole: the status from a stage and an open/won/lost state (``_status``), the
deal type (``_deal_type``), grouping for repeated ids, ``[[skip]]`` rules for
totals and footers (``_skips``).

What it cannot decide (a CRM's stages for Status) is a commented entry with
``"?"`` to replace, marked TODO and listed at the top of the file; every
column left unmapped is listed as a comment, with samples, so the reviewer
sees what is not imported.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bulkref.mapping.file import NumberFormat
from bulkref.sheets.reader import Sheet, read_sheet
from bulkref.sheets.values import CURRENCY_SIGNS, EMAIL, as_text, parse_number, split_amount
from bulkref.spec.columns import SPEC, Column, Kind, Need
from bulkref.spec.enums import TAXONOMY_LISTS, closest
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
    **dict.fromkeys(
        ["topic", "opportunityname", "dealname", "opportunity", "deal", "subject", "dealtitle"], "name"
    ),
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
            "dealcurrency",
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
            "billingcode",
            "mailingcode",
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
            "companyaddress",
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
    **dict.fromkeys(["contacttitle", "jobtitle", "title", "contactjobtitle"], "contact.1.title"),
    **dict.fromkeys(["lostreason", "reasonlost", "closedlostreason"], "status_reason"),
}
# A CRM's open/won/lost state, beside its stage (Pipedrive, Dynamics 365): their pair decides the status.
STATE_HEADERS = frozenset(
    {"status", "dealstatus", "state", "statecode", "opportunitystatus", "opportunitystate"}
)
STATE_VALUES = frozenset({"open", "won", "lost", "closed", "deleted", "abandoned", "canceled", "cancelled"})
REASON_HEADERS = frozenset({"statusreason", "statuscode", "opportunitystatusreason"})
# Entity prefixes of exports that name columns by record (Pipedrive "Person - Email").
_ENTITY = re.compile(
    r"^(deal|opportunity|person|contact|organization|organisation|account|company|lead)\s*(?:-|–|:|\.)\s*(.+)$",
    re.IGNORECASE,
)
_ENTITY_KIND = {
    "deal": "deal",
    "opportunity": "deal",
    "lead": "deal",
    "person": "contact",
    "contact": "contact",
    "organization": "company",
    "organisation": "company",
    "account": "company",
    "company": "company",
}
# Country names as exports write them in their own language, which the ISO tables do not list.
LOCAL_COUNTRIES = {
    "中国": "CN",
    "中华人民共和国": "CN",
    "日本": "JP",
    "대한민국": "KR",
    "한국": "KR",
    "臺灣": "TW",
    "台湾": "TW",
    "deutschland": "DE",
    "osterreich": "AT",
    "österreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "espana": "ES",
    "españa": "ES",
    "brasil": "BR",
    "italia": "IT",
    "nederland": "NL",
    "belgie": "BE",
    "belgië": "BE",
    "polska": "PL",
    "mexico": "MX",
    "méxico": "MX",
    "sverige": "SE",
    "danmark": "DK",
    "norge": "NO",
    "suomi": "FI",
}
# One address in one cell, in the forms the suggestion recognises; a mapping may write any other.
ADDRESS_PATTERNS = {
    "street_postal_city": (
        r"(?P<street>[^,\n]+),\s*(?P<postal>\d{4,5}(?: ?[A-Z]{2})?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})"
        r"\s+(?P<city>[^,\n]+),\s*(?P<country>[^,\n]+)"
    ),
    "street_city_state_zip": (
        r"(?P<street>[^,\n]+),\s*(?P<city>[^,\n]+),\s*(?P<state>[A-Z]{2})\s+(?P<postal>\d{5}(?:-\d{4})?)"
        r",\s*(?P<country>[^,\n]+)"
    ),
    "country_city_street": (
        r"(?P<country>中国|中华人民共和国)(?P<city>\w+?[市])(?P<street>\S+?)\s*(?:邮政编码|邮编)[:：]?\s*(?P<postal>\d{6})"
    ),
}
_ADDRESS_KEY = {
    "street": "address_line1",
    "postal": "postal_code",
    "city": "city",
    "state": "state",
    "country": "country",
}
_ADDRESS_PARTS = {
    "street": "Address Line 1",
    "postal": "Postal Code",
    "city": "City",
    "state": "State",
    "country": "Country",
}
TOTAL_ROW = re.compile(r"^\s*(?:grand\s+|sub\s*)?totals?\b", re.IGNORECASE)

DATE_FORMATS = (
    "%Y-%m-%d",
    "%b %d, %Y",
    "%d %b %Y",
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
    todo: str | None = None  # what the reviewer has to decide, listed at the top
    reads: tuple[int, ...] = ()  # further export columns the entry reads (beyond ``position``)
    claims: tuple[str, ...] = ()  # further fields the entry fills (an address cut into its parts)
    patterns: dict[str, str] = field(default_factory=dict)  # the [patterns] it uses
    header: str = ""  # the export column's header, where the entry needs it again


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
    group_by: str | None = None  # the id column, when several rows share one id
    group_note: str = ""
    skips: list[str] = field(default_factory=list)  # [[skip]] tables, as TOML
    patterns: dict[str, str] = field(default_factory=dict)  # [patterns]
    todos: list[str] = field(default_factory=list)  # decisions not tied to one entry

    @property
    def mapped(self) -> list[str]:
        """The template fields the suggestion fills (uncommented entries)."""
        return [SPEC.column(e.key).header for e in self.entries if not e.commented]

    @property
    def open_questions(self) -> list[str]:
        """Every TODO, as listed at the top of the mapping."""
        return (
            [e.todo for e in self._ordered() if e.todo]
            + self.todos
            + [
                f"{header}: required for new referrals and not found in the export: fill it from a column "
                "or a constant"
                for header in _missing_headers(self.entries)
            ]
        )

    def _ordered(self) -> list[_Entry]:
        order = {c.key: i for i, c in enumerate(SPEC.columns({"contact": 9}))}
        return sorted(self.entries, key=lambda e: (order.get(e.key, 999), e.position))

    def toml(self) -> str:
        lines = [
            f"# Starter mapping for {self.source.name}, suggested by `bulkref map suggest`.",
            "# Review every entry: the value maps above all. Check it with",
            f"#   bulkref validate {self.source.name} --mapping THIS_FILE",
        ]
        todos = self.open_questions
        if todos:
            lines += [
                "#",
                f"# TODO: {len(todos)} thing{'s' if len(todos) != 1 else ''} to decide "
                "(each marked TODO below):",
            ]
            lines += [f"#   - {t}" for t in todos]
        lines += ["", "[source]"]
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
        if self.group_by:
            lines.append(f"group_by = {_q(self.group_by)}   # {self.group_note}")
        for skip in self.skips:
            lines += ["", skip]
        if self.patterns:
            lines += ["", "# One address in one cell, cut by named groups of these patterns.", "[patterns]"]
            lines += [f"{name} = '{text}'" for name, text in self.patterns.items()]
        lines += ["", "[fields]"]
        for e in self._ordered():
            lines += [f"# {c}" for c in e.comments]
            if e.todo:
                lines.append(f"# TODO: {e.todo}")
            lines += [f"# {t}" if e.commented else t for t in e.text.split("\n")]
        missing = _missing_required(self.entries)
        if missing:
            lines += [
                "",
                "# TODO: required for new referrals, not found in the export: fill from a column or a "
                "constant, then remove the #.",
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
    skips, kept = _skips(raw, columns)
    view = _View(raw, kept)
    date_format = _common_date_format(view, columns)
    number = _common_number_format(view, columns)
    claims: dict[str, _Entry] = {}
    for position, header in columns:
        entry = _entry(view, position, header, date_format, number)
        if entry is None:
            continue
        held = claims.get(entry.key)
        if held is None or (entry.score, -entry.position) > (held.score, -held.position):
            claims[entry.key] = entry
    entries = list(claims.values())
    found = Suggestion(raw.source, raw.name, workbook, entries, [], skips=skips)
    _address_parts(found)
    _status(view, columns, found)
    _deal_type(view, columns, found)
    _streets(view, found)
    _amount_currency(view, found)
    _grouping(view, found)
    used = {p for e in found.entries for p in (e.position, *e.reads)}
    found.unmapped = [(h, _samples(view, i)) for i, h in columns if i not in used]
    found.date_format = date_format if _any_kind(found.entries, Kind.DATE) else None
    found.number = number if _any_kind(found.entries, Kind.DECIMAL) else None
    return found


class _View:
    """The export's cells on the rows the suggested [[skip]] rules keep."""

    def __init__(self, raw: Sheet, kept: list[int]) -> None:
        self.raw, self.kept = raw, kept
        self.headers = raw.headers

    def cells(self, position: int) -> list[Any]:
        column = self.raw.cells(position)
        return [column[i] for i in self.kept]


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
    entity = _ENTITY.match(header.strip())
    if entity is not None:
        return _entity_match(_ENTITY_KIND[entity.group(1).casefold()], entity.group(2))
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
    # A stricter cut-off than a "did you mean": here nobody confirms the match.
    close = closest(whole, names, cutoff=FUZZY_CUTOFF)
    return (names[close], 1) if close else None


def _entity_match(kind: str, rest: str) -> tuple[str, int] | None:
    """A header after its entity prefix (Pipedrive's "Person - Email"): read with
    the entity, so "Organization - Name" is the customer's name and "Deal - ID" the
    deal's id, not Partner Center's Referral ID."""
    together = _norm(kind + rest)
    if together in SYNONYMS:
        return SYNONYMS[together], 2
    found = _match(rest)
    if found is None:
        return None
    key = found[0]
    person = key == FULL_NAME or key.startswith("contact.")
    if (kind == "contact") != person or (
        kind == "company" and not key.startswith(("customer", "address")) and key not in _ADDRESS_KEYS
    ):
        return None
    if kind == "deal" and key in ("referral_id", "customer_name"):
        return ("external_id", 2) if key == "referral_id" else found
    return found


_ADDRESS_KEYS = frozenset({"address_line1", "address_line2", "city", "state", "postal_code", "country"})


# "(Do Not Modify) Modified On" is not a date to import, whatever its last word says.
_CAUTIOUS = frozenset({"donotmodifyrowchecksum", "donotmodifymodifiedon"})


@cache
def _fuzzy_names() -> dict[str, str]:
    names = {_norm(n): c.key for c in SPEC.columns() if not c.read_only for n in (c.header, *c.aliases)}
    names.update(SYNONYMS)
    return names


def _entry(
    raw: _View, position: int, header: str, date_format: str | None, number: NumberFormat | None
) -> _Entry | None:
    found = _match(header)
    if found is None:
        return None
    key, score = found
    cells = [c for c in raw.cells(position) if c is not None]
    samples = _samples(raw, position)
    if key == FULL_NAME:
        return _full_name(position, header, score, cells)
    column = SPEC.column(key)
    if column.read_only or (column.need is Need.OPTIONAL and column.group is None and not cells):
        return None
    q = _q(header)
    entry = _Entry(position, key, score, f"{_q(column.header)} = {q}")
    if column.group is not None:
        return _group_entry(entry, column, header, cells)
    if key == "address_line1":
        return _address_entry(entry, header, cells)
    if column.kind is Kind.CHOICE:
        return _choice_entry(entry, column, header, cells, samples)
    if column.kind is Kind.CURRENCY:
        return _currency_entry(entry, column, header, cells)
    if column.kind is Kind.COUNTRY:
        return _country_entry(entry, column, header, cells)
    if column.kind is Kind.DATE:
        entry.comments.append(f"{header}: {', '.join(samples)}")
        if not all(isinstance(c, dt.date) for c in cells) and date_format is None:
            entry.todo = (
                f'{column.header}: no date format reads all of {header}: add date_format = "..." (strftime)'
            )
    if column.kind is Kind.DECIMAL and cells:
        fmt = number or NumberFormat()
        texts = [as_text(c) for c in cells if not isinstance(c, (int, float))]
        if not all(parse_number(t, fmt.decimal, fmt.thousands, currency=True) is not None for t in texts):
            entry.todo = (
                f"{column.header}: {header} holds {', '.join(samples)}: add decimal and thousands "
                "for this format"
            )
    return entry


# Korean names in Latin letters, family name first: "Kim Min-jun".
_KOREAN_NAME = re.compile(
    r"^(Kim|Lee|Yi|Park|Pak|Choi|Jung|Jeong|Kang|Cho|Jo|Yoon|Yun|Jang|Lim|Han|Oh|Seo|Shin|Kwon|Hwang|Ahn|"
    r"Song|Yoo|Hong|Jeon|Ko|Moon|Yang|Son|Bae|Baek|Heo|Nam)\s+[A-Z][a-z]+-[a-z]+$"
)


def _full_name(position: int, header: str, score: int, cells: list[Any]) -> _Entry:
    q = _q(header)
    names = [as_text(c).strip() for c in cells if as_text(c).strip()]
    korean = sum(bool(_KOREAN_NAME.match(n)) for n in names)
    order = ', name_order = "family_given"' if names and korean * 2 >= len(names) else ""
    text = (
        f'"Customer Contact 1 First Name" = {{ column = {q}, name = "first"{order} }}\n'
        f'"Customer Contact 1 Last Name" = {{ column = {q}, name = "last"{order} }}'
    )
    if order:
        return _Entry(
            position,
            "contact.1.first_name",
            score,
            text,
            comments=[f"{header} holds names family name first (like {names[0]}): check the order"],
        )
    entry = _Entry(
        position,
        "contact.1.first_name",
        score,
        text,
        comments=[
            f"{header} is a whole name: the first word is the first name, the rest the last name "
            '(add name_order = "family_given" for names like Kim Min-jun, or "whole" to keep them whole)'
        ],
    )
    return entry


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


def _address_entry(entry: _Entry, header: str, cells: list[Any]) -> _Entry:
    """A street column, or one whose cells hold the whole address (street, postal
    code, city, country): then cut by the first of the known forms each cell matches."""
    texts = [as_text(c).strip() for c in cells if as_text(c).strip()]
    if not texts or not all("," in t or "邮" in t for t in texts):
        return entry
    chosen = []
    for t in texts:
        name = next((n for n, p in ADDRESS_PATTERNS.items() if re.fullmatch(p, t)), None)
        if name is None:
            return entry
        if name not in chosen:
            chosen.append(name)
    parts = [g for g in _ADDRESS_PARTS if all(f"(?P<{g}>" in ADDRESS_PATTERNS[n] for n in chosen)]
    listed = ", ".join(_q(n) for n in chosen)
    pattern = listed if len(chosen) > 1 else _q(chosen[0])
    pattern = f"[{pattern}]" if len(chosen) > 1 else pattern
    lines = []
    for part in parts:
        extra = ""
        if part == "country":
            local = {v: LOCAL_COUNTRIES[v.casefold()] for t in texts for v in _pieces(chosen, t, "country")}
            local = {k: v for k, v in local.items() if v}
            if local:
                pairs = ", ".join(f"{_q(k)} = {_q(v)}" for k, v in local.items())
                extra = f', values = {{ {pairs} }}, other = "keep"'
        lines.append(
            f"{_q(_ADDRESS_PARTS[part])} = {{ column = {_q(header)}, pattern = {pattern}, "
            f"part = {_q(part)}{extra} }}"
        )
    entry.text = "\n".join(lines)
    entry.comments.append(f"{header} holds the whole address: cut by the pattern(s) under [patterns]")
    entry.key = "address_line1"
    entry.reads = ()
    entry.patterns = {n: ADDRESS_PATTERNS[n] for n in chosen}
    entry.header = header
    claims = [SPEC.resolve(_ADDRESS_PARTS[p]) for p in parts]
    entry.claims = tuple(c.key for c in claims if c is not None)  # each part names a template column
    return entry


def _address_parts(found: Suggestion) -> None:
    """An address cut by patterns fills only the parts no column of their own fills
    (a City column beside a whole address wins), or nothing if only the street is left."""
    for e in found.entries:
        if not e.patterns:
            continue
        others = {x.key for x in found.entries if x is not e}
        keep = [
            (line, key) for line, key in zip(e.text.split("\n"), e.claims, strict=True) if key not in others
        ]
        if [k for _, k in keep] == ["address_line1"] or not keep:
            e.text, e.claims, e.patterns = f'"Address Line 1" = {_q(e.header)}', (), {}
            e.comments = []
            continue
        e.text = "\n".join(line for line, _ in keep)
        e.claims = tuple(k for _, k in keep)


def _pieces(names: list[str], text: str, group: str) -> list[str]:
    for n in names:
        m = re.fullmatch(ADDRESS_PATTERNS[n], text)
        if m is not None:
            piece = m.group(group)
            return [piece.strip()] if piece and piece.strip().casefold() in LOCAL_COUNTRIES else []
    return []


def _choice_entry(
    entry: _Entry, column: Column, header: str, cells: list[Any], samples: list[str]
) -> _Entry | None:
    assert column.choices is not None
    enums = load_enums()
    values = list(dict.fromkeys(as_text(c) for c in cells))
    unknown = [v for v in values if enums.canonical(column.choices, v) is None]
    if not unknown:
        return entry
    if column.key in ("referral_type", "deal_type"):
        # Independent or Shared says who sees the deal, and Deal Type how Microsoft takes
        # part; a CRM's "Type" or "Deal Type" (New Business, Existing Business) is
        # neither: left unmapped (Deal Type is then suggested on its own, see _deal_type).
        return None
    if column.choices in TAXONOMY_LISTS:
        # Perhaps a newer fiscal year's names than bulkref's table: read as they are
        # (the validator warns, each is sent as written); a map is the reviewer's call.
        shown = ", ".join(_q(v) for v in unknown[:12]) + (" ..." if len(unknown) > 12 else "")
        entry.comments.append(
            f"{header} holds {shown}, not in the {enums.taxonomy.fiscal_year} table bulkref has: "
            "sent as written, with a warning (a values map can rename them)."
        )
        return entry
    allowed = enums.values(column.choices)
    listed = ", ".join(allowed) if len(allowed) <= 8 else "see the Lists sheet of the template"
    entry.commented = True
    first = unknown[:12]
    pairs = ", ".join(f'{_q(v)} = "?"' for v in first)
    entry.comments.append(
        f"{header} holds {', '.join(_q(v) for v in first)}"
        f"{' ...' if len(unknown) > 12 else ''}; {column.header} takes {listed}."
    )
    entry.todo = f'{column.header}: map each value of {header} (replace every "?"), then remove the #'
    entry.text = f"{_q(column.header)} = {{ column = {_q(header)}, values = {{ {pairs} }} }}"
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
        entry.todo = (
            f'Currency: replace each "?" in the value map of {header} with the ISO code, then remove the #'
        )
    else:
        entry.comments.append(f"{header} names currencies; the codes were looked up: check them")
    return entry


def _country_entry(entry: _Entry, column: Column, header: str, cells: list[Any]) -> _Entry:
    import pandas as pd

    from bulkref.sheets.values import parse_country

    values = list(dict.fromkeys(as_text(c) for c in cells))
    _typed, bad = parse_country(pd.Series(values, dtype=object))
    unknown = [v for v, b in zip(values, bad, strict=True) if b]
    if not unknown:
        return entry
    local = {v: LOCAL_COUNTRIES.get(v.strip().casefold(), "?") for v in unknown[:12]}
    pairs = ", ".join(f"{_q(v)} = {_q(code)}" for v, code in local.items())
    entry.text = f'{_q(column.header)} = {{ column = {_q(header)}, values = {{ {pairs} }}, other = "keep" }}'
    if "?" in local.values():
        entry.commented = True
        entry.todo = (
            f"Country: {', '.join(_q(v) for v, c in local.items() if c == '?')} in {header} are not country "
            'names bulkref knows: replace each "?" with the two-letter code, then remove the #'
        )
    else:
        entry.comments.append(f"{header} has local country names; their codes were looked up: check them")
    return entry


def _missing_headers(entries: list[_Entry]) -> list[str]:
    have = _have(entries)
    out = [c.header for c in SPEC.singles if c.need in (Need.ALWAYS, Need.NEW) and c.key not in have]
    if not any(k.startswith("contact.") and k.endswith((".email", ".phone")) for k in have):
        out.append("Customer Contact 1 Email")
    return out


def _have(entries: list[_Entry]) -> set[str]:
    have = set()
    for e in entries:
        if e.commented:
            continue
        have.add(e.key)
        have.update(e.claims)
        if e.key == "contact.1.first_name":
            have.add("contact.1.last_name")
    return have


def _missing_required(entries: list[_Entry]) -> list[str]:
    out = []
    for header in _missing_headers(entries):
        if header == "Customer Contact 1 Email":
            out.append(f'{_q(header)} = "<column of the export>"   # or a Phone: one is needed')
        else:
            out.append(f'{_q(header)} = "<column of the export>"')
    return out


# --------------------------------------------------------------------------- the sheet as a whole


def _status(raw: _View, columns: list[tuple[int, str]], found: Suggestion) -> None:
    """Status and Substatus: from the stage alone (Salesforce, Zoho), or from a
    stage and an open/won/lost state (Pipedrive), or a state and its reason
    (Dynamics 365), as rules over both columns. The won and lost ones are decided
    here; the open ones, by the stage, are left to the reviewer."""
    by_norm = {_norm(h): i for i, h in columns}
    state = next(
        (
            i
            for i, h in columns
            if _norm(_ENTITY.sub(r"\2", h)) in STATE_HEADERS
            and (values := _values(raw, i))
            and all(v.casefold() in STATE_VALUES for v in values)
        ),
        None,
    )
    reason = next((i for n, i in by_norm.items() if n in REASON_HEADERS and i != state), None)
    stage = next(
        (
            i
            for i, h in columns
            if i not in (state, reason) and (m := _match(h)) is not None and m[0] == "status"
        ),
        None,
    )
    # A Substatus column of the export that holds substatuses already is kept as it is.
    own = next((e for e in found.entries if e.key == "substatus" and not e.commented), None)
    found.entries = [
        e
        for e in found.entries
        if e.key != "status"
        and (e.key != "substatus" or e is own)
        and not (reason is not None and e.position == reason and e.key == "status_reason")
    ]
    if state is None and stage is None:
        return
    header = raw.headers
    enums = load_enums()
    if state is None:
        assert stage is not None
        values = _values(raw, stage)
        if all(enums.canonical("referral_status", v) is not None for v in values):
            found.entries.append(_Entry(stage, "status", 2, f'"Status" = {_q(header[stage])}'))
            return
        status = {v: _closed(v, "Closed", "?") for v in values}
        sub = {v: _closed(v, None, "?") for v in values}
        tables = [("status", "Status", status)] + ([] if own else [("substatus", "Substatus", sub)])
        for key, name, table in tables:
            pairs = ", ".join(f"{_q(v)} = {_q(x)}" for v, x in table.items())
            found.entries.append(
                _todo_entry(
                    stage,
                    key,
                    f"{_q(name)} = {{ column = {_q(header[stage])}, values = {{ {pairs} }} }}",
                    name,
                    header[stage],
                    "?" in table.values(),
                )
            )
        return
    if stage is None:  # the state alone gives the status; which open deals are New is the reviewer's
        table = {
            v: {"won": "Closed", "lost": "Closed", "closed": "Closed"}.get(v.casefold(), "?")
            for v in _values(raw, state)
        }
        pairs = ", ".join(f"{_q(v)} = {_q(x)}" for v, x in table.items())
        text = f'"Status" = {{ column = {_q(header[state])}, values = {{ {pairs} }} }}'
        found.entries.append(
            _todo_entry(state, "status", text, "Status", header[state], "?" in table.values())
        )
    pairs_of = _pairs(raw, state, stage)
    status_rules = _rules(pairs_of, {"won": "Closed", "lost": "Closed", "closed": "Closed"}, None)
    sub_of = _pairs(raw, state, reason if reason is not None else stage)
    sub_rules = _rules(sub_of, {"won": "Won", "lost": "Lost"}, None)
    for key, name, cols, rules in (
        *([("status", "Status", (state, stage), status_rules)] if stage is not None else []),
        *(
            []
            if own
            else [("substatus", "Substatus", (state, reason if reason is not None else stage), sub_rules)]
        ),
    ):
        used = [c for c in cols if c is not None]
        names = ", ".join(_q(header[c]) for c in used)
        shown = ", ".join("[" + ", ".join(_q(x) for x in [*r[: len(used)], r[-1]]) + "]" for r in rules)
        text = f"{_q(name)} = {{ columns = [{names}], rules = [{shown}] }}"
        entry = _todo_entry(
            used[0], key, text, name, " and ".join(header[c] for c in used), any(r[-1] == "?" for r in rules)
        )
        entry.reads = tuple(used[1:])
        entry.comments.insert(
            0, f"{' and '.join(header[c] for c in used)} decide together; the first rule that matches wins"
        )
        found.entries.append(entry)


def _closed(value: str, status: str | None, unknown: str) -> str:
    """What a stage name says by itself: "Closed Won" is Closed and Won, "Closed Lost" Lost."""
    folded = value.casefold()
    won, lost = "won" in folded.split() or folded.endswith("won"), "lost" in folded
    if not (won or lost):
        return unknown
    return status if status is not None else ("Won" if won else "Lost")


def _pairs(raw: _View, first: int, second: int | None) -> list[tuple[str, str]]:
    a = raw.cells(first)
    b = raw.cells(second) if second is not None else [None] * len(a)
    return list(
        dict.fromkeys(
            ("" if x is None else as_text(x), "" if y is None else as_text(y))
            for x, y in zip(a, b, strict=True)
        )
    )


def _rules(pairs: list[tuple[str, str]], decided: dict[str, str], _fallback: str | None) -> list[list[str]]:
    """Rules for a state column and a second one: the won and lost states decide
    alone (one rule each); each open pair is a rule for the reviewer to answer."""
    out: list[list[str]] = []
    states = list(dict.fromkeys(s for s, _ in pairs))
    for st in states:
        value = decided.get(st.casefold())
        if value is not None:
            out.append([st, "*", value])
    for st, other in pairs:
        if st.casefold() not in decided:
            out.append([st, other or "", "?"])
    return out


def _todo_entry(position: int, key: str, text: str, name: str, header: str, open_: bool) -> _Entry:
    entry = _Entry(position, key, 2, text)
    if open_:
        entry.commented = True
        entry.todo = f'{name}: decide the open deals by {header} (replace every "?"), then remove the #'
    allowed = "New: Pending/Received; Active: Accepted; Closed: Won/Lost/Declined/Expired"
    entry.comments.append(f"Status takes New, Active, Closed; Substatus goes with it ({allowed}).")
    return entry


def _values(raw: _View, position: int) -> list[str]:
    return list(dict.fromkeys(as_text(c).strip() for c in raw.cells(position) if c is not None))


_YES = frozenset({"yes", "y", "true", "1", "x"})
_NO = frozenset({"no", "n", "false", "0", ""})


def _deal_type(raw: _View, columns: list[tuple[int, str]], found: Suggestion) -> None:
    """Deal Type, always: from a column that says whether a deal is co-sell (or
    shared with Microsoft), else Partner-led for every deal, marked TODO."""
    if any(e.key == "deal_type" for e in found.entries):
        return
    for i, h in columns:
        n = _norm(h)
        values = _values(raw, i)
        if not values:
            continue
        if "cosell" in n or "sharewithmicrosoft" in n or "microsoftsellers" in n:
            if not all(v.casefold() in _YES | _NO for v in values):
                continue
            yes = [v for v in values if v.casefold() in _YES]
            no = [v for v in values if v.casefold() in _NO]
        elif len(values) <= 6 and any("cosell" in _norm(v) for v in values):
            # A pipeline or deal type named for co-sell (HubSpot's "Microsoft Co-sell" pipeline).
            yes = [v for v in values if "cosell" in _norm(v)]
            no = [v for v in values if "cosell" not in _norm(v)]
        else:
            continue
        deal = ", ".join([*(f'{_q(v)} = "Co-sell"' for v in yes), *(f'{_q(v)} = "Partner-led"' for v in no)])
        help_ = ", ".join([*(f'{_q(v)} = "GeneralOrOther"' for v in yes), *(f'{_q(v)} = ""' for v in no)])
        # A co-sell deal must ask Microsoft for help: unless a column says what, "GeneralOrOther".
        own_help = any(e.key == "help_needed" for e in found.entries)
        entry = _Entry(
            i,
            "deal_type",
            2,
            f'"Deal Type" = {{ column = {_q(h)}, values = {{ {deal} }} }}'
            + ("" if own_help else f'\n"Help Needed" = {{ column = {_q(h)}, values = {{ {help_} }} }}'),
            comments=[
                f"{h} says which deals are co-sell; a co-sell deal asks Microsoft for help: check which"
            ],
        )
        found.entries.append(entry)
        return
    found.entries.append(
        _Entry(
            -1,
            "deal_type",
            0,
            '"Deal Type" = { value = "Partner-led" }',
            todo="Deal Type: no column says which deals are co-sell: every deal is Partner-led (or Private, "
            "Co-sell): check it",
        )
    )


def _streets(raw: _View, found: Suggestion) -> None:
    """A street column with several lines in a cell: its first line is Address
    Line 1, the rest Address Line 2 (unless another column fills that)."""
    street = next((e for e in found.entries if e.key == "address_line1" and not e.patterns), None)
    if street is None or street.position < 0:
        return
    if not any("\n" in as_text(c) for c in raw.cells(street.position) if c is not None):
        return
    header = _q(raw.headers[street.position])
    street.text = f'"Address Line 1" = {{ column = {header}, split = "\\n", part = "first" }}'
    street.comments.append(f"{raw.headers[street.position]} holds several lines: the first, then the rest")
    if not any(e.key == "address_line2" for e in found.entries):
        found.entries.append(
            _Entry(
                street.position,
                "address_line2",
                2,
                f'"Address Line 2" = {{ column = {header}, split = "\\n", part = "rest" }}',
            )
        )


def _amount_currency(raw: _View, found: Suggestion) -> None:
    """Amounts written with their currency (USD 310,000.00): Currency from the
    amount when no column of its own gives it."""
    for e in found.entries:
        found.patterns.update(e.patterns)
    value = next((e for e in found.entries if e.key == "deal_value" and not e.commented), None)
    if value is None or any(e.key == "currency" and not e.commented for e in found.entries):
        return
    tokens = [
        split[0]
        for c in raw.cells(value.position)
        if isinstance(c, str) and (split := split_amount(c)) is not None
    ]
    if not tokens or any(t is None for t in tokens):
        return
    header = _q(raw.headers[value.position])
    ambiguous = sorted(
        {t for t in tokens if t is not None and not (len(t) == 3 and t.isalpha()) and t not in CURRENCY_SIGNS}
    )
    if ambiguous:
        pairs = ", ".join(f'{_q(t)} = "?"' for t in ambiguous)
        entry = _Entry(
            value.position,
            "currency",
            2,
            f'"Currency" = {{ column = {header}, from_amount = true, values = {{ {pairs} }} }}',
            commented=True,
        )
        entry.todo = (
            f"Currency: say which currency {', '.join(ambiguous)} is in {raw.headers[value.position]} "
            '(replace every "?"), then remove the #'
        )
    else:
        entry = _Entry(
            value.position, "currency", 2, f'"Currency" = {{ column = {header}, from_amount = true }}'
        )
        entry.comments.append(
            f"{raw.headers[value.position]} is written with its currency: the value and the code "
            "both come from it"
        )
    found.entries.append(entry)


def _grouping(raw: _View, found: Suggestion) -> None:
    """Several rows with one id (a report with a row per contact role): group them
    by that id, and let the contact columns give a contact per row."""
    ident = next((e for e in found.entries if e.key == "external_id" and not e.commented), None)
    if ident is None:
        return
    ids = [as_text(c).strip() for c in raw.cells(ident.position) if c is not None]
    if len(set(ids)) == len(ids):
        return
    header = raw.headers[ident.position]
    found.group_by = header
    most = max(ids.count(i) for i in set(ids))
    found.group_note = (
        f"{len(ids)} rows, {len(set(ids))} deals (up to {most} rows each): one referral per deal"
    )
    for e in found.entries:
        group = e.key.split(".")[0]
        later = any(
            x.key.startswith(f"{group}.") and not x.key.startswith(f"{group}.1.") for x in found.entries
        )
        if (
            e.key.startswith(("contact.1.", "team.1.")) and not later
        ):  # item 2 from a column of its own: as is
            e.text = re.sub(r'^"(Customer Contact|Team Member) 1 ', r'"\1 {n} ', e.text, flags=re.MULTILINE)
            e.comments.append("one per row of the deal ({n}): the same person twice is one contact")


def _skips(raw: Sheet, columns: list[tuple[int, str]]) -> tuple[list[str], list[int]]:
    """[[skip]] rules for the rows that are not deals: totals, the report's footer
    (rows below the data with a single cell), rows without the id; and the rows kept."""
    n = len(raw.rows)
    if not n:
        return [], []
    cells = {i: raw.cells(i) for i, _ in columns}  # each column once: cells() copies it
    filled = [sum(cells[i][r] is not None for i, _ in columns) for r in range(n)]
    typical = sorted(filled)[len(filled) // 2]
    rules: list[str] = []
    skipped: set[int] = set()
    # The footer: the last rows, from a total row or a row of a single cell (when a
    # deal's row has several), with no row that looks like a deal below.
    start = n
    while start > 1 and (
        (typical >= 3 and filled[start - 1] <= 1) or _total_at(cells, columns, start - 1) is not None
    ):
        start -= 1
    if start < n:
        cell, position = next((c, i) for i, _h in columns if (c := cells[i][start]) is not None)
        text = as_text(cell).strip()
        m = TOTAL_ROW.match(text)
        lead = m.group(0).strip() if m else text.splitlines()[0].split("  ")[0][:30]
        rules.append(
            f"# The report's footer (row {int(raw.rows[start])} on): not deals.\n[[skip]]\n"
            f"column = {_q(raw.headers[position])}\n"
            f"pattern = '^{_literal(lead)}'\nand_below = true"
        )
        skipped.update(range(start, n))
    totals = [r for r in range(start) if _total_at(cells, columns, r) is not None]
    if totals:
        total = _total_at(cells, columns, totals[0])
        assert total is not None
        rules.append(
            f"# Total rows: not deals.\n[[skip]]\ncolumn = {_q(raw.headers[total])}\n"
            "pattern = '(?i)^\\s*(grand\\s+|sub\\s*)?totals?\\b'"
        )
        skipped.update(totals)
    id_column = next(
        (i for i, h in columns if (m2 := _match(h)) is not None and m2[0] == "external_id"), None
    )
    if id_column is not None:
        blank = [r for r in range(n) if r not in skipped and cells[id_column][r] is None]
        if blank:
            rows = ", ".join(str(int(raw.rows[r])) for r in blank[:5])
            rules.append(
                f"# Rows without {raw.headers[id_column]} (rows {rows}{' ...' if len(blank) > 5 else ''}).\n"
                f"[[skip]]\ncolumn = {_q(raw.headers[id_column])}\nblank = true"
            )
            skipped.update(blank)
    return rules, [r for r in range(n) if r not in skipped]


def _total_at(cells: dict[int, Any], columns: list[tuple[int, str]], row: int) -> int | None:
    """The position of the cell that makes ``row`` a total row ("Grand Totals (34 records)"), if any."""
    for i, _h in columns[:3]:
        c = cells[i][row]
        if isinstance(c, str) and TOTAL_ROW.match(c):
            return i
    return None


def _literal(text: str) -> str:
    """``text`` as a regular expression in a TOML literal string (no single quotes inside)."""
    escaped = re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)
    return re.sub(r"['\x00-\x1f\x7f]", ".", escaped)  # TOML literal strings hold neither


# --------------------------------------------------------------------------- formats


def _kind_columns(raw: _View, columns: Iterable[tuple[int, str]], kind: Kind) -> list[int]:
    out = []
    for i, header in columns:
        found = _match(header)
        if found is not None and found[0] != FULL_NAME and SPEC.column(found[0]).kind is kind:
            out.append(i)
    return out


def _text_cells(raw: _View, positions: list[int]) -> list[str]:
    return [c.strip() for i in positions for c in raw.cells(i) if isinstance(c, str) and c.strip()]


def _common_date_format(raw: _View, columns: list[tuple[int, str]]) -> str | None:
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


def _common_number_format(raw: _View, columns: list[tuple[int, str]]) -> NumberFormat | None:
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


def _samples(raw: _View, position: int) -> list[str]:
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
