"""Turning raw cells into typed values, one column at a time.

Cells arrive as the spreadsheet holds them: text, numbers (also numbers
stored as text), Excel dates, booleans written as Yes/No/TRUE/1. Each parser
takes a column (an object Series, None for blank) and returns the typed
column plus a mask of the cells it could not read, so the validator can
report them without parsing twice.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd

from bulkref.spec.columns import Column, Kind
from bulkref.spec.enums import TAXONOMY_LISTS, fold, load

Parsed = tuple[pd.Series, pd.Series]  # (typed values, unreadable mask)

_TRUE = {"yes", "y", "true", "1", "x", "ja", "oui", "si", "sí"}
_FALSE = {"no", "n", "false", "0", "nein", "non"}
EMAIL = re.compile(r"^[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+\.[A-Za-z]{2,}$")
_DIGITS = re.compile(r"\d")


def as_text(value: object) -> str:
    """A cell as text: integral numbers without ``.0`` (postal codes, phone
    numbers typed as numbers), dates as ISO."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _blank(s: pd.Series) -> pd.Series:
    return s.isna()


def _texts(s: pd.Series) -> pd.Series:
    """The column as str, skipping the per-cell conversion when it is text already."""
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return s.astype(object)
    return s.map(as_text, na_action="ignore").astype(object)


def _per_text(texts: pd.Series, parse: Callable[[str], object]) -> pd.Series:
    """``texts.map(parse, na_action="ignore")`` (None for blank), with ``parse`` called
    once per distinct text: a column's cells repeat (a status, a country code,
    a product list), and parsing one is Python work; finding the distinct ones
    is pandas'."""
    codes, distinct = pd.factorize(texts)  # a blank is -1: the None at the end below
    parsed = np.empty(len(distinct) + 1, dtype=object)
    for i, text in enumerate(distinct):
        parsed[i] = parse(text)  # one at a time: a tuple must stay one value
    return pd.Series(parsed[codes], index=texts.index, dtype=object)


def parse_text(s: pd.Series) -> Parsed:
    return _texts(s), pd.Series(False, index=s.index)


def parse_choice(name: str) -> Callable[[pd.Series], Parsed]:
    enums = load()
    if name in TAXONOMY_LISTS:
        # A fiscal year's solution areas and plays may be newer than the table in
        # force: a value outside it is kept as written (trimmed), never unreadable;
        # the validator warns about it (unlisted_choice).
        def parse_open(s: pd.Series) -> Parsed:
            typed = _per_text(_texts(s), lambda v: enums.canonical(name, v) or v.strip() or None)
            return typed, typed.isna() & ~_blank(s)

        return parse_open

    def parse(s: pd.Series) -> Parsed:
        texts = _texts(s)
        typed = _per_text(texts, lambda v: enums.canonical(name, v))
        return typed, typed.isna() & ~_blank(s)

    return parse


def _bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def parse_bool(s: pd.Series) -> Parsed:
    typed = s.map(_bool, na_action="ignore")
    return typed.astype(object), typed.isna() & ~_blank(s)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    # Thousands separators are commas only when they group by three ("1,234.5");
    # "1,5" or "1.234,56" are locale forms a mapping file has to declare.
    return parse_number(str(value))


# A currency sign that names one currency; "$", "¥" and "kr" name several, so a mapping says which.
CURRENCY_SIGNS = {
    "€": "EUR",
    "£": "GBP",
    "₹": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "₺": "TRY",
    "₪": "ILS",
    "₫": "VND",
    "฿": "THB",
    "₱": "PHP",
    "R$": "BRL",
    "US$": "USD",
    "C$": "CAD",
    "CA$": "CAD",
    "A$": "AUD",
    "AU$": "AUD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "S$": "SGD",
    "zł": "PLN",
    "Kč": "CZK",
}
_CURRENCY_TOKEN = r"[A-Z]{3}|[A-Z]{1,3}\$|[€£¥₹₩₽₺₪₫฿₱$]|zł|Kč|kr"
_AMOUNT = re.compile(
    rf"^\s*(?P<before>{_CURRENCY_TOKEN})?\s*(?P<number>[-+]?\s*[\d.,'\s\u00a0\u202f]*\d[\d.,'\s\u00a0\u202f]*?)"
    rf"\s*(?P<after>{_CURRENCY_TOKEN})?\s*$"
)


