"""The checks of a workbook's parts, and the read options, on their own."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

import bulkref.sheets.xlsxcheck as xlsxcheck
from bulkref.errors import BulkrefError
from bulkref.sheets.options import current, parse_locale, parse_size, reading
from bulkref.sheets.xlsxcheck import ZipTrouble, check_parts, formula_cells

SHEET = (
    b'<x:worksheet xmlns:x="urn:x"><x:sheetData>'
    b'<x:row r="1"><x:c r="A1" t="s"><x:v>0</x:v></x:c><x:c r="B1"><x:f>1+1</x:f><x:v>2</x:v></x:c></x:row>'
    b'<x:row r="2"><x:c r="A2"><x:f>1+1</x:f><x:v /></x:c><x:c r="C2"><x:f t="shared" si="0"/></x:c>'
    b'<x:c r="D2" t="str"><x:f>""</x:f><x:v></x:v></x:c><x:c r="AB2"><x:f>A1</x:f></x:c></x:row>'
    b"</x:sheetData></x:worksheet>"
)


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_uncalculated_formulas_are_found_across_chunks(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(xlsxcheck, "CHUNK", chunk)
    # B1 has a value, D2 calculated to "" (t="str"): neither is reported.
    assert formula_cells(io.BytesIO(SHEET)) == [(2, 0), (2, 2), (2, 27)]


def zip_of(tmp_path: Path, parts: dict[str, bytes]) -> zipfile.ZipFile:
    path = tmp_path / "z.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return zipfile.ZipFile(path)


def test_parts_that_compress_like_a_workbook_pass(tmp_path: Path) -> None:
    text = b"".join(b'<row r="%d"><c><v>%d</v></c></row>' % (i, i * 7919 % 10007) for i in range(200_000))
    with zip_of(tmp_path, {"xl/worksheets/sheet1.xml": text}) as z:
        assert check_parts(z, 256 * 1024**2) == len(text)


def test_a_part_inflating_a_thousand_times_is_refused(tmp_path: Path) -> None:
    with (
        zip_of(tmp_path, {"xl/sharedStrings.xml": b"a" * (20 * 1024**2)}) as z,
        pytest.raises(ZipTrouble) as e,
    ):
        check_parts(z, 256 * 1024**2)
    assert "zip bomb" in str(e.value)


def test_more_inflated_than_the_limit_allows_is_refused(tmp_path: Path) -> None:
    with zip_of(tmp_path, {"a.xml": b"x" * 200_000}) as z, pytest.raises(ZipTrouble) as e:
        check_parts(z, 10_000)
    assert "once inflated" in str(e.value)


def test_too_many_parts_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsxcheck, "MAX_PARTS", 3)
    with zip_of(tmp_path, {f"p{i}.xml": b"<a/>" for i in range(4)}) as z, pytest.raises(ZipTrouble):
        check_parts(z, 1024**2)


@pytest.mark.parametrize(
    ("text", "size"),
    [("4096", 4096), ("300MB", 300 * 1024**2), ("1.5gb", int(1.5 * 1024**3)), ("2 KB", 2048)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-5MB", "0", "5TB"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(BulkrefError):
        parse_size(text)


@pytest.mark.parametrize(
    ("tag", "comma", "day_first"),
    [
        ("de-DE", True, True),
        ("en-US", False, False),
        ("en-GB", False, True),
        ("fr", True, True),
        ("de_CH", False, True),
    ],
)
def test_locales(tag: str, comma: bool, day_first: bool) -> None:
    locale = parse_locale(tag)
    assert (locale.decimal_comma, locale.day_first) == (comma, day_first)


def test_options_from_the_environment_and_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULKREF_MAX_FILE_SIZE", "2MB")
    monkeypatch.setenv("BULKREF_LOCALE", "de-DE")
    assert current().max_file_size == 2 * 1024**2 and current().locale == parse_locale("de-DE")
    with reading(max_file_size=10):
        assert current().max_file_size == 10 and current().locale == parse_locale("de-DE")
    assert current().max_file_size == 2 * 1024**2
    monkeypatch.setenv("BULKREF_MAX_FILE_SIZE", "big")
    with pytest.raises(BulkrefError) as e:
        current()
    assert "BULKREF_MAX_FILE_SIZE" in str(e.value)


def test_the_native_reader_keeps_each_cells_type(tmp_path: Path) -> None:
    import datetime as dt

    import openpyxl

    from bulkref.sheets.native import read_native

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["External Reference ID", "a", "b", "c", "d", "e", "f"])
    ws.append([True, 1, 1.0, "1", " 1 ", dt.datetime(2027, 1, 15), None])
    ws.append([1, True, "x", "x", 2.5, False, 0])
    path = tmp_path / "types.xlsx"
    wb.save(path)
    read = read_native(str(path), None, 10_000, path.stat().st_size, 256 * 1024**2)
    # The oracle: calamine's own rows, texts stripped and blanks None.
    import python_calamine

    rows = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Sheet").to_python()
    expected = [[(v.strip() or None) if isinstance(v, str) else v for v in row] for row in rows]
    got = read.values.tolist()
    assert [[(type(v), v) for v in row] for row in got] == [[(type(v), v) for v in row] for row in expected]
    assert got[1][0] is True and got[2][1] is True and got[2][5] is False and got[1][3] == got[1][4] == "1"
    assert list(read.numbers) == [1, 2, 3]
