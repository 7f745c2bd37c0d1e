"""Tests for bulkref.sheets.reader: every input is generated in tmp_path."""

from __future__ import annotations

import codecs
import datetime as dt
import io
import random
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import Workbook

import bulkref.sheets.xlsxcheck as xlsxcheck
from bulkref.errors import UnusableFile
from bulkref.problems import Problem, Severity
from bulkref.sheets.reader import read_table
from bulkref.sheets.table import Table
from bulkref.spec.columns import SPEC, Need

# Every column a new referral needs, as the template labels them.
REQUIRED = [c.label for c in SPEC.singles if c.need is not Need.OPTIONAL]
REQUIRED_KEYS = [c.key for c in SPEC.singles if c.need is not Need.OPTIONAL]


def a_row(i: int = 1) -> list[Any]:
    """Cells for REQUIRED, in order."""
    by_key = {
        "external_id": f"CRM-{i}",
        "name": f"Deal {i}",
        "deal_type": "Partner-led",
        "customer_name": "Contoso",
        "address_line1": "One Microsoft Way",
        "city": "Redmond",
        "country": "US",
        "deal_value": 50000,
        "currency": "USD",
        "closing_date": dt.date(2026, 12, 31),
    }
    return [by_key[k] for k in REQUIRED_KEYS]


def write_xlsx(
    path: Path,
    rows: Sequence[Sequence[Any]],
    *,
    title: str = "Referrals",
    at: tuple[int, int] = (1, 1),
    hidden: Sequence[int] = (),
    before: Sequence[str] = (),
    after: Sequence[str] = (),
) -> Path:
    """A workbook whose sheet ``title`` holds ``rows`` from cell ``at`` (row,
    column), with blank sheets named ``before``/``after`` around it."""
    wb = Workbook()
    wb.remove(wb.active)
    for name in before:
        wb.create_sheet(name)
    ws = wb.create_sheet(title)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None:
                ws.cell(row=at[0] + r, column=at[1] + c, value=value)
    for n in hidden:
        ws.row_dimensions[n].hidden = True
    for name in after:
        wb.create_sheet(name)
    wb.save(path)
    return path


def rewrite_member(path: Path, member: str, change: Any) -> Path:
    """Rewrite one zip member with ``change(bytes) -> bytes``, or drop it when
    ``change`` returns None."""
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in items:
            if info.filename == member:
                data = change(data)
            if data is not None:
                z.writestr(info, data)
    return path


def codes(table: Table) -> list[str]:
    return [p.code for p in table.problems]


def only(table: Table, code: str) -> Problem:
    found = [p for p in table.problems if p.code == code]
    assert len(found) == 1, table.problems
    return found[0]


def unusable(path: Path, sheet: str | None = None) -> str:
    with pytest.raises(UnusableFile) as caught:
        read_table(path, sheet)
    message = str(caught.value)
    # One plain sentence naming the file, never a traceback's worth.
    assert "\n" not in message and message.endswith(".")
    return message


# --------------------------------------------------------------------------- xlsx values


def test_xlsx_values_stay_raw(tmp_path: Path) -> None:
    header = [*REQUIRED, "Consent To Contact", "Customer DUNS", "Postal Code"]
    row = a_row()
    path = write_xlsx(
        tmp_path / "in.xlsx",
        [
            header,
            [*row, True, "081466849", "  02134 "],
            [*a_row(2)[:-1], dt.datetime(2026, 1, 2, 13, 30), False, "Yes", "No"],
        ],
    )
    table = read_table(path)

    f = table.frame
    assert list(f.index) == [2, 3] and f.index.name == "row"
    assert (f.dtypes == "object").all()
    assert f.at[2, "external_id"] == "CRM-1"
    assert f.at[2, "deal_value"] == 50000 and not isinstance(f.at[2, "deal_value"], str)
    assert f.at[2, "closing_date"] == dt.date(2026, 12, 31)
    assert f.at[3, "closing_date"] == dt.datetime(2026, 1, 2, 13, 30)
    assert f.at[2, "consent_contact"] is True and f.at[3, "consent_contact"] is False
    assert f.at[3, "customer_duns"] == "Yes" and f.at[3, "postal_code"] == "No"
    # Numbers stored as text stay text, leading zeros and all; spaces go.
    assert f.at[2, "customer_duns"] == "081466849"
    assert f.at[2, "postal_code"] == "02134"
    assert table.problems == []
    assert table.sheet == "Referrals" and table.source == path and table.header_row == 1
    assert table.letters["external_id"] == "A" and table.letters["postal_code"] == "M"
    assert table.headers["name"] == "Referral Name *"
    assert table.columns["name"] is SPEC.single("name")
    assert table.rows == 2