def split_amount(text: str) -> tuple[str | None, str] | None:
    """An amount as written (``USD 310,000.00``, ``€1.234,50``, ``310,000.00 USD``)
    as its currency code or sign (None when it has none) and its number's text;
    None when it is not an amount, or has a currency on both sides."""
    m = _AMOUNT.match(text)
    if m is None or (m.group("before") and m.group("after")):
        return None
    return m.group("before") or m.group("after"), m.group("number")


def parse_number(text: str, decimal: str = ".", thousands: str = ",", currency: bool = False) -> float | None:
    """``text`` as a number written with ``decimal`` and ``thousands`` ("1.234,56"
    with decimal ","), or None. Thousands must group by three, so "1.5" is not read
    as 15 when "." groups thousands. With ``currency``, a currency code or sign
    before or after the number is allowed (and ignored: see ``split_amount``)."""
    if currency:
        split = split_amount(text)
        if split is None:
            return None
        text = split[1]
    cleaned = text.strip()
    if thousands == " ":
        cleaned = re.sub(r"[\s\u00a0\u202f]", " ", cleaned)
    else:
        cleaned = re.sub(r"[\s\u00a0\u202f]", "", cleaned)
    if not _number_pattern(decimal, thousands).match(cleaned):
        return None
    if thousands:
        cleaned = cleaned.replace(thousands, "")
    return float(cleaned.replace(decimal, "."))


@cache
def _number_pattern(decimal: str, thousands: str) -> re.Pattern[str]:
    d = re.escape(decimal)
    whole = rf"(?:\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+|\d+)" if thousands else r"\d+"
    return re.compile(rf"^[+-]?(?:{whole}(?:{d}\d+)?|{d}\d+)$")


def parse_decimal(s: pd.Series) -> Parsed:
    if pd.api.types.is_numeric_dtype(s):
        typed = s.astype(float).astype(object).where(s.notna(), None)
        return typed, pd.Series(False, index=s.index)
    typed = s.map(_number, na_action="ignore").astype(object)
    return typed, typed.isna() & ~_blank(s)


def _date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text[:10]) if len(text) >= 10 else None
        except ValueError:
            return None
    return None


def parse_date(s: pd.Series) -> Parsed:
    typed = s.map(_date, na_action="ignore").astype(object)
    return typed, typed.isna() & ~_blank(s)


def parse_phone(s: pd.Series) -> Parsed:
    """Phone numbers are free text in Partner Center (``(425) 555-0100 ext. 12``,
    ``+49 (0)89 1234-5678``, an extension alone): every value is kept as
    written; the mask marks only those with no digit at all, which cannot be a
    phone (the validator warns of them)."""
    texts = _texts(s)
    no_digit = texts.map(lambda v: _DIGITS.search(v) is None, na_action="ignore").eq(True)
    return texts, no_digit


def parse_pattern(pattern: re.Pattern[str], min_digits: int = 0) -> Callable[[pd.Series], Parsed]:
    def parse(s: pd.Series) -> Parsed:
        texts = _texts(s)
        ok = _per_text(texts, lambda v: bool(pattern.match(v)) and len(_DIGITS.findall(v)) >= min_digits)
        bad = ok.eq(False) & ~_blank(s)
        return texts.where(~bad, None), bad

    return parse


@cache
def _countries() -> dict[str, str]:
    import pycountry  # on first use: its tables are large, and a sheet may have no country

    names: dict[str, str] = {}
    for c in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            if (n := getattr(c, attr, None)) is not None:
                names[fold(n)] = c.alpha_2
        names[fold(c.alpha_3)] = c.alpha_2
    # Two-letter codes win over names and three-letter codes.
    names.update({fold(c.alpha_2): c.alpha_2 for c in pycountry.countries})
    # Common names people write that the ISO tables spell otherwise.
    names.update({"uk": "GB", "usa": "US", "unitedstatesofamerica": "US", "greatbritain": "GB"})
    return names


def parse_country(s: pd.Series) -> Parsed:
    table = _countries()
    typed = _per_text(_texts(s), lambda v: table.get(fold(v)))
    return typed, typed.isna() & ~_blank(s)


@cache
def _currencies() -> frozenset[str]:
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies)


def parse_currency(s: pd.Series) -> Parsed:
    codes = _currencies()
    typed = _per_text(_texts(s), lambda v: v.strip().upper() if v.strip().upper() in codes else None)
    return typed, typed.isna() & ~_blank(s)


