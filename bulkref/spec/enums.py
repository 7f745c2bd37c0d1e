"""The enumerations of ``data/enums.toml`` and the Services co-sell taxonomy, and
tolerant matching against them.

The taxonomy (solution area -> solution plays) is the one table Partner Center
changes every fiscal year without publishing it anywhere bulkref can read: the
Referral resources page asks for "the updated Solution Areas and Solution Plays"
of FY26 and lists none. bulkref ships the last table published
(``data/taxonomy.toml``, FY24) and reads a newer one from a file of the same
shape (:func:`using_taxonomy`: ``--taxonomy FILE``, else ``BULKREF_TAXONOMY``).
A value outside the table in force is a warning, not an error: Partner Center
decides (``TAXONOMY_LISTS``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from bulkref.errors import TaxonomyError

_FOLD = re.compile(r"[\s_\-]+")


def fold(text: str) -> str:
    """The form used to compare a cell with an allowed value: case, spaces,
    hyphens and underscores do not count, so ``have not decided`` matches
    ``HaveNotDecided`` and ``partner led`` matches ``Partner-led``."""
    return _FOLD.sub("", text).casefold()


#: How alike two texts must be for "did you mean" (difflib's ratio, after folding).
CLOSE_ENOUGH = 0.7


def closest(text: str, options: Iterable[str], cutoff: float = CLOSE_ENOUGH) -> str | None:
    """The option a person most likely meant by ``text`` (compared folded, returned
    as written), or None when none is close enough: every "did you mean" of
    bulkref's messages comes from here."""
    by_fold: dict[str, str] = {}
    for option in options:
        by_fold.setdefault(fold(option), option)
    close = difflib.get_close_matches(fold(text), list(by_fold), n=1, cutoff=cutoff)
    return by_fold[close[0]] if close else None


#: The lists the taxonomy makes. A value outside them is a warning and is sent as
#: written: the table changes every fiscal year, and Partner Center may hold a
#: newer one than bulkref has (the project's rule: never refuse what Partner
#: Center accepts). Partner Role is not among them: its list is documented and
#: the fiscal-year update names areas and plays only.
TAXONOMY_LISTS: Final = frozenset({"solution_area", "solution_play"})

#: Names the taxonomy file for the commands that read spreadsheets (docs/cli.md).
TAXONOMY_ENV: Final = "BULKREF_TAXONOMY"

# A taxonomy is a few dozen lines; anything far larger is not one (or is /dev/zero).
_MAX_TAXONOMY_BYTES: Final = 1 << 20


@dataclass(frozen=True, eq=False)
class Taxonomy:
    """The Services co-sell solution areas, each with its solution plays, of one
    fiscal year; ``source`` is the file it was read from (None: bulkref's own)."""

    fiscal_year: str
    solution_plays: dict[str, tuple[str, ...]]
    source: str | None = None

    @property
    def areas(self) -> tuple[str, ...]:
        return tuple(self.solution_plays)

    @property
    def plays(self) -> tuple[str, ...]:
        """Every play once, in the order of first mention (a play may serve several areas)."""
        return tuple(dict.fromkeys(p for ps in self.solution_plays.values() for p in ps))

    def known_by(self) -> str:
        """Who holds the table, for messages: "bulkref knows" or "of fy26.toml"."""
        return "bulkref knows" if self.source is None else f"of {Path(self.source).name}"

    def toml(self) -> str:
        """The table as a taxonomy file: what ``bulkref taxonomy`` prints and
        :func:`read_taxonomy` reads back to the same table."""
        lines = [
            *TAXONOMY_HEADER,
            "",
            f"fiscal_year = {_toml_text(self.fiscal_year)}",
            "",
            "[solution_plays]",
        ]
        for area, plays in self.solution_plays.items():
            lines.append(f"{_toml_text(area)} = [")
            lines += [f"    {_toml_text(play)}," for play in plays]
            lines.append("]")
        return "\n".join(lines) + "\n"


