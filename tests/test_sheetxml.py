"""Streaming rows into a workbook skeleton: the cells, the zip, the atomic replacement."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import IO, Any

import openpyxl
import pytest
from openpyxl.cell import WriteOnlyCell
from python_calamine import CalamineWorkbook

from bulkref.errors import BulkrefError
from bulkref.sheets import xlsxstream as sheetxml


def test_text_cells_are_inline_strings_never_formulas() -> None:
    assert sheetxml.text_cell("A2", "plain") == '<c r="A2" t="inlineStr"><is><t>plain</t></is></c>'
    assert sheetxml.text_cell("A2", "=1+1", 3, 7) == '<c r="A2" s="7" t="inlineStr"><is><t>=1+1</t></is></c>'
    assert sheetxml.text_cell("A2", "=1+1", 3) == '<c r="A2" s="3" t="inlineStr"><is><t>=1+1</t></is></c>'
    assert sheetxml.t_element(" a<b & c\r ") == '<t xml:space="preserve"> a&lt;b &amp; c&#13; </t>'
    assert sheetxml.t_element("bad\x01char") == "<t>bad\ufffdchar</t>"
    assert len(sheetxml.clean("x" * 40_000)) == sheetxml.MAX_CELL_TEXT


def test_numbers_and_dates() -> None:
    assert sheetxml.number_cell("B2", 48000.5, 4) == '<c r="B2" s="4" t="n"><v>48000.5</v></c>'
    assert sheetxml.number_cell("B2", 7) == '<c r="B2" t="n"><v>7</v></c>'
    assert "inlineStr" in sheetxml.number_cell("B2", float("nan"))
    assert sheetxml.excel_serial(dt.date(1900, 3, 1)) == 61
    assert sheetxml.excel_serial(dt.date(2027, 3, 31)) == 46477
    assert sheetxml.excel_serial(dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)) == 45352.5
    paris = dt.timezone(dt.timedelta(hours=1))
    assert sheetxml.excel_serial(dt.datetime(2024, 3, 1, 13, tzinfo=paris)) == 45352.5


def _skeleton() -> tuple[io.BytesIO, str, int, int]:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Data"
    ws.append(["Name", "When", "Amount"])
    when = WriteOnlyCell(ws)
    when.number_format = "yyyy-mm-dd"
    quoted = WriteOnlyCell(ws)
    quoted.quotePrefix = True
    ids = int(when.style_id), int(quoted.style_id)  # registered before the save writes the styles
    buf = io.BytesIO()
    wb.save(buf)
    return buf, ws.path.lstrip("/"), *ids


def test_insert_rows_streams_into_the_sheet(tmp_path: Path) -> None:
    skeleton, part, date_style, quoted = _skeleton()
    rows = (
        sheetxml.row_xml(
            n,
            [
                sheetxml.text_cell(f"A{n}", f"=row {n}", 0, quoted),
                sheetxml.number_cell(f"B{n}", sheetxml.excel_serial(dt.date(2026, 1, n)), date_style),
                sheetxml.number_cell(f"C{n}", n * 1.5),
            ],
        )
        for n in range(2, 12)
    )
    out = tmp_path / "x.xlsx"
    with out.open("wb") as f:
        sheetxml.insert_rows(skeleton, part, sheetxml.chunks(rows, size=3), f, dimension="A1:C11")
    ws = openpyxl.load_workbook(out)["Data"]
    assert ws.max_row == 11 and ws["A1"].value == "Name"
    assert ws["A2"].value == "=row 2" and ws["A2"].data_type == "s" and ws["A2"].quotePrefix
    assert ws["B11"].value == dt.datetime(2026, 1, 11) and ws["C11"].value == 16.5
    assert b'<dimension ref="A1:C11"/>' in zipfile.ZipFile(out).read(part)
    data = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("Data").to_python()
    assert data[1][:2] == ["=row 2", dt.date(2026, 1, 2)]


def test_insert_rows_into_an_empty_sheet(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    buf = io.BytesIO()
    wb.save(buf)
    out = io.BytesIO()
    sheetxml.insert_rows(
        buf, ws.path.lstrip("/"), [sheetxml.row_xml(1, [sheetxml.text_cell("A1", "x")]).encode()], out
    )
    assert openpyxl.load_workbook(out).active["A1"].value == "x"  # type: ignore[index]


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    out.write_text("old")

    def fail(f: IO[Any]) -> None:
        f.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sheetxml.atomic_write(out, "w", fail)
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.csv"]
    sheetxml.atomic_write(out, "w", lambda f: f.write("new,é"))
    assert out.read_bytes() == "\ufeffnew,é".encode()
    with pytest.raises(BulkrefError, match="does not exist"):
        sheetxml.atomic_write(tmp_path / "no" / "f.csv", "w", lambda f: None, what="export")


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "Seattle",
        '=HYPERLINK("x")',
        "+1 425 555 0100",
        "a & b <c>",
        " leading blank",
        "trailing blank ",
        "line\r\nbreak",
        "bell\x07",
        "x" * (sheetxml.MAX_CELL_TEXT + 5),
        "",
    ],
)
def test_text_cells_make_the_xml_text_cell_makes(text: str) -> None:
    # The column writer of a large sheet keeps cells for repeated texts and skips
    # escaping where nothing needs it: the XML must still be text_cell's, the
    # first time and from the cache.
    for style, quoted in ((0, None), (3, 4), (5, None)):
        cells = sheetxml.TextCells(style, quoted, keep=1)
        expected = sheetxml.text_cell("B7", text, style, quoted)
        assert cells("B7", text) == expected
        assert cells("B7", text) == expected
        assert cells("C12", text) == sheetxml.text_cell("C12", text, style, quoted)


def test_text_cells_keep_only_so_many_texts() -> None:
    cells = sheetxml.TextCells(keep=3)
    for n in range(10):
        assert cells("A1", f"t{n}") == sheetxml.text_cell("A1", f"t{n}")
    assert len(cells.tails) == 3
