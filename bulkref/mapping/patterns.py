"""The regular expressions a mapping file supplies (``pattern``, ``[patterns]``,
``[[skip]]``), run on RE2: time linear in the cell, whatever the pattern.

Python's ``re`` backtracks: ``'^(a+)+$'`` against thirty a's and a b takes
minutes, holding the GIL, so one mapping stalled every request of ``bulkref
serve``. RE2 (``google-re2``) never backtracks; in exchange it has no
backreferences, lookaround, atomic groups or possessive quantifiers, and a
pattern that uses one is refused, naming the feature. Python's syntax is kept
otherwise: the pattern must first be one Python reads, then the few spellings
RE2 reads differently are rewritten (``translate``): ``\\d``, ``\\w`` and ``\\s``
mean Unicode digits, word characters and spaces as in Python (RE2's are
ASCII), and ``\\Z``, ``\\uXXXX``, ``\\N{name}``, ``{,n}`` and ``(?#...)`` work.
``\\b`` stays RE2's: a boundary next to an ASCII letter, digit or underscore.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Mapping
from typing import Any, Protocol

import re2
from re2 import _re2  # the binding under re2's re-like wrapper: see Pattern

__all__ = ["Match", "Pattern", "PatternError", "translate"]

# Python's \s for text: str.isspace(), the separators and the C0/C1 ones it counts.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f\x85\p{Z}"
# Python's \w for text: str.isalnum() (every letter and number) and the underscore.
_WORD = r"\p{L}\p{N}_"
_OUTSIDE = {
    "d": r"\p{Nd}",
    "D": r"\P{Nd}",
    "w": f"[{_WORD}]",
    "W": f"[^{_WORD}]",
    "s": f"[{_SPACE}]",
    "S": f"[^{_SPACE}]",
}
_INSIDE = {"d": r"\p{Nd}", "D": r"\P{Nd}", "w": _WORD, "s": _SPACE, "b": r"\x08"}
_UP_TO = re.compile(r"\{,(\d+)\}")  # Python's {,n}, which RE2 reads as text

# RE2's complaint -> what the user wrote, in words.
_FEATURES = (
    ("(?=", "a lookahead (?=...)"),
    ("(?!", "a negative lookahead (?!...)"),
    ("(?<=", "a lookbehind (?<=...)"),
    ("(?<!", "a negative lookbehind (?<!...)"),
    ("(?P=", "a backreference (?P=name)"),
    ("(?P", "a backreference (?P=name)"),
    ("(?>", "an atomic group (?>...)"),
    ("(?x", "verbose mode (?x)"),
    ("(?a", "the ASCII flag (?a)"),
    ("(?u", "the flag (?u)"),
    ("(?L", "the locale flag (?L)"),
    ("*+", "a possessive quantifier (*+)"),
    ("++", "a possessive quantifier (++)"),
    ("?+", "a possessive quantifier (?+)"),
    ("}+", "a possessive quantifier ({n}+)"),
)
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print each refusal on stderr; the message says it


class PatternError(ValueError):
    """A pattern bulkref does not run; the message says why, for the mapping's own message.
    ``unsupported``: one Python reads, but with a feature RE2 lacks."""

    unsupported = False


class _Unsupported(PatternError):
    unsupported = True


class Match(Protocol):
    def group(self, key: str | int = 0, /) -> str | None: ...


class _Match:
    """A match over the cell's UTF-8 bytes: a group is decoded only when asked for."""

    __slots__ = ("_data", "_names", "_spans")

    def __init__(self, data: bytes, spans: list[tuple[int, int]], names: Mapping[str, int]) -> None:
        self._data, self._spans, self._names = data, spans, names

    def group(self, key: str | int = 0, /) -> str | None:
        start, end = self._spans[self._names[key] if isinstance(key, str) else key]
        return None if start < 0 else self._data[start:end].decode("utf-8", "surrogatepass")