def test_xlsm_reads_like_xlsx(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "macro.xlsm", [REQUIRED, a_row()])
    table = read_table(path)
    assert table.rows == 1 and table.frame.at[2, "city"] == "Redmond"


def test_formula_cells_give_their_cached_value(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "f.xlsx",
        [[*REQUIRED, "Notes"], [*a_row()[:-3], "=1000*50", "USD", dt.date(2026, 1, 1), "=1+1"]],
    )
    # openpyxl cannot store a formula's result: add it as Excel would.
    rewrite_member(
        path,
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(
            rb'<c r="K2"([^>]*)><f>1\+1</f><v\s*/>',
            rb'<c r="K2"\1 t="str"><f>1+1</f><v>two</v>',
            xml.replace(b"<f>1000*50</f><v />", b"<f>1000*50</f><v>50000</v>"),
        ),
    )
    f = read_table(path).frame
    assert f.at[2, "deal_value"] == 50000
    assert f.at[2, "notes"] == "two"


def test_leading_blank_rows_and_columns_keep_excel_numbers(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "offset.xlsx", [REQUIRED, a_row(1), [None] * 3, a_row(2)], at=(4, 3))
    table = read_table(path)
    assert table.header_row == 4
    assert list(table.frame.index) == [5, 7]
    assert table.letters["external_id"] == "C"
    assert table.frame.at[7, "external_id"] == "CRM-2"
    assert codes(table) == []


def test_blank_rows_are_dropped_and_numbers_kept(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "gaps.xlsx",
        [REQUIRED, a_row(1), [], ["   ", None, " "], a_row(4), [], []],
    )
    # A cell formatted far below the data is no row either.
    from openpyxl import load_workbook

    wb = load_workbook(path)
    wb["Referrals"]["A500"].number_format = "0.00"
    wb.save(path)

    table = read_table(path)
    assert list(table.frame.index) == [2, 5]
    assert table.frame.at[5, "external_id"] == "CRM-4"


def test_whitespace_is_stripped_and_blank_strings_are_none(tmp_path: Path) -> None:
    row = a_row()
    row[1] = "  Padded deal \t"
    row[2] = "   "
    path = write_xlsx(tmp_path / "ws.xlsx", [REQUIRED, row])
    f = read_table(path).frame
    assert f.at[2, "name"] == "Padded deal"
    assert f.at[2, "deal_type"] is None


# --------------------------------------------------------------------------- hidden rows


def test_hidden_rows_are_kept_with_one_warning(tmp_path: Path) -> None:
    rows = [REQUIRED, *(a_row(i) for i in range(1, 11))]
    path = write_xlsx(tmp_path / "h.xlsx", rows, hidden=[3, 4, 5, 6, 8, 9, 11])
    table = read_table(path)
    assert table.rows == 10
    warning = only(table, "hidden_rows")
    assert warning.severity is Severity.WARNING
    assert warning.row == 3
    assert "7 rows" in warning.message
    assert "3, 4, 5, 6, 8" in warning.message and "11" not in warning.message


def test_hidden_blank_rows_do_not_count(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "h.xlsx", [REQUIRED, a_row(), [], a_row(2)], hidden=[3, 4])
    warning = only(read_table(path), "hidden_rows")
    assert warning.row == 4 and "1 row is" in warning.message


def test_no_hidden_rows_no_warning(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "h.xlsx", [REQUIRED, a_row()], hidden=[1])  # the header
    assert "hidden_rows" not in codes(read_table(path))


