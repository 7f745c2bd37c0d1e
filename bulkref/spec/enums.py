"""The enumerations of ``data/enums.toml``, and tolerant matching against them."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

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


# eq=False: identity hashing, so the loaded tables can key a cache.
@dataclass(frozen=True, eq=False)
class Enums:
    lists: dict[str, tuple[str, ...]]
    status_substatus: dict[str, tuple[str, ...]]
    status_transitions: dict[str, tuple[str, ...]]
    solution_plays: dict[str, tuple[str, ...]]

    def values(self, name: str) -> tuple[str, ...]:
        return self.lists[name]

    def canonical(self, name: str, value: str) -> str | None:
        """The allowed spelling of ``value`` in list ``name``, or None."""
        return _folded(self, name).get(fold(value))


@cache
def _folded(enums: Enums, name: str) -> dict[str, str]:
    return {fold(v): v for v in enums.lists[name]}


@cache
def load() -> Enums:
    raw = tomllib.loads(resources.files("bulkref").joinpath("data/enums.toml").read_text(encoding="utf-8"))
    lists = {k: tuple(v) for k, v in raw["lists"].items()}
    plays = {k: tuple(v) for k, v in raw["solution_plays"].items()}
    # The areas and the plays are lists in their own right (drop-downs, checks);
    # derived here so the table stays the single place they are written.
    lists["solution_area"] = tuple(plays)
    lists["solution_play"] = tuple(dict.fromkeys(p for ps in plays.values() for p in ps))
    return Enums(
        lists=lists,
        status_substatus={k: tuple(v) for k, v in raw["status_substatus"].items()},
        status_transitions={k: tuple(v) for k, v in raw["status_transitions"].items()},
        solution_plays=plays,
    )


def allowed_values(name: str) -> tuple[str, ...]:
    """The allowed values of list ``name`` of data/enums.toml (``referral_status``,
    ``direction``, ...): what a form offers as choices."""
    return load().values(name)
