"""A CSV file's lines are split as io.StringIO(text, newline="") splits them (the reader
no longer makes that copy of the text: four bytes a character)."""

from __future__ import annotations

import csv
import io

import pytest

from bulkref.sheets.reader import _lines

TEXTS = [
    "a,b\r\nc,d\n",
    "a\rb\r\nc",
    'x,"multi\nline",y\n\nz',
    'x,"cr\r\ninside",y\r\n',
    "",
    "\n\n",
    "a,b",
    "q\r",
    "é,\u2028,\x0c,\x85\n",
    "\r\r\n\n\r",
]


@pytest.mark.parametrize("text", TEXTS)
def test_lines_and_rows_are_those_of_stringio(text: str) -> None:
    assert list(_lines(text)) == list(io.StringIO(text, newline=""))
    assert list(csv.reader(_lines(text))) == list(csv.reader(io.StringIO(text, newline="")))