def test_row_tags_across_chunks_prefixes_and_missing_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    xml = (
        b'<x:worksheet xmlns:x="urn:x"><x:sheetData>'
        b'<x:row r="2"><x:c r="A2"/></x:row><x:row hidden="1"><x:c/></x:row>'
        b'<x:row r="9" spans="1:2" hidden="true"/><x:rowBreaks/>'
        b"</x:sheetData></x:worksheet>"
    )
    monkeypatch.setattr(xlsxcheck, "CHUNK", 7)
    tags = list(xlsxcheck.row_tags(io.BytesIO(xml)))
    assert [n for n, _ in tags] == [2, 3, 9]
    assert [n for n, a in tags if b"hidden" in a] == [3, 9]


# --------------------------------------------------------------------------- headers


def test_headers_are_matched_tolerantly(tmp_path: Path) -> None:
    header = [
        "external_reference_id",
        "  referral NAME *",
        "DEAL-TYPE",
        "customerProfile/name",
        "Address Line 1*",
        "city",
        "Country",
        "details/dealValue",
        "currency",
        "Estimated Close Date",
        "Customer Contact 3 Email",
    ]
    path = write_xlsx(tmp_path / "odd.xlsx", [header, [*a_row(), "sue@contoso.com"]])
    table = read_table(path)
    assert codes(table) == []
    assert list(table.frame.columns) == [*REQUIRED_KEYS, "contact.3.email"]
    assert table.headers["name"] == "referral NAME *"
    assert table.headers["customer_name"] == "customerProfile/name"
    contact = table.columns["contact.3.email"]
    assert (contact.group, contact.index, contact.field) == ("contact", 3, "email")
    assert table.frame.at[2, "contact.3.email"] == "sue@contoso.com"
    assert table.letters["contact.3.email"] == "K"


def test_unknown_columns_warn_and_suggest(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "u.xlsx", [[*REQUIRED, "Refferal Nam", "Favourite Colour"], [*a_row(), 1, 2]]
    )
    table = read_table(path)
    first, second = (p for p in table.problems if p.code == "unknown_column")
    assert first.severity is Severity.WARNING and first.row == 1
    assert first.column == "Refferal Nam"
    assert first.message == (
        "Column 'Refferal Nam' is not a bulkref column and is ignored. Did you mean 'Referral Name'?"
    )
    assert second.message == "Column 'Favourite Colour' is not a bulkref column and is ignored."
    assert "Refferal Nam" not in table.frame.columns
    assert len(table.frame.columns) == len(REQUIRED)


def test_duplicate_columns_are_an_error(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "d.xlsx", [[*REQUIRED, "name"], [*a_row(), "Other"]])
    table = read_table(path)
    problem = only(table, "duplicate_column")
    assert problem.severity is Severity.ERROR and problem.column == "name"
    assert "Referral Name *" in problem.message and "(B)" in problem.message
    assert table.frame.at[2, "name"] == "Deal 1"  # the first one is read


def test_unnamed_column_with_data_warns(tmp_path: Path) -> None:
    header = [*REQUIRED, None, None, "Notes"]
    path = write_xlsx(tmp_path / "n.xlsx", [header, [*a_row(), None, "stray", "hello"]])
    table = read_table(path)
    problem = only(table, "unnamed_column")
    assert problem.severity is Severity.WARNING and problem.row == 1
    assert "Column L" in problem.message
    assert table.letters["notes"] == "M"


def test_missing_columns_named_all_at_once(tmp_path: Path) -> None:
    keep = ["External Reference ID", "Deal Type", "Address Line 1", "City", "Deal Value"]
    path = write_xlsx(tmp_path / "m.xlsx", [keep, ["X", "Private", "Street", "Town", 1]])
    problem = only(read_table(path), "missing_columns")
    assert problem.severity is Severity.ERROR and problem.row == 1 and problem.column is None
    assert problem.message == (
        "Missing required columns: Referral Name, Customer Name, Country, Currency, "
        "Closing Date. Add them to the header row (see the template)."
    )


def test_update_only_sheet_needs_only_always_columns(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "upd.xlsx", [["Referral ID", "Status"], ["abc", "Closed"]])
    problem = only(read_table(path), "missing_columns")
    assert problem.message == (
        "Missing required column: External Reference ID. Add it to the header row (see the template)."
    )
    full = write_xlsx(tmp_path / "upd2.xlsx", [["Referral ID", "External ID"], ["abc", "X"], ["def", "Y"]])
    assert codes(read_table(full)) == []


