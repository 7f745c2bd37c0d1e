"""Checking an .xlsx file's parts before and while the native reader reads it.

Before: the zip's central directory (``infolist``) says how large each part
is and how well it compressed; a part that inflates more than a workbook
ever does (a zip bomb), too many parts, or parts larger than the limits are
refused before anything is inflated.

While the native reader runs (in its own process, ``bulkref.sheets.native``),
every part is inflated once here, in bounded chunks and never beyond its
declared size (Python's zipfile stops there and checks the CRC), so a part
that lies about its size, a DOCTYPE (the root of every XML entity bomb) or a
damaged stream stops the read early. The same pass finds, in the worksheet
parts, what calamine does not report: hidden rows, and formula cells that
were never calculated (a script wrote them, Excel never saved a value).
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = ["PartFacts", "ZipTrouble", "check_parts", "formula_cells", "row_tags", "scan_parts"]

CHUNK = 1 << 20
MAX_CARRY = 4 << 20  # the most of a worksheet part held back for a cell cut by a chunk
MAX_PARTS = 10_000
# Worksheet XML compresses 10-20 times (the 50,000-row benchmark: 13.8); a
# deflate bomb reaches 1,000. Small parts may compress better, they cannot hurt.
MAX_RATIO = 100
RATIO_FROM = 16 * 1024 * 1024
# All parts inflated: the file-size limit times this (4 GB by default).
INFLATED_PER_BYTE_ALLOWED = 16


class ZipTrouble(Exception):
    """A reason the workbook's parts are not read, as a clause for the user."""


@dataclass
class PartFacts:
    """What the pass over one worksheet part found."""

    hidden: list[int] = field(default_factory=list)  # Excel row numbers
    uncalculated: list[tuple[int, int]] = field(default_factory=list)  # (Excel row, 0-based column)


def check_parts(z: zipfile.ZipFile, max_file_size: int) -> int:
    """Refuse a zip whose directory promises more than a workbook holds; the
    total size of its parts when inflated, otherwise."""
    infos = z.infolist()
    if len(infos) > MAX_PARTS:
        raise ZipTrouble(f"it has {len(infos):,} parts, more than any workbook")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise ZipTrouble("its parts are encrypted")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FROM and ratio > MAX_RATIO:
            raise ZipTrouble(
                f"its part {info.filename} inflates {ratio:,.0f} times (a zip bomb, or badly damaged)"
            )
        total += info.file_size
    if total > max_file_size * INFLATED_PER_BYTE_ALLOWED:
        raise ZipTrouble(f"its parts hold {total / 1024**3:,.1f} GB once inflated, more than bulkref reads")
    return total


def scan_parts(
    source: Path, worksheets: dict[str, str], stopped: Callable[[], bool] = lambda: False
) -> dict[str, PartFacts]:
    """Inflate every part once (bounded, CRC-checked); for the worksheet parts
    (part name -> sheet name) also gather their :class:`PartFacts`. Raises
    ZipTrouble on damage or a DOCTYPE; returns early when ``stopped()``."""
    facts: dict[str, PartFacts] = {}
    try:
        with zipfile.ZipFile(source) as z:
            for info in z.infolist():
                if stopped():
                    break
                with z.open(info) as f:
                    if info.filename in worksheets:
                        facts[worksheets[info.filename]] = _sheet_facts(_no_doctype(f, info.filename))
                    else:
                        for _ in _no_doctype(f, info.filename):
                            if stopped():
                                break
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, NotImplementedError) as e:
        raise ZipTrouble(f"a part is damaged ({e})") from None
    return facts


def _no_doctype(stream: IO[bytes], name: str) -> Iterator[bytes]:
    """The part's chunks; a DOCTYPE in an XML part is refused: Office never
    writes one, and entity bombs (billion laughs) need it."""
    first = True
    while chunk := stream.read(CHUNK):
        if first and name.endswith((".xml", ".rels")) and b"<!DOCTYPE" in chunk[:4096].upper():
            raise ZipTrouble(f"its part {name} declares a DOCTYPE, which no workbook has (an XML bomb?)")
        first = False
        yield chunk