# The comment at the top of a printed taxonomy: the file documents its own shape.
TAXONOMY_HEADER: Final = (
    "# bulkref taxonomy: the Services co-sell solution areas and their solution plays.",
    "# Solution Area and Solution Play are checked against this table: a value not in it",
    "# is a warning and is sent as written (Partner Center decides). To use a newer table,",
    "# edit this file and pass it: --taxonomy FILE, or BULKREF_TAXONOMY=FILE.",
    "#",
    '# fiscal_year: the year of the table, as messages name it ("FY26").',
    '# [solution_plays]: one line per solution area: "Area" = ["Play", "Play", ...].',
)


def _toml_text(text: str) -> str:
    # A JSON string is a TOML basic string: the same escapes (\" \\ \n \uXXXX), and
    # the loader refuses the control characters JSON would leave as they are.
    return json.dumps(text, ensure_ascii=False)


# eq=False: identity hashing, so the loaded tables can key a cache.
@dataclass(frozen=True, eq=False)
class Enums:
    lists: dict[str, tuple[str, ...]]
    status_substatus: dict[str, tuple[str, ...]]
    status_transitions: dict[str, tuple[str, ...]]
    taxonomy: Taxonomy

    @property
    def solution_plays(self) -> dict[str, tuple[str, ...]]:
        """Solution area -> its plays, of the taxonomy in force."""
        return self.taxonomy.solution_plays

    def values(self, name: str) -> tuple[str, ...]:
        return self.lists[name]

    def canonical(self, name: str, value: str) -> str | None:
        """The allowed spelling of ``value`` in list ``name``, or None."""
        return _folded(self, name).get(fold(value))


@cache
def _folded(enums: Enums, name: str) -> dict[str, str]:
    return {fold(v): v for v in enums.lists[name]}


# The taxonomy file in force in this process, and where its path came from for its
# errors (None: --taxonomy or a caller; else the environment variable). Process-wide
# rather than a context variable: the web app validates and plans in threads of
# its own, which a context variable set by `bulkref serve` would not reach.
_chosen: tuple[str, str | None] | None = None


def _choice() -> tuple[str, str | None] | None:
    if _chosen is not None:
        return _chosen
    named = os.environ.get(TAXONOMY_ENV, "").strip()
    return (named, TAXONOMY_ENV) if named else None


def load() -> Enums:
    """Every list, with the taxonomy in force: :func:`using_taxonomy`'s file, else
    ``BULKREF_TAXONOMY``'s, else bulkref's own. A file is read once per process."""
    return _load(_choice())


@cache
def _load(choice: tuple[str, str | None] | None) -> Enums:
    taxonomy = _builtin_taxonomy() if choice is None else read_taxonomy(Path(choice[0]), origin=choice[1])
    raw = _base()
    lists = {k: tuple(v) for k, v in raw["lists"].items()}
    # The areas and the plays are lists in their own right (drop-downs, checks);
    # derived here so the taxonomy stays the single place they are written.
    lists["solution_area"] = taxonomy.areas
    lists["solution_play"] = taxonomy.plays
    return Enums(
        lists=lists,
        status_substatus={k: tuple(v) for k, v in raw["status_substatus"].items()},
        status_transitions={k: tuple(v) for k, v in raw["status_transitions"].items()},
        taxonomy=taxonomy,
    )


@cache
def _base() -> dict[str, Any]:
    return tomllib.loads(resources.files("bulkref").joinpath("data/enums.toml").read_text(encoding="utf-8"))


@cache
def _builtin_taxonomy() -> Taxonomy:
    text = resources.files("bulkref").joinpath("data/taxonomy.toml").read_text(encoding="utf-8")
    return parse_taxonomy(text, None)


def taxonomy() -> Taxonomy:
    """The Services co-sell taxonomy in force (see :func:`load`)."""
    return load().taxonomy