def test_one_new_row_makes_new_columns_required(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "mix.xlsx", [["Referral ID", "External ID"], ["abc", "X"], [None, "Y"]])
    problem = only(read_table(path), "missing_columns")
    assert "Referral Name" in problem.message and "Closing Date" in problem.message
    assert "External Reference ID" not in problem.message


# --------------------------------------------------------------------------- sheets


def test_sheet_named_referrals_wins(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "s.xlsx", [REQUIRED, a_row()], title="REFERRALS", before=["Other"])
    table = read_table(path)
    assert table.sheet == "REFERRALS" and table.rows == 1


def test_first_visible_worksheet_skipping_instructions_and_lists(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.title = "Instructions"
    hidden = wb.create_sheet("Secret")
    hidden.sheet_state = "hidden"
    hidden.append(REQUIRED)
    wb.create_sheet("lists")
    data = wb.create_sheet("Deals")
    data.append(REQUIRED)
    data.append(a_row())
    path = tmp_path / "s.xlsx"
    wb.save(path)
    table = read_table(path)
    assert table.sheet == "Deals" and table.rows == 1
    assert read_table(path, sheet="secret").sheet == "Secret"


def test_missing_sheet_lists_the_names(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "s.xlsx", [REQUIRED], title="Deals", after=["Lists"])
    message = unusable(path, sheet="Referrals")
    assert "'Deals', 'Lists'" in message and "Referrals" in message


def test_no_usable_sheet(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "s.xlsx", [["Read me"]], title="Instructions", after=["Lists"])
    assert "no worksheet" in unusable(path)


def test_empty_sheet_has_no_header_row(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "e.xlsx", [[None, "   "]])
    assert "is empty" in unusable(path)


def test_problems_name_the_sheet(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "p.xlsx", [["External ID", "Colour"], ["X", "red"]], title="Deals")
    assert {p.sheet for p in read_table(path).problems} == {"Deals"}


# --------------------------------------------------------------------------- csv


CSV_HEADER = ["External Reference ID", "Referral Name", "Customer Name", "City", "Deal Value"]
CSV_ROW = ["CRM-1", "Société Générale deal", "Zürich AG", "Köln", "1000"]


def csv_text(delimiter: str = ",", rows: Sequence[Sequence[str]] | None = None) -> str:
    rows = rows if rows is not None else [CSV_HEADER, CSV_ROW]
    return "".join(delimiter.join(r) + "\r\n" for r in rows)


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: t.encode("utf-8"),
        lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
        lambda t: t.encode("utf-16"),
        lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"),
        lambda t: t.encode("utf-16-le"),
        lambda t: t.encode("utf-16-be"),
    ],
    ids=["utf8", "utf8-bom", "utf16", "utf16be-bom", "utf16le-no-bom", "utf16be-no-bom"],
)
def test_csv_unicode_encodings(tmp_path: Path, encode: Any) -> None:
    path = tmp_path / "referrals.csv"
    path.write_bytes(encode(csv_text()))
    table = read_table(path)
    assert table.frame.loc[2].tolist() == CSV_ROW
    assert table.headers["external_id"] == "External Reference ID"
    assert "encoding_cp1252" not in codes(table)


def test_csv_cp1252_reads_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "referrals.csv"
    path.write_bytes(csv_text(";").encode("cp1252"))
    table = read_table(path)
    assert table.frame.at[2, "name"] == "Société Générale deal"
    warning = only(table, "encoding_cp1252")
    assert warning.severity is Severity.WARNING
    assert warning.row is None and warning.column is None
    assert "Windows-1252" in warning.message and "UTF-8" in warning.message


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_delimiters_are_sniffed(tmp_path: Path, delimiter: str) -> None:
    rows = [CSV_HEADER, ["CRM-1", "Deal, big; one", "Contoso", "Paris", "1,5"]]
    quoted = [[f'"{v}"' if ("," in v or ";" in v) else v for v in r] for r in rows]
    path = tmp_path / "referrals.csv"
    path.write_text(csv_text(delimiter, quoted), encoding="utf-8")
    table = read_table(path)
    assert list(table.frame.columns) == [
        "external_id",
        "name",
        "customer_name",
        "city",
        "deal_value",
    ]
    assert table.frame.at[2, "name"] == "Deal, big; one"
    assert table.frame.at[2, "deal_value"] == "1,5"


