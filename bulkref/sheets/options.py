"""How inputs are read, where the command line or the environment says otherwise:
the largest input file read, and the locale that decides how ambiguous dates
and numbers written as text are read.

A setting comes from, in order: :func:`reading` (the command line's
``--max-file-size`` and ``--locale`` use it), the environment
(``BULKREF_MAX_FILE_SIZE``, ``BULKREF_LOCALE``), the default. The settings
are a context variable rather than parameters, so that ``plan`` and ``apply``
carry them to the reader without every stage between taking them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from bulkref.errors import BadOption

__all__ = ["DEFAULT_MAX_FILE_SIZE", "Locale", "current", "parse_locale", "parse_size", "reading"]

# Far above any referral sheet (100,000 rows of every template column are
# ~20 MB as .xlsx, ~60 MB as CSV), far below what hurts a laptop.
DEFAULT_MAX_FILE_SIZE = 256 * 1024 * 1024
MAX_FILE_SIZE_ENV = "BULKREF_MAX_FILE_SIZE"
LOCALE_ENV = "BULKREF_LOCALE"

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?b?)\s*$", re.IGNORECASE)

# Languages that write 1.234,50 (decimal comma); the rest write 1,234.50.
_DECIMAL_COMMA = frozenset(
    {
        "de",
        "fr",
        "es",
        "it",
        "nl",
        "pt",
        "da",
        "sv",
        "nb",
        "nn",
        "no",
        "fi",
        "is",
        "pl",
        "cs",
        "sk",
        "sl",
        "hr",
        "sr",
        "bs",
        "hu",
        "ro",
        "bg",
        "ru",
        "uk",
        "be",
        "lt",
        "lv",
        "et",
        "el",
        "tr",
        "id",
        "vi",
        "ca",
        "eu",
        "gl",
        "af",
        "az",
        "kk",
        "ka",
        "mk",
        "sq",
    }
)
# Where the month comes first (01/02/2027 is January 2); elsewhere the day does.
_MONTH_FIRST = frozenset({"en-us", "en-ph", "en-ca", "es-us", "en-um", "en-as", "en-gu", "en-pr"})
_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True)
class Locale:
    """The two things a locale decides for a sheet of text: the decimal mark, the date order."""

    tag: str
    decimal_comma: bool
    day_first: bool


@dataclass(frozen=True)
class Options:
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    locale: Locale | None = None


_override: ContextVar[Options | None] = ContextVar("bulkref_read_options", default=None)


def parse_size(text: str, where: str = "--max-file-size") -> int:
    """Bytes from ``300MB``, ``1.5GB``, ``4096`` (binary units: 1 MB = 1024 KB)."""
    m = _SIZE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise BadOption(f"{where} '{text}' is not a size: write it like 300MB, 2GB or a number of bytes.")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_locale(text: str, where: str = "--locale") -> Locale:
    """A language tag (de-DE, en-US, fr, en_GB) as the two choices it makes."""
    if not _TAG.match(text.strip()):
        raise BadOption(
            f"{where} '{text}' is not a locale: write a language tag like de-DE, en-GB, en-US or fr-FR."
        )
    tag = text.strip().replace("_", "-").lower()
    language = tag.split("-")[0]
    # Swiss German and Liechtenstein write 1'234.50: a decimal point.
    comma = language in _DECIMAL_COMMA and tag not in ("de-ch", "de-li", "it-ch", "fr-ch")
    return Locale(tag=text.strip(), decimal_comma=comma, day_first=tag not in _MONTH_FIRST)


def current() -> Options:
    """The settings in force: :func:`reading`'s, else the environment's, else the defaults."""
    if (set_here := _override.get()) is not None:
        return set_here
    size = os.environ.get(MAX_FILE_SIZE_ENV, "").strip()
    locale = os.environ.get(LOCALE_ENV, "").strip()
    return Options(
        max_file_size=parse_size(size, MAX_FILE_SIZE_ENV) if size else DEFAULT_MAX_FILE_SIZE,
        locale=parse_locale(locale, LOCALE_ENV) if locale else None,
    )


@contextmanager
def reading(max_file_size: int | None = None, locale: Locale | None = None) -> Iterator[Options]:
    """Read inputs with these settings inside the block; None keeps the environment's or the default."""
    base = current()
    options = Options(
        max_file_size=max_file_size if max_file_size is not None else base.max_file_size,
        locale=locale if locale is not None else base.locale,
    )
    token = _override.set(options)
    try:
        yield options
    finally:
        _override.reset(token)