class Pattern:
    """One user-supplied pattern, compiled by RE2: ``search``, ``fullmatch``,
    ``groupindex`` and ``groups`` as Python's, ``pattern`` the text as written.

    It calls RE2's binding (``re2._re2``) on the cell's UTF-8 bytes, not re2's
    re-like wrapper: that one maps every match's offsets back to characters, and
    cost 4 to 20 µs a cell, 15 to 30 times Python's re, where this costs a
    quarter of it. The dependency is pinned below re2's next major version."""

    __slots__ = ("_compiled", "_names", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        with warnings.catch_warnings():  # Python's "possible nested set" warnings are no error here
            warnings.simplefilter("ignore")
            try:
                re.compile(pattern)
            except re.error as e:
                raise PatternError(f"is not a regular expression Python reads ({e})") from None
        compiled: Any = _re2.RE2(translate(pattern).encode("utf-8", "surrogatepass"), _OPTIONS)
        if not compiled.ok():
            raise _Unsupported(_unsupported(_text(compiled.error())))
        self._compiled = compiled
        self._names: dict[str, int] = {
            name.decode("utf-8"): number for name, number in compiled.NamedCapturingGroups()
        }

    @property
    def groupindex(self) -> Mapping[str, int]:
        return dict(self._names)

    @property
    def groups(self) -> int:
        return int(self._compiled.NumberOfCapturingGroups())

    def search(self, text: str) -> Match | None:
        return self._match(_re2.RE2.Anchor.UNANCHORED, text)

    def fullmatch(self, text: str) -> Match | None:
        return self._match(_re2.RE2.Anchor.ANCHOR_BOTH, text)

    def _match(self, anchor: Any, text: str) -> Match | None:
        # surrogatepass: a lone surrogate in a cell is matched as the bytes it is, not an error.
        data = text.encode("utf-8", "surrogatepass")
        spans = self._compiled.Match(anchor, data, 0, len(data))
        return None if spans[0][0] < 0 else _Match(data, spans, self._names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r})"

    def __reduce__(self) -> tuple[type[Pattern], tuple[str]]:  # compiled again where it is unpickled
        return Pattern, (self.pattern,)


def translate(pattern: str) -> str:
    """``pattern`` (one Python reads) as RE2 reads it to the same effect. Raises
    ``PatternError`` for ``\\W`` or ``\\S`` inside brackets, which RE2 cannot say
    in Unicode (no set in a set)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if in_class and nxt in "WS":
                raise _Unsupported(
                    f"uses \\{nxt} inside brackets, which bulkref does not run (RE2 cannot say it "
                    "in Unicode there: list what it excludes in a [^...] of its own)"
                )
            table = _INSIDE if in_class else _OUTSIDE
            if nxt in table and (in_class or nxt != "b"):
                out.append(table[nxt])
                i += 2
            elif nxt == "Z":
                out.append(r"\z")
                i += 2
            elif nxt in "uU":
                width = 4 if nxt == "u" else 8
                out.append(f"\\x{{{pattern[i + 2 : i + 2 + width]}}}")
                i += 2 + width
            elif nxt == "N" and pattern.startswith("{", i + 2):
                end = pattern.index("}", i + 3)
                out.append(f"\\x{{{ord(unicodedata.lookup(pattern[i + 3 : end])):x}}}")
                i = end + 1
            else:
                out.append(pattern[i : i + 2])
                i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            # RE2 reads [:alpha:] inside brackets as a class; Python as the characters.
            out.append("\\[" if ch == "[" else ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # first in the brackets, ] is itself
                out.append("\\]")
                i += 1
            continue
        if pattern.startswith("(?#", i):  # a comment, up to the first )
            i = pattern.index(")", i) + 1
            continue
        if ch == "{" and (m := _UP_TO.match(pattern, i)):
            out.append(f"{{0,{m.group(1)}}}")
            i = m.end()
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _text(detail: bytes | str) -> str:
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


def _unsupported(reason: str) -> str:
    for marker, feature in _FEATURES:
        if marker in reason:
            return f"uses {feature}, which bulkref does not run"
    if re.search(r"invalid escape sequence: \\[1-9]", reason):
        return f"uses a backreference ({reason.rsplit(': ', 1)[-1]}), which bulkref does not run"
    if "repetition size" in reason:
        return "repeats something more than 1000 times, which bulkref does not run"
    if "too large" in reason:
        return "is too large to run"
    return f"is not a pattern bulkref runs ({reason})"