def test_csv_header_only_single_column(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("External ID\nX1\n\nX2\n", encoding="utf-8")
    table = read_table(path)
    assert table.frame["external_id"].to_dict() == {2: "X1", 4: "X2"}


def test_csv_excel_sep_line(tmp_path: Path) -> None:
    path = tmp_path / "sep.csv"
    path.write_text("sep=;\n" + csv_text(";"), encoding="utf-8")
    table = read_table(path)
    assert table.header_row == 1 and table.frame.at[2, "city"] == "Köln"


def test_csv_rows_count_records_not_lines(tmp_path: Path) -> None:
    text = (
        "\n"  # Excel shows a blank first line as row 1
        "External ID,Notes,City\n"
        'A,"two\nlines",Oslo\n'
        "  ,  ,  \n"
        'B,"x",  Bergen  \n'
        "C\n"  # a short record
        "\n\n"
    )
    path = tmp_path / "records.csv"
    path.write_text(text, encoding="utf-8", newline="")
    table = read_table(path)
    assert table.header_row == 2
    f = table.frame
    assert list(f.index) == [3, 5, 6]
    assert f.at[3, "notes"] == "two\nlines"
    assert f.at[5, "city"] == "Bergen"
    assert f.at[6, "external_id"] == "C" and f.at[6, "city"] is None
    assert all(isinstance(v, str) for v in f.to_numpy().ravel() if v is not None)
    assert table.sheet == "records.csv"
    assert {p.sheet for p in table.problems} == {"records.csv"}


def test_csv_crlf_and_numbers_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_bytes(b"External ID,Postal Code,Deal Value\r\nX,02134,50000\r\n")
    f = read_table(path).frame
    assert f.at[2, "postal_code"] == "02134" and f.at[2, "deal_value"] == "50000"


def test_workbook_with_csv_extension_is_read_as_workbook(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "renamed.xlsx", [REQUIRED, a_row()])
    renamed = path.rename(tmp_path / "renamed.csv")
    assert read_table(renamed).frame.at[2, "deal_value"] == 50000


# --------------------------------------------------------------------------- unusable files


def test_missing_file(tmp_path: Path) -> None:
    assert "does not exist" in unusable(tmp_path / "nope.xlsx")


def test_directory(tmp_path: Path) -> None:
    assert "is a folder" in unusable(tmp_path)


@pytest.mark.parametrize("name", ["empty.xlsx", "empty.csv"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    message = unusable(tmp_path / name)
    assert name in message and "empty (0 bytes)" in message


def test_csv_with_only_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "blank.csv").write_bytes(codecs.BOM_UTF8 + b"\r\n ,  ,\r\n")
    assert "is empty" in unusable(tmp_path / "blank.csv")


def random_bytes(n: int = 4096) -> bytes:
    return random.Random(7).randbytes(n)


@pytest.mark.parametrize("name", ["junk.xlsx", "junk.xlsm"])
def test_random_bytes_as_workbook(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(random_bytes())
    assert "is not a real Excel workbook" in unusable(tmp_path / name)


def test_random_bytes_as_csv(tmp_path: Path) -> None:
    (tmp_path / "junk.csv").write_bytes(random_bytes())
    assert "binary data" in unusable(tmp_path / "junk.csv")


def test_csv_with_nul_bytes(tmp_path: Path) -> None:
    (tmp_path / "nul.csv").write_bytes(b"External ID,City\r\nX,Oslo\x00\x00\x01\r\n" * 3)
    assert "binary data" in unusable(tmp_path / "nul.csv")


def test_csv_with_control_characters(tmp_path: Path) -> None:
    junk = bytes(range(1, 32)) * 10
    (tmp_path / "ctl.csv").write_bytes(b"External ID\r\n" + junk)
    assert "binary data" in unusable(tmp_path / "ctl.csv")


def test_text_file_named_xlsx(tmp_path: Path) -> None:
    (tmp_path / "fake.xlsx").write_text(csv_text(), encoding="utf-8")
    assert "save it as .xlsx" in unusable(tmp_path / "fake.xlsx")


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.mark.parametrize("name", ["report.pdf", "report.bin", "notes"])
def test_unknown_extensions_are_not_spreadsheets(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(PDF)
    message = unusable(tmp_path / name)
    assert message == (
        f"'{tmp_path / name}' is a PDF document, not a spreadsheet: bulkref reads .xlsx, .xlsm "
        "and .csv files; check that you picked the right file."
    )


def make_docx(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return path


def test_docx_is_not_a_spreadsheet(tmp_path: Path) -> None:
    assert "is a Word document, not a spreadsheet" in unusable(make_docx(tmp_path / "letter.docx"))


def test_zip_named_xlsx_that_is_not_a_workbook(tmp_path: Path) -> None:
    message = unusable(make_docx(tmp_path / "letter.xlsx"))
    assert "is a Word document, not a spreadsheet" in message
    assert "Word document" in message
    plain = tmp_path / "data.xlsx"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("data.txt", "hello")
    assert "is a zip archive, not a spreadsheet" in unusable(plain)


def test_truncated_workbook(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "t.xlsx", [REQUIRED, a_row()])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "is damaged" in unusable(path)


@pytest.mark.parametrize(
    ("member", "change"),
    [
        ("xl/worksheets/sheet1.xml", lambda b: b[: len(b) // 2]),
        ("xl/workbook.xml", lambda b: b"<workbook><sheets><sheet"),
        ("xl/worksheets/sheet1.xml", lambda b: None),
    ],
    ids=["bad-sheet-xml", "bad-workbook-xml", "sheet-part-missing"],
)
def test_corrupt_workbook(tmp_path: Path, member: str, change: Any) -> None:
    path = write_xlsx(tmp_path / "c.xlsx", [REQUIRED, a_row()])
    rewrite_member(path, member, change)
    assert "is damaged" in unusable(path)


def test_password_protected_workbook(tmp_path: Path) -> None:
    ooxml = pytest.importorskip("msoffcrypto.format.ooxml")
    plain = write_xlsx(tmp_path / "plain.xlsx", [REQUIRED, a_row()])
    locked = tmp_path / "locked.xlsx"
    with plain.open("rb") as src, locked.open("wb") as out:
        ooxml.OOXMLFile(src).encrypt("secret", out)
    message = unusable(locked)
    assert "password-protected" in message and "File > Info > Protect Workbook" in message


def fake_cfb(stream_names: Sequence[str]) -> bytes:
    """Enough of an OLE2 compound file for the sniffing: the magic number,
    then directory entries, whose names are UTF-16LE."""
    header = bytes.fromhex("D0CF11E0A1B11AE1") + bytes(504)
    entries = b"".join(n.encode("utf-16-le").ljust(128, b"\x00") for n in stream_names)
    return header + entries


def test_old_xls_workbook(tmp_path: Path) -> None:
    path = tmp_path / "old.xls"
    path.write_bytes(fake_cfb(["Root Entry", "Workbook", "\x05SummaryInformation"]))
    message = unusable(path)
    assert "Excel 97-2003" in message and "save it as .xlsx" in message


def test_encrypted_package_even_when_named_xls(tmp_path: Path) -> None:
    path = tmp_path / "locked.xls"
    path.write_bytes(fake_cfb(["Root Entry", "EncryptionInfo", "EncryptedPackage"]))
    assert "password-protected" in unusable(path)


def test_other_ole_file_is_not_a_spreadsheet(tmp_path: Path) -> None:
    path = tmp_path / "memo.doc"
    path.write_bytes(fake_cfb(["Root Entry", "WordDocument"]))
    assert "is a Word 97-2003 document (.doc), not a spreadsheet" in unusable(path)


def test_frame_is_empty_but_typed_without_data_rows(tmp_path: Path) -> None:
    table = read_table(write_xlsx(tmp_path / "h.xlsx", [REQUIRED]))
    assert table.rows == 0
    assert list(table.frame.columns) == REQUIRED_KEYS
    assert isinstance(table.frame.index, pd.Index) and table.frame.index.name == "row"
    assert codes(table) == []
