"""Ordinary files people bring, read or answered with what to do: phone numbers
as CRMs hold them, a German Excel CSV, uncalculated formulas, title rows,
a cover sheet, a workbook open in Excel."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from helpers import RunningSandbox

from bulkref.cli.main import cli
from bulkref.errors import UnusableFile
from bulkref.problems import Severity
from bulkref.sheets.examples import EXAMPLES
from bulkref.sheets.options import parse_locale, reading
from bulkref.sheets.reader import read_table
from bulkref.sheets.template import write_csv
from bulkref.spec.columns import SPEC
from bulkref.validation.check import check_file

PRIVATE = dict(EXAMPLES[0])


def problems_of(path: Path, code: str) -> list[Any]:
    return [p for p in check_file(path).report.problems if p.code == code]


def template_row(row: dict[str, Any]) -> list[Any]:
    return [row.get(c.key) for c in SPEC.columns()]


def headers() -> list[str]:
    return [c.label for c in SPEC.columns()]


# --------------------------------------------------------------------------- phones


PHONES = ["(425) 555-0100 ext. 12", "+49 (0)89 1234-5678", "1", "555.0100 x12", "+1 425 555 0100"]


@pytest.mark.parametrize("phone", PHONES)
def test_phone_numbers_in_every_common_form_are_valid_and_kept(tmp_path: Path, phone: str) -> None:
    path = tmp_path / "p.csv"
    write_csv(path, [{**PRIVATE, "contact.1.phone": phone}])
    result = check_file(path)
    assert result.valid and not result.report.warnings, result.report.problems
    assert result.values["contact.1.phone"].iloc[0] == phone


def test_a_phone_without_a_digit_is_a_warning_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    write_csv(path, [{**PRIVATE, "contact.1.phone": "ask reception"}])
    result = check_file(path)
    assert result.valid
    (warning,) = result.report.warnings
    assert warning.code == "invalid_phone" and warning.severity is Severity.WARNING
    assert "no digit" in warning.message
    assert result.values["contact.1.phone"].iloc[0] == "ask reception"


# --------------------------------------------------------------------------- locale forms


def german_csv(path: Path, dates: list[str], values: list[str]) -> Path:
    """A CSV as Excel saves it on a German PC: semicolons, cp1252, 15.01.2027, 10000,75."""
    rows = []
    for i, (date, value) in enumerate(zip(dates, values, strict=True)):
        row = {**PRIVATE, "external_id": f"CRM-{i}", "customer_name": "Müller GmbH"}
        rows.append([*(("" if v is None else str(v)) for v in template_row(row))])
        rows[-1][headers().index(SPEC.column("closing_date").label)] = date
        rows[-1][headers().index(SPEC.column("deal_value").label)] = value
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows([headers(), *rows])
    path.write_bytes(out.getvalue().encode("cp1252"))
    return path


def test_german_excel_csv_validates_with_one_warning_per_assumption(tmp_path: Path) -> None:
    path = german_csv(tmp_path / "de.csv", ["15.01.2027", "03.02.2027"], ["10000,75", "1.234,50"])
    result = check_file(path)
    assert result.valid, result.report.errors
    assert list(result.values["closing_date"]) == [dt.date(2027, 1, 15), dt.date(2027, 2, 3)]
    assert list(result.values["deal_value"]) == [10000.75, 1234.5]
    assumed = [p for p in result.report.warnings if p.code == "format_assumed"]
    assert len(assumed) == 2
    assert any("decimal comma" in p.message and "is 10000.75" in p.message for p in assumed)
    assert any("day first" in p.message and "2027-01-15" in p.message for p in assumed)
    assert {p.code for p in result.report.warnings} == {"format_assumed", "encoding_cp1252"}


def test_month_first_dates_are_read_when_a_value_shows_it(tmp_path: Path) -> None:
    path = german_csv(tmp_path / "us.csv", ["12/31/2027", "01/02/2027"], ["100", "200"])
    result = check_file(path)
    assert result.valid, result.report.errors
    assert list(result.values["closing_date"]) == [dt.date(2027, 12, 31), dt.date(2027, 1, 2)]
    (assumed,) = [p for p in result.report.warnings if p.code == "format_assumed"]
    assert "month first" in assumed.message


def test_ambiguous_dates_say_what_to_do_and_locale_decides(tmp_path: Path) -> None:
    path = german_csv(tmp_path / "amb.csv", ["01/02/2027", "03/04/2027"], ["100", "200"])
    errors = check_file(path).report.errors
    assert [e.code for e in errors] == ["ambiguous_date", "ambiguous_date"]
    assert "--locale de-DE" in errors[0].message and "map suggest" in errors[0].message
    with reading(locale=parse_locale("de-DE")):
        day_first = check_file(path)
    assert day_first.valid and day_first.values["closing_date"].iloc[0] == dt.date(2027, 2, 1)
    with reading(locale=parse_locale("en-US")):
        month_first = check_file(path)
    assert month_first.values["closing_date"].iloc[0] == dt.date(2027, 1, 2)


def test_locale_flag_on_validate(tmp_path: Path) -> None:
    path = german_csv(tmp_path / "amb.csv", ["01/02/2027", "03/04/2027"], ["100", "200"])
    assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 1
    ok = CliRunner().invoke(cli, ["validate", str(path), "--locale", "en-GB"])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(cli, ["validate", str(path), "--locale", "??"])
    assert bad.exit_code == 2 and "is not a locale" in bad.output


def test_mixed_number_forms_stay_errors_with_a_hint(tmp_path: Path) -> None:
    path = german_csv(tmp_path / "mix.csv", ["2027-01-15", "2027-01-16"], ["10000,75", "lots"])
    errors = check_file(path).report.errors
    assert [e.code for e in errors] == ["not_a_number", "not_a_number"]
    assert "--locale de-DE" in errors[0].message


# --------------------------------------------------------------------------- formulas


def test_formulas_never_calculated_have_their_own_problem(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Referrals"
    ws.append(headers())
    ws.append(template_row(PRIVATE))
    name_col = headers().index(SPEC.column("name").label) + 1
    city_col = headers().index(SPEC.column("city").label) + 1
    ws.cell(row=2, column=name_col, value='="Deal "&A2')
    ws.cell(row=2, column=city_col, value='=UPPER("oslo")')
    path = tmp_path / "f.xlsx"
    wb.save(path)
    problems = check_file(path).report.errors
    assert [(p.row, p.code) for p in problems] == [(2, "formula_not_calculated")] * 2
    assert {p.column for p in problems} == {SPEC.column("name").label, SPEC.column("city").label}
    assert "open and save the file in Excel or LibreOffice" in problems[0].message


# --------------------------------------------------------------------------- header row and sheet


def test_header_row_below_title_rows_is_found_with_a_warning(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Referrals"
    ws.append(["Q3 pipeline for Partner Center"])
    ws.append([])
    ws.append(["exported 2026-11-30", "by Sue"])
    ws.append(headers())
    ws.append(template_row(PRIVATE))
    path = tmp_path / "title.xlsx"
    wb.save(path)
    result = check_file(path)
    assert result.valid, result.report.errors
    assert list(result.values.index) == [5]
    (warning,) = [p for p in result.report.warnings if p.code == "header_row_below"]
    assert "row 4" in warning.message and "Q3 pipeline" in warning.message


def test_csv_title_row_is_skipped_too(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "Pipeline export\n"
        + ",".join(headers())
        + "\n"
        + ",".join(str(v or "") for v in template_row(PRIVATE)),
        encoding="utf-8",
    )
    table = read_table(path)
    assert table.header_row == 2 and table.rows == 1


def test_data_on_a_later_sheet_is_chosen_and_named(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    cover = wb.active
    cover.title = "Cover"
    cover.append(["Our pipeline, read me first"])
    data = wb.create_sheet("Deals")
    data.append(headers())
    data.append(template_row(PRIVATE))
    path = tmp_path / "cover.xlsx"
    wb.save(path)
    result = check_file(path)
    assert result.table.sheet == "Deals" and result.valid
    (warning,) = [p for p in result.report.warnings if p.code == "sheet_chosen"]
    assert "'Cover'" in warning.message and "'Deals'" in warning.message and "--sheet" in warning.message


def test_no_bulkref_header_names_the_sheet_the_sheets_and_the_flag(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "Cover"
    wb.active.append(["Hello"])
    wb.create_sheet("Notes").append(["Some", "jottings"])
    path = tmp_path / "none.xlsx"
    wb.save(path)
    with pytest.raises(UnusableFile) as caught:
        read_table(path)
    message = str(caught.value)
    assert "sheet 'Cover'" in message and "'Notes'" in message and "--sheet" in message


def test_missing_columns_name_the_sheet_read_when_there_are_others(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "Referrals"
    wb.active.append(["External Reference ID", "City"])
    wb.active.append(["X", "Oslo"])
    wb.create_sheet("Other")
    path = tmp_path / "two.xlsx"
    wb.save(path)
    (problem,) = [p for p in read_table(path).problems if p.code == "missing_columns"]
    assert (
        "sheet 'Referrals'" in problem.message
        and "'Other'" in problem.message
        and "--sheet" in problem.message
    )


# --------------------------------------------------------------------------- Excel's lock file, other kinds


def test_lock_file_beside_the_input_warns(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    write_csv(path, [PRIVATE])
    assert not problems_of(path, "open_in_excel")
    (tmp_path / "~$deals.csv").write_bytes(b"\x03Sue" + b" " * 50)
    (warning,) = problems_of(path, "open_in_excel")
    assert "open in Excel: save and close it first, or unsaved edits are missing" in warning.message


def test_lock_file_given_as_input_is_named(tmp_path: Path) -> None:
    lock = tmp_path / "~$deals.xlsx"
    lock.write_bytes(b"\x03Sue" + b"\x00" * 50 + b"S\x00u\x00e\x00" + b" " * 100)
    with pytest.raises(UnusableFile) as caught:
        read_table(lock)
    assert "lock file Excel keeps while 'deals.xlsx' is open" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
        (b"GIF89a\x01\x00\x01\x00", "a GIF image"),
    ],
)
@pytest.mark.parametrize("name", ["deals.xlsx", "deals.csv"])
def test_other_file_kinds_are_named(tmp_path: Path, content: bytes, kind: str, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(content + bytes(200))
    with pytest.raises(UnusableFile) as caught:
        read_table(path)
    assert f"is {kind}, not a spreadsheet" in str(caught.value)


def test_zip_archive_is_named(tmp_path: Path) -> None:
    path = tmp_path / "deals.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("deals.csv", "a,b\n")
    with pytest.raises(UnusableFile) as caught:
        read_table(path)
    assert "is a zip archive, not a spreadsheet" in str(caught.value)


def test_cp1252_warning_has_no_sheet_prefix(tmp_path: Path) -> None:
    path = german_csv(tmp_path / "de.csv", ["2027-01-15"], ["100"])
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "encoding_cp1252" in line)
    assert line.startswith("  warning: The file is not UTF-8"), line


def test_no_rows_names_the_sheets_when_there_are_others(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "Referrals"
    wb.active.append(headers())
    wb.create_sheet("Archive")
    path = tmp_path / "empty.xlsx"
    wb.save(path)
    (warning,) = problems_of(path, "no_rows")
    assert "'Archive'" in warning.message and "--sheet" in warning.message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    pipe = tmp_path / "deals.csv"
    os.mkfifo(pipe)
    with pytest.raises(UnusableFile) as caught:
        read_table(pipe)  # opening it would block until a writer came: this returns at once
    assert "is a named pipe (FIFO)" in str(caught.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_fifo_swapped_in_after_the_check_does_not_block(tmp_path: Path) -> None:
    from bulkref.sheets.inputs import read_regular

    pipe = tmp_path / "late.csv"
    os.mkfifo(pipe)
    with pytest.raises(UnusableFile) as caught:
        read_regular(pipe, 100)
    assert "named pipe" in str(caught.value)


def test_locale_and_size_flags_reach_plan(tmp_path: Path) -> None:
    path = german_csv(tmp_path / "amb.csv", ["01/02/2027", "03/04/2027"], ["100", "200"])
    assert CliRunner().invoke(cli, ["plan", str(path), "--offline"]).exit_code == 1
    ok = CliRunner().invoke(cli, ["plan", str(path), "--offline", "--locale", "de-DE", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    small = CliRunner().invoke(cli, ["plan", str(path), "--offline", "--max-file-size", "1KB"])
    assert small.exit_code == 2 and "--max-file-size" in small.output
    # Nothing carries over to the next command run in the same process.
    assert CliRunner().invoke(cli, ["plan", str(path), "--offline"]).exit_code == 1


def test_locale_and_size_flags_reach_plan_against_a_service(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Against a service the sheet is read in a thread while Partner Center is scanned:
    # the flags must reach that thread as they reach an offline plan.
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", sandbox.token)
    path = german_csv(tmp_path / "amb.csv", ["01/02/2027", "03/04/2027"], ["100", "200"])
    online = ["plan", str(path), "--api-url", sandbox.url, "--lookup", "scan"]
    assert CliRunner().invoke(cli, online).exit_code == 1
    ok = CliRunner().invoke(cli, [*online, "--locale", "de-DE", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    small = CliRunner().invoke(cli, [*online, "--max-file-size", "1KB"])
    assert small.exit_code == 2 and "--max-file-size" in small.output