def _sheet_facts(chunks: Iterator[bytes]) -> PartFacts:
    facts = PartFacts()
    for kind, a, b in _sheet_events(chunks):
        if kind == "row":
            if _HIDDEN.search(b):
                facts.hidden.append(a)
        else:
            facts.uncalculated.append((a, int(b)))
    return facts


_ROOT = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?worksheet\b")
_ROW_NUMBER = re.compile(rb"""\br=["'](\d+)""")
_HIDDEN = re.compile(rb"""\bhidden=["'](?:1|true)""")
_CELL_REF = re.compile(rb"""\br=["']([A-Za-z]{1,3})(\d+)""")
_STR_TYPE = re.compile(rb"""\bt=["']str["']""")


def row_tags(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(row number, attributes) of every row tag of a worksheet part, in order."""
    for kind, number, attrs in _sheet_events(iter(lambda: stream.read(CHUNK), b"")):
        if kind == "row":
            yield number, attrs


def formula_cells(stream: IO[bytes]) -> list[tuple[int, int]]:
    """(Excel row, 0-based column) of every formula cell without a saved value."""
    return [(a, int(b)) for kind, a, b in _sheet_events(iter(lambda: stream.read(CHUNK), b"")) if kind == "f"]


def _sheet_events(chunks: Iterator[bytes]) -> Iterator[tuple[str, int, bytes]]:
    """("row", number, attributes) for each row tag and ("f", row, column) for
    each uncalculated formula cell, streaming: a regex pass in chunks, since
    calamine reports neither and a second XML parse of a large sheet costs
    seconds."""
    carry = b""
    root = None
    for chunk in chunks:
        carry += chunk
        if (root := _ROOT.search(carry)) is not None:
            break
    prefix = root.group(1) + b":" if root and root.group(1) else b""
    p = re.escape(prefix)
    # A literal "<row" prefix lets the regex engine skip ahead quickly.
    tag = re.compile(rb"<" + p + rb"row\b([^>]*)>")
    formula = re.compile(rb"<" + p + rb"f[\s>/]")
    cell_start = b"<" + prefix + b"c"
    cell_end = b"</" + prefix + b"c>"
    value = re.compile(rb"<" + p + rb"v(?:\s[^>]*)?>\s*[^<\s]")
    number = 0
    pending = True
    while pending:
        chunk = next(chunks, b"")
        if chunk:
            buf = carry + chunk
            # Keep a possibly incomplete cell for the next round: cut at the last
            # cell start. A cell larger than MAX_CARRY (a giant inline string,
            # never a formula) is cut at its last "<" instead, so that the carry
            # stays bounded ("<" never occurs inside a tag: no tag is ever cut).
            cut = buf.rfind(cell_start)
            if cut <= 0:
                if len(buf) <= MAX_CARRY:
                    carry = buf
                    continue
                cut = buf.rfind(b"<")
            done, carry = (buf[:cut], buf[cut:]) if cut > 0 else (buf, b"")
        else:
            done, carry, pending = carry, b"", False
        rows = [(m.start(), m.group(1)) for m in tag.finditer(done)]
        formulas = [m.start() for m in formula.finditer(done)]
        if not formulas:
            for _, attrs in rows:
                r = _ROW_NUMBER.search(attrs)
                # r is optional in the file format: a row without it follows the last.
                number = int(r.group(1)) if r else number + 1
                yield "row", number, attrs
            continue
        events = sorted([(at, "row", attrs) for at, attrs in rows] + [(at, "f", b"") for at in formulas])
        for at, kind, attrs in events:
            if kind == "row":
                r = _ROW_NUMBER.search(attrs)
                number = int(r.group(1)) if r else number + 1
                yield "row", number, attrs
                continue
            start = done.rfind(cell_start, 0, at)
            end = done.find(cell_end, at)
            if start < 0:
                continue
            head = done[start : done.find(b">", start) + 1]
            body = done[at : end if end >= 0 else len(done)]
            if value.search(body) or _STR_TYPE.search(head):
                continue
            ref = _CELL_REF.search(head)
            if ref is None:
                continue
            yield "f", int(ref.group(2)), str(_column(ref.group(1))).encode()


def _column(letters: bytes) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n - 1