@contextmanager
def using_taxonomy(path: Path | str, origin: str | None = None) -> Iterator[Taxonomy]:
    """Use the taxonomy file at ``path`` in this process inside the block. It is
    read and checked here, so a bad file stops a command before it reads a sheet;
    ``origin`` names where the path came from in its errors (``BULKREF_TAXONOMY``)."""
    global _chosen
    choice = (str(path), origin)
    found = _load(choice).taxonomy
    before, _chosen = _chosen, choice
    try:
        yield found
    finally:
        _chosen = before


def read_taxonomy(path: Path, origin: str | None = None) -> Taxonomy:
    """The taxonomy file at ``path``; a file that cannot be used is one
    :class:`TaxonomyError` sentence naming it, the line and what is wrong."""
    shown = f"{path} ({origin})" if origin else str(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise TaxonomyError(f"The taxonomy {shown} is a folder: give the path of a .toml file.")
        if not stat.S_ISREG(info.st_mode):
            raise TaxonomyError(f"The taxonomy {shown} is not a regular file: give the path of a .toml file.")
        if info.st_size > _MAX_TAXONOMY_BYTES:
            raise TaxonomyError(
                f"The taxonomy file {shown} is {info.st_size:,} bytes, far more than a table of "
                "solution areas and plays: check the path (`bulkref taxonomy` prints one)."
            )
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TaxonomyError(
            f"The taxonomy file {shown} does not exist: check the path, or start one with "
            "`bulkref taxonomy > taxonomy.toml`."
        ) from None
    except UnicodeDecodeError:
        raise TaxonomyError(f"The taxonomy file {shown} is not UTF-8 text: save it as UTF-8.") from None
    except OSError as e:
        raise TaxonomyError(f"The taxonomy file {shown} could not be read ({e.strerror or e}).") from None
    return parse_taxonomy(text, str(path), shown)


_TOML_AT = re.compile(r"^(.*?)\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"^(.*?)\s*\(at end of document\)$")
_KEYS: Final = ("fiscal_year", "solution_plays")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_taxonomy(text: str, source: str | None, shown: str | None = None) -> Taxonomy:
    """The taxonomy in ``text``, the content of the file ``source`` (None: bulkref's
    own). Its shape (what ``Taxonomy.toml`` writes)::

        fiscal_year = "FY26"

        [solution_plays]
        "AI Business Solutions" = ["Agentic Workflows", ...]

    Names are trimmed; a name twice (ignoring case and spacing, as cells are
    matched), an area without plays or anything else in the file is refused."""
    where = shown or source or "data/taxonomy.toml"

    def bad(line: int | None, what: str) -> TaxonomyError:
        return TaxonomyError(f"The taxonomy file {where}, line {line or 1}: {what}.")

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise bad(*_toml_problem(str(e), text)) from None
    lines = _KeyLines(text)
    for key in doc:
        if key not in _KEYS:
            guess = closest(key, _KEYS)
            hint = f" (did you mean {guess}?)" if guess else ""
            raise bad(
                lines.of(None, key),
                f"'{key}' is not part of a taxonomy file{hint}, which holds fiscal_year = \"FY26\" "
                'and a [solution_plays] table of "Area" = ["Play", ...] lines only',
            )
    year = doc.get("fiscal_year")
    if year is None:
        misplaced = isinstance(doc.get("solution_plays"), dict) and "fiscal_year" in doc["solution_plays"]
        raise bad(
            lines.of("solution_plays", "fiscal_year") if misplaced else 1,
            "fiscal_year belongs above [solution_plays] (TOML reads the lines below a table's header as "
            "part of the table)"
            if misplaced
            else 'fiscal_year is missing: add a line fiscal_year = "FY26" (the year of the table) at the top',
        )
    if not isinstance(year, str) or not year.strip() or _CONTROL.search(year):
        raise bad(lines.of(None, "fiscal_year"), 'fiscal_year must be one line of text, like "FY26"')
    table = doc.get("solution_plays")
    if not isinstance(table, dict) or not table:
        raise bad(
            lines.of(None, "solution_plays"),
            'the file lists no solution areas: add a [solution_plays] table with one line per area, like "AI '
            'Business Solutions" = ["Agentic Workflows"]',
        )
    plays: dict[str, tuple[str, ...]] = {}
    areas_seen: dict[str, str] = {}
    for area, listed in table.items():
        at = lines.of("solution_plays", area)
        if area == "fiscal_year":
            raise bad(at, "fiscal_year belongs above [solution_plays] (TOML reads it as an area there)")
        name = area.strip()
        if not name or _CONTROL.search(name):
            raise bad(at, f"{json.dumps(area)} is not a solution area name: give one line of text")
        if fold(name) in areas_seen:
            raise bad(at, f"'{name}' is the area '{areas_seen[fold(name)]}' again: list each area once")
        areas_seen[fold(name)] = name
        if not isinstance(listed, list) or not listed:
            raise bad(
                at,
                f'the plays of \'{name}\' must be a list of names, like "{name}" = ["Play one", "Play two"]',
            )
        seen: dict[str, str] = {}
        cursor = at  # plays are found in their order, so a play listed twice is found the second time
        for play in listed:
            found = lines.of_text(cursor, play) if isinstance(play, str) else None
            play_at, cursor = (found, found + 1) if found is not None else (at, cursor)
            if not isinstance(play, str) or not play.strip() or _CONTROL.search(play):
                shown_play = json.dumps(play) if isinstance(play, str) else repr(play)
                raise bad(
                    play_at,
                    f"{shown_play} in the plays of '{name}' is not a play name: give one line of text "
                    "in double quotes",
                )
            if fold(play) in seen:
                raise bad(play_at, f"'{play.strip()}' is listed twice under '{name}': list each play once")
            seen[fold(play)] = play.strip()
        plays[name] = tuple(seen.values())
    return Taxonomy(fiscal_year=year.strip(), solution_plays=plays, source=source)


def _toml_problem(error: str, text: str) -> tuple[int | None, str]:
    """tomllib's complaint as (line, what is wrong in words)."""
    if m := _TOML_AT.match(error):
        what, line, at = m.group(1), int(m.group(2)), f", at column {m.group(3)}"
    elif m := _TOML_AT_END.match(error):
        what, line, at = m.group(1), max(1, len(text.splitlines())), ", at the end of the file"
    else:
        what, line, at = error, None, ""
    if what.startswith("Cannot overwrite") or what.startswith("Cannot declare"):
        return line, "a name is given twice (an area listed twice?): give each area, and fiscal_year, once"
    return line, (
        f"this is not valid TOML ({what[:1].lower()}{what[1:]}{at}): check the quotes, commas and "
        'brackets; names need double quotes, like "Security"'
    )


_KEY_AT = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")
_TABLE_AT = re.compile(r"""^\s*\[\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*\]""")


class _KeyLines:
    """The line of a key in a taxonomy file, for its errors: the file is flat (a
    key, one table of keys), so a line-by-line look is enough."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.found: dict[tuple[str | None, str], int] = {}
        table: str | None = None
        for n, line in enumerate(self.lines, 1):
            if m := _TABLE_AT.match(line):
                table = _unquote(m.group(1))
                self.found.setdefault((None, table), n)
            elif m := _KEY_AT.match(line):
                self.found.setdefault((table, _unquote(m.group(1))), n)

    def of(self, table: str | None, key: str) -> int | None:
        return self.found.get((table, key))

    def of_text(self, start: int | None, text: str) -> int | None:
        """The first line from ``start`` on that holds ``text`` in quotes (a play in its area's list)."""
        quoted = (json.dumps(text, ensure_ascii=False), f"'{text}'")
        for n in range(start or 1, len(self.lines) + 1):
            if any(q in self.lines[n - 1] for q in quoted):
                return n
        return None


def _unquote(key: str) -> str:
    if key.startswith('"'):
        try:
            return str(tomllib.loads(f"k = {key}")["k"])
        except tomllib.TOMLDecodeError:
            return key
    return key.strip("'")


def allowed_values(name: str) -> tuple[str, ...]:
    """The allowed values of list ``name`` of data/enums.toml (``referral_status``,
    ``direction``, ...): what a form offers as choices."""
    return load().values(name)
