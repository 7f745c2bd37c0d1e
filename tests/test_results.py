"""The results file of ``bulkref apply``: columns, values, formula-injection safety, atomic writes."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from bulkref.apply import results as results_mod
from bulkref.apply.outcome import Outcome, RowResult, summarize
from bulkref.apply.results import COLUMNS, HEADERS, default_path, refuse_input, write_results
from bulkref.errors import BulkrefError

# shared/docs/cli.md's columns, plus the timestamp: spelled out, not taken from the module.
EXPECTED_HEADERS = [
    "Row",
    "External Reference ID",
    "Action",
    "Outcome",
    "Referral ID",
    "Engagement ID",
    "Linked Referral ID",
    "HTTP Status",
    "Error Code",
    "Error Message",
    "Request ID",
    "Timestamp",
]
FORMULAS = ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\t=1+1", "\r=2+2"]
GUID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
TS = "2025-01-02T03:04:05.123456+00:00"


def _results() -> list[RowResult]:
    out = [
        RowResult(
            "Referrals",
            2,
            "CRM-1",
            "create",
            Outcome.CREATED,
            referral_id=GUID,
            engagement_id="e-1",
            http_status=201,
            request_id="req-1",
            timestamp=TS,
        ),
        RowResult(
            "Referrals",
            3,
            "CRM-2",
            "update",
            Outcome.UPDATED,
            referral_id="r-2",
            engagement_id="e-2",
            linked_referral_id="l-2",
            http_status=200,
            timestamp=TS,
        ),
        RowResult("Referrals", 4, "CRM-3", "unchanged", Outcome.UNCHANGED, referral_id="r-3"),
        RowResult(
            "Referrals",
            5,
            "CRM-4",
            "create",
            Outcome.PARTIAL,
            referral_id="r-4",
            http_status=503,
            error_code="ServiceUnavailable",
            error_message="try later",
        ),
        RowResult(
            "Referrals",
            6,
            "CRM-5",
            "update",
            Outcome.CONFLICT,
            http_status=412,
            error_code="PreconditionFailed",
            error_message="changed since the plan",
        ),
        RowResult(
            "Referrals",
            7,
            "CRM-6",
            "create",
            Outcome.FAILED,
            http_status=400,
            error_code="#N/A",
            error_message="a & <b> > c",
            request_id="req-6",
            timestamp=TS,
        ),
        RowResult("Referrals", 8, None, "invalid", Outcome.SKIPPED),
    ]
    # Formula-looking text wherever text can come from the input or the API.
    for i, f in enumerate(FORMULAS):
        out.append(
            RowResult(
                "Referrals",
                9 + i,
                f,
                "create",
                Outcome.FAILED,
                referral_id=f,
                http_status=400,
                error_code=f,
                error_message=f,
                request_id=f,
            )
        )
    return out


def _sheet_xml(path: Path, part: str = "xl/worksheets/sheet1.xml") -> str:
    with zipfile.ZipFile(path) as z:
        return z.read(part).decode()


def _cell_xml(xml: str, ref: str) -> str:
    m = re.search(rf'<c r="{ref}"[^>]*>.*?</c>', xml)
    assert m, ref
    return m.group()


def test_columns_cover_every_result_field_but_the_sheet() -> None:
    assert list(HEADERS) == EXPECTED_HEADERS
    assert {c.field for c in COLUMNS} == {f.name for f in fields(RowResult)} - {"sheet"}


# --- xlsx ---------------------------------------------------------------------------------------


def test_xlsx_has_exactly_the_columns_and_one_row_per_result(tmp_path: Path) -> None:
    rs = _results()
    out = write_results(rs, tmp_path / "in.results.xlsx", source="in.xlsx")
    assert out == tmp_path / "in.results.xlsx"
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Results", "Summary"]
    ws = wb["Results"]
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == EXPECTED_HEADERS
    assert len(rows) == len(rs) + 1
    for r, got in zip(rs, rows[1:], strict=True):
        assert got == (
            r.row,
            r.external_id,
            r.action,
            r.outcome.value,
            r.referral_id,
            r.engagement_id,
            r.linked_referral_id,
            r.http_status,
            r.error_code,
            r.error_message,
            r.request_id,
            r.timestamp,
        )
    assert isinstance(ws["A2"].value, int) and isinstance(ws["H2"].value, int)  # numbers, not text
    assert ws["E2"].value == GUID and ws["L2"].value == TS
    assert ws["I7"].value == "#N/A" and ws["I7"].data_type == "s"  # text, not Excel's error value


def test_xlsx_formula_looking_text_is_stored_as_text(tmp_path: Path) -> None:
    rs = _results()
    out = write_results(rs, tmp_path / "r.xlsx", source='=HYPERLINK("http://x","y")')
    ws = openpyxl.load_workbook(out)["Results"]
    first = next(i for i, r in enumerate(rs) if r.external_id == FORMULAS[0]) + 2
    for n, f in enumerate(FORMULAS):
        row = first + n
        for col in "BEIJK":
            cell = ws[f"{col}{row}"]
            assert cell.value == f and cell.data_type == "s", (cell.coordinate, cell.value)
            assert cell.quotePrefix  # stays text when someone edits the cell in Excel
    xml = _sheet_xml(out)
    assert "<f>" not in xml and "<f " not in xml
    cell = _cell_xml(xml, f"B{first}")
    assert 't="inlineStr"' in cell and "=HYPERLINK(&quot;" not in cell and "=HYPERLINK(" in cell
    summary_xml = _sheet_xml(out, "xl/worksheets/sheet2.xml")
    assert "<f>" not in summary_xml and 't="inlineStr"><is><t>=HYPERLINK(' in summary_xml
    source = openpyxl.load_workbook(out)["Summary"]["B1"]
    assert source.value == '=HYPERLINK("http://x","y")' and source.data_type == "s" and source.quotePrefix


def test_xlsx_text_that_xml_cannot_hold_as_is(tmp_path: Path) -> None:
    long = "x" * 40_000
    rs = [
        RowResult(
            "S",
            2,
            "  padded  ",
            "create",
            Outcome.FAILED,
            error_code="bell\x07",
            error_message="line1\r\nline2",
            request_id=long,
        )
    ]
    ws = openpyxl.load_workbook(write_results(rs, tmp_path / "r.xlsx"))["Results"]
    assert ws["B2"].value == "  padded  "
    assert ws["I2"].value == "bell\ufffd"  # XML cannot carry control characters
    assert ws["J2"].value == "line1\r\nline2"
    assert len(ws["K2"].value) == 32_767  # Excel's limit for a cell


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_a_lone_surrogate_does_not_cost_the_file(tmp_path: Path, suffix: str) -> None:
    rs = [RowResult("S", 2, "CRM-1", "create", Outcome.FAILED, error_message="bad \ud800 text")]
    out = write_results(rs, tmp_path / f"r{suffix}")
    if suffix == ".xlsx":
        assert openpyxl.load_workbook(out)["Results"]["J2"].value == "bad \ufffd text"
    else:
        assert "bad ? text" in out.read_text(encoding="utf-8-sig")


def test_xlsx_looks(tmp_path: Path) -> None:
    rs = _results()
    wb = openpyxl.load_workbook(write_results(rs, tmp_path / "r.xlsx", source="in.xlsx"))
    ws = wb["Results"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:L{len(rs) + 1}"
    assert all(c.font.b for c in ws[1])
    assert ws.column_dimensions["J"].width > ws.column_dimensions["A"].width

    def fill(outcome: Outcome) -> str | None:
        row = next(i for i, r in enumerate(rs) if r.outcome is outcome) + 2
        cell = ws[f"D{row}"]
        return cell.fill.fgColor.rgb[-6:] if cell.fill.fill_type == "solid" else None

    assert fill(Outcome.CREATED) == fill(Outcome.UPDATED) == "C6EFCE"
    assert fill(Outcome.UNCHANGED) == "EDEDED"
    assert fill(Outcome.PARTIAL) == fill(Outcome.CONFLICT) == "FCE4D6"
    assert fill(Outcome.FAILED) == "FFC7CE"
    assert fill(Outcome.SKIPPED) is None

    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0]}
    assert summary["Source"] == "in.xlsx" and summary["Sheet"] == "Referrals"
    assert summary["Rows"] == len(rs)
    assert summary["created"] == 1 and summary["failed"] == 1 + len(FORMULAS) and summary["skipped"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", summary["Written (UTC)"])


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_rows_in_input_order_whatever_order_they_finished_in(tmp_path: Path, suffix: str) -> None:
    rs = _results()
    out = write_results(list(reversed(rs)), tmp_path / f"r{suffix}")
    if suffix == ".xlsx":
        ws = openpyxl.load_workbook(out)["Results"]
        got = [row[0] for row in ws.iter_rows(min_row=2, values_only=True)]
    else:
        with open(out, newline="", encoding="utf-8-sig") as f:
            got = [int(row[0]) for row in list(csv.reader(f))[1:]]
    assert got == [r.row for r in rs]


def test_xlsx_summary_given(tmp_path: Path) -> None:
    rs = _results()
    counts = summarize(rs)  # what apply passes: the six JSON keys, then partial, conflict and adopted
    wb = openpyxl.load_workbook(write_results(rs, tmp_path / "r.xlsx", summary=counts))
    rows = list(wb["Summary"].iter_rows(values_only=True))
    assert rows[-9:] == [
        ("created", 1),
        ("updated", 1),
        ("unchanged", 1),
        ("failed", 9),
        ("in_doubt", 0),
        ("skipped", 1),
        ("failed: of which partial", 1),
        ("failed: of which conflict", 1),
        ("unchanged: of which adopted", 0),
    ]
    assert not any(r[0] == "Source" for r in rows)


def test_xlsx_reads_in_another_reader(tmp_path: Path) -> None:
    """calamine (Rust) parses the file on its own: a check that the streamed XML is sound."""
    rs = _results()
    out = write_results(rs, tmp_path / "r.xlsx")
    data = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("Results").to_python()
    assert data[0] == EXPECTED_HEADERS
    assert len(data) == len(rs) + 1
    # calamine drops a carriage return written as &#13; (openpyxl, like Excel, keeps it).
    assert [row[1] for row in data[1:]] == [(r.external_id or "").lstrip("\r") for r in rs]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_xlsx_opens_in_a_spreadsheet_program_without_evaluating(tmp_path: Path) -> None:
    out = write_results(_results(), tmp_path / "r.xlsx")
    profile = (tmp_path / "lo-profile").as_uri()
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation={profile}",
            "--headless",
            "--convert-to",
            "csv",
            "--outdir",
            str(tmp_path / "lo"),
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with open(tmp_path / "lo" / "r.csv", newline="", encoding="utf-8") as f:
        shown = list(csv.reader(f))
    assert shown[0] == EXPECTED_HEADERS
    column_b = [row[1] for row in shown[1:]]
    for f in FORMULAS[:4]:  # LibreOffice's CSV turns CR and tab into other whitespace
        assert f in column_b  # the text itself: neither the formula's result nor an error


# --- csv ----------------------------------------------------------------------------------------


def test_csv_columns_values_and_prefixes(tmp_path: Path) -> None:
    rs = _results()
    out = write_results(rs, tmp_path / "r.csv")
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8, not the ANSI code page
    with open(out, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert rows[0] == EXPECTED_HEADERS
    assert len(rows) == len(rs) + 1
    assert rows[1] == ["2", "CRM-1", "create", "created", GUID, "e-1", "", "201", "", "", "req-1", TS]
    assert rows[6][8:10] == ["#N/A", "a & <b> > c"]
    first = next(i for i, r in enumerate(rs) if r.external_id == FORMULAS[0]) + 1
    for n, f in enumerate(FORMULAS):
        row = rows[first + n]
        assert row[0] == str(rs[first + n - 1].row)
        for col in (1, 4, 8, 9, 10):
            assert row[col] == "'" + f


# --- paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("deals.xlsx", "deals.results.xlsx"),
        ("deals.XLSX", "deals.results.xlsx"),
        ("deals.xlsm", "deals.results.xlsx"),
        ("deals.csv", "deals.results.csv"),
        ("plan.json", "plan.results.xlsx"),
        ("deals.results.xlsx", "deals.results.results.xlsx"),
        ("deals.results.csv", "deals.results.results.csv"),
        ("my.deals.v2.xlsx", "my.deals.v2.results.xlsx"),
    ],
)
def test_default_path(tmp_path: Path, name: str, expected: str) -> None:
    given = tmp_path / name
    got = default_path(given)
    assert got == tmp_path / expected
    assert got != given and got.name.casefold() != given.name.casefold()


def test_default_path_is_never_the_input_even_if_naming_changed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(results_mod, "RESULTS_MARK", "")  # a naming that would give the input back
    got = default_path(tmp_path / "deals.xlsx")
    assert got != tmp_path / "deals.xlsx" and got.suffix == ".xlsx"


def test_refuse_input(tmp_path: Path) -> None:
    given = tmp_path / "deals.xlsx"
    given.write_bytes(b"x")
    with pytest.raises(BulkrefError, match="is the input file"):
        refuse_input(tmp_path / "DEALS.xlsx", given)
    with pytest.raises(BulkrefError):
        refuse_input(tmp_path / "." / "deals.xlsx", given)
    refuse_input(tmp_path / "deals.results.xlsx", given)


def test_other_suffixes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BulkrefError, match=r"\.xlsx or \.csv"):
        write_results(_results(), tmp_path / "r.xlsm")
    assert list(tmp_path.iterdir()) == []


# --- atomic writes ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_replaces_an_existing_file_and_leaves_nothing_behind(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"r{suffix}"
    out.write_bytes(b"the previous results")
    write_results(_results()[:2], out)
    write_results(_results(), out)  # rewritten at the end of the run
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    assert out.read_bytes() != b"the previous results"
    if suffix == ".xlsx":
        assert openpyxl.load_workbook(out)["Results"].max_row == len(_results()) + 1


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_interrupted_write_keeps_the_previous_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"r{suffix}"
    out.write_bytes(b"the previous results")

    real_rows, real_value = results_mod.rows_xml, results_mod.csv_value

    def rows_then_interrupt(*args: Any) -> Iterator[bytes]:
        yield next(real_rows(*args, chunk_rows=2))  # part of the file is written...
        raise KeyboardInterrupt  # ...when Ctrl+C comes

    def value_then_interrupt(value: object) -> object:
        if value == "CRM-3":
            raise KeyboardInterrupt
        return real_value(value)

    if suffix == ".xlsx":
        monkeypatch.setattr(results_mod, "rows_xml", rows_then_interrupt)
    else:
        monkeypatch.setattr(results_mod, "csv_value", value_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_results(_results(), out)
    assert out.read_bytes() == b"the previous results"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(BulkrefError, match="does not exist"):
        write_results(_results(), tmp_path / "nowhere" / "r.xlsx")


# --- size ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_many_rows(tmp_path: Path, suffix: str) -> None:
    n = 20_000
    outcomes = list(Outcome)
    rs = [
        RowResult(
            "Referrals",
            i + 2,
            f"CRM-{i:06d}",
            "create",
            outcomes[i % len(outcomes)],
            referral_id=GUID,
            http_status=201,
            request_id=GUID,
            timestamp=TS,
        )
        for i in range(n)
    ]
    out = write_results(rs, tmp_path / f"r{suffix}")
    if suffix == ".xlsx":
        data = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("Results").to_python()
        assert len(data) == n + 1
        assert data[-1][:4] == [n + 1, f"CRM-{n - 1:06d}", "create", outcomes[(n - 1) % len(outcomes)].value]
    else:
        with open(out, newline="", encoding="utf-8-sig") as f:
            assert sum(1 for _ in csv.reader(f)) == n + 1