def _duns(value: object) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # Typed as a number, the leading zeros are gone: put them back.
        text = as_text(value).zfill(9)
    else:
        text = str(value).strip().replace("-", "").replace(" ", "")
    return text if len(text) == 9 and text.isdigit() else None


def parse_duns(s: pd.Series) -> Parsed:
    typed = s.map(_duns, na_action="ignore").astype(object)
    return typed, typed.isna() & ~_blank(s)


def split_list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in re.split(r"[;\n]", text) if p.strip())


def parse_list(s: pd.Series) -> Parsed:
    typed = _per_text(_texts(s), split_list)
    # A cell of only separators (";;") holds no ids: treat it as blank.
    return typed.where(typed.map(bool, na_action="ignore").eq(True), None), pd.Series(False, index=s.index)


def parser(column: Column) -> Callable[[pd.Series], Parsed]:
    """The parser of a column's kind. Its typed values are an object column
    with None for blank or unreadable cells (pandas would put NaN there),
    so rules can test ``is None``."""
    parse = _parser(column)

    def parse_none(s: pd.Series) -> Parsed:
        typed, bad = parse(s)
        return typed.astype(object).where(typed.notna(), None), bad.astype(bool)

    return parse_none


def _parser(column: Column) -> Callable[[pd.Series], Parsed]:
    match column.kind:
        case Kind.CHOICE:
            assert column.choices is not None
            return parse_choice(column.choices)
        case Kind.BOOL:
            return parse_bool
        case Kind.DECIMAL:
            return parse_decimal
        case Kind.DATE:
            return parse_date
        case Kind.EMAIL:
            return parse_pattern(EMAIL)
        case Kind.PHONE:
            return parse_phone
        case Kind.COUNTRY:
            return parse_country
        case Kind.CURRENCY:
            return parse_currency
        case Kind.DUNS:
            return parse_duns
        case Kind.LIST:
            return parse_list
        case _:
            return parse_text


# --------------------------------------------------------------------------- locale forms
# Numbers and dates written as text in a locale's way (1.234,50; 15.01.2027;
# 12/31/2027). The parsers above read the ISO / English forms only; the
# validator reads a column in one of these forms when every value of it reads
# so unambiguously, or when --locale says so (bulkref.validation.schema).

_COMMA_NUMBER = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$")
_NUMERIC_DATE = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})$")


def comma_number(value: object) -> float | None:
    """A decimal-comma number (``10000,75``, ``1.234,50``), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _number(value)
    text = str(value).strip().replace("\u00a0", "").replace(" ", "")
    if not _COMMA_NUMBER.match(text):
        return None
    return float(text.replace(".", "").replace(",", "."))


def parse_comma_decimal(s: pd.Series) -> Parsed:
    typed = s.map(comma_number, na_action="ignore").astype(object)
    return typed, typed.isna() & ~_blank(s)


def numeric_date(value: object, day_first: bool) -> dt.date | None:
    """``15.01.2027``, ``31/12/2027`` (day first) or ``12/31/2027`` (month first); ISO and Excel dates too."""
    if (iso := _date(value)) is not None or not isinstance(value, str):
        return iso
    m = _NUMERIC_DATE.match(value.strip())
    if m is None:
        return None
    first, second, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
    day, month = (first, second) if day_first else (second, first)
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_numeric_date(day_first: bool) -> Callable[[pd.Series], Parsed]:
    def parse(s: pd.Series) -> Parsed:
        typed = s.map(lambda v: numeric_date(v, day_first), na_action="ignore").astype(object)
        return typed, typed.isna() & ~_blank(s)

    return parse


def date_order(texts: list[str]) -> str | None:
    """How numeric dates that are not ISO read: "day" (a dot, or a first part
    above 12 somewhere), "month" (a second part above 12), "ambiguous" (every
    part 12 or less), or None (some value is no numeric date, or both orders
    have evidence)."""
    day = month = False
    for text in texts:
        m = _NUMERIC_DATE.match(text.strip())
        if m is None:
            return None
        first, second = int(m.group(1)), int(m.group(3))
        day |= m.group(2) == "." or first > 12
        month |= second > 12
    if day and month:
        return None
    return "day" if day else "month" if month else "ambiguous"


def ambiguous_date(value: object) -> bool:
    """A numeric date whose two first parts could both be the month (01/02/2027)."""
    m = _NUMERIC_DATE.match(value.strip()) if isinstance(value, str) else None
    return m is not None and m.group(2) != "." and int(m.group(1)) <= 12 and int(m.group(3)) <= 12
