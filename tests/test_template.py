"""The fill-in template: its sheets, headers, drop-downs, formats and limits,
the committed copies' freshness, the example deals, and LibreOffice opening it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import range_to_tuple
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from bulkref.sheets import template
from bulkref.sheets.cells import csv_safe
from bulkref.sheets.template import (
    COMMITTED,
    DATA_ROWS,
    SHEET_INSTRUCTIONS,
    SHEET_LISTS,
    SHEET_REFERRALS,
    build_workbook,
    example_rows,
    save_workbook,
    write_template,
)
from bulkref.spec import enums
from bulkref.spec.columns import SPEC, Column, Kind, Need

ROOT = Path(__file__).resolve().parents[1]
REFRESH = "python -m bulkref.sheets.template --refresh"
COLUMNS = SPEC.columns()
LABELS = [c.label for c in COLUMNS]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
PHONE = re.compile(r"^\+?[\d\s()\-]+$")


def _letter(c: Column) -> str:
    return get_column_letter(COLUMNS.index(c) + 1)


def _col(key: str) -> Column:
    return next(c for c in COLUMNS if c.key == key)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("template")
    return {
        "blank": write_template(out / "blank.xlsx"),
        "examples": write_template(out / "examples.xlsx", examples=True),
        "csv": write_template(out / "examples.csv", fmt="csv", examples=True),
    }


@pytest.fixture(scope="module")
def blank(files: dict[str, Path]) -> Workbook:
    return openpyxl.load_workbook(files["blank"])


@pytest.fixture(scope="module")
def filled(files: dict[str, Path]) -> Workbook:
    return openpyxl.load_workbook(files["examples"])


def _validations(ws: Worksheet) -> dict[str, DataValidation]:
    """Column letter -> the one validation on it, checking it spans the data rows."""
    out: dict[str, DataValidation] = {}
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            assert rng.min_col == rng.max_col, f"{rng} spans several columns"
            letter = get_column_letter(rng.min_col)
            assert letter not in out, f"two validations on column {letter}"
            assert (rng.min_row, rng.max_row) == (2, DATA_ROWS + 1), f"{letter}: {rng}"
            out[letter] = dv
    return out


def _list_cells(wb: Workbook, formula: str) -> tuple[str, tuple[str, ...]]:
    """The header and the values of the Lists range a drop-down points at."""
    sheet, (min_col, min_row, max_col, max_row) = range_to_tuple(formula.lstrip("="))
    assert sheet == SHEET_LISTS
    assert min_col == max_col and min_row == 2
    ws = wb[sheet]
    values = tuple(ws.cell(r, min_col).value for r in range(min_row, max_row + 1))
    # The range must hold the whole list: nothing left below it.
    assert ws.cell(max_row + 1, min_col).value is None
    return ws.cell(1, min_col).value, values


# --- structure --------------------------------------------------------------


def test_three_sheets_instructions_first_lists_last(blank: Workbook) -> None:
    assert blank.sheetnames == [SHEET_INSTRUCTIONS, SHEET_REFERRALS, SHEET_LISTS]
    assert all(len(name) <= 31 for name in blank.sheetnames)


def test_header_row_is_the_spec_labels_in_order(blank: Workbook) -> None:
    ws = blank[SHEET_REFERRALS]
    assert [c.value for c in ws[1]] == LABELS
    assert ws.max_row == 1  # the blank template has no data rows
    assert all(label.endswith(" *") == c.required for label, c in zip(LABELS, COLUMNS, strict=True))


def test_header_stays_in_view(blank: Workbook) -> None:
    ws = blank[SHEET_REFERRALS]
    assert ws.freeze_panes == "B2"
    assert ws["A1"].value == SPEC.single("external_id").label
    assert ws.auto_filter.ref == f"A1:{get_column_letter(len(COLUMNS))}1"


def test_column_widths_come_from_the_spec(blank: Workbook) -> None:
    ws = blank[SHEET_REFERRALS]
    for c in COLUMNS:
        assert ws.column_dimensions[_letter(c)].width == c.width, c.header


def test_header_colours_tell_required_optional_read_only(blank: Workbook) -> None:
    ws = blank[SHEET_REFERRALS]

    def fills(pick: bool | None) -> set[str]:
        return {
            ws[f"{_letter(c)}1"].fill.fgColor.rgb
            for c in COLUMNS
            if (c.read_only if pick is None else (not c.read_only and c.required == pick))
        }

    required, optional, read_only = fills(True), fills(False), fills(None)
    assert len(required) == len(optional) == len(read_only) == 1
    assert len(required | optional | read_only) == 3
    for c in COLUMNS:
        cell = ws[f"{_letter(c)}1"]
        assert cell.fill.fill_type == "solid"
        assert bool(cell.font.italic) == c.read_only, c.header


def test_every_column_has_an_input_message(blank: Workbook) -> None:
    found = _validations(blank[SHEET_REFERRALS])
    assert set(found) == {_letter(c) for c in COLUMNS}
    for c in COLUMNS:
        dv = found[_letter(c)]
        assert dv.showInputMessage, c.header
        assert dv.promptTitle and dv.promptTitle.strip(), c.header
        assert dv.prompt and len(dv.prompt) > 10, c.header
        # The prompt is the help (maybe cut short), not some other text.
        assert dv.prompt.rstrip("…").split()[-1].rstrip(".,;:)") in c.help, c.header


def test_choice_and_yes_no_columns_drop_down_from_the_lists_sheet(blank: Workbook) -> None:
    tables = enums.load()
    found = _validations(blank[SHEET_REFERRALS])
    dropdowns = [c for c in COLUMNS if c.kind in (Kind.CHOICE, Kind.BOOL)]
    assert dropdowns, "the spec has no choice columns?"
    for c in dropdowns:
        dv = found[_letter(c)]
        assert dv.type == "list", c.header
        assert dv.formula1 is not None and not dv.formula1.startswith('"'), "inline list"
        name, values = _list_cells(blank, dv.formula1)
        if c.kind is Kind.BOOL:
            assert values == ("Yes", "No"), c.header
        else:
            assert name == c.choices, c.header
            assert values == tables.lists[c.choices], c.header
        assert dv.showErrorMessage and dv.errorStyle == "warning" and dv.error, c.header
    for c in COLUMNS:
        if c.kind not in (Kind.CHOICE, Kind.BOOL):
            assert found[_letter(c)].type in (None, "none"), c.header


def test_lists_sheet_holds_each_list_once(blank: Workbook) -> None:
    ws = blank[SHEET_LISTS]
    heads = [c.value for c in ws[1]]
    assert len(heads) == len(set(heads))
    used = {c.choices for c in COLUMNS if c.kind is Kind.CHOICE}
    assert used <= set(heads)
    # The plays of every area are offered, since Solution Play is one drop-down.
    plays = {p for ps in enums.load().solution_plays.values() for p in ps}
    col = heads.index("solution_play") + 1
    assert {ws.cell(r, col).value for r in range(2, ws.max_row + 1)} - {None} == plays


def test_validations_stay_within_excel_limits(blank: Workbook, filled: Workbook) -> None:
    for wb in (blank, filled):
        for dv in wb[SHEET_REFERRALS].data_validations.dataValidation:
            assert len(dv.promptTitle or "") <= 32, dv.promptTitle
            assert len(dv.prompt or "") <= 255, dv.prompt
            assert len(dv.errorTitle or "") <= 32, dv.errorTitle
            assert len(dv.error or "") <= 255, dv.error
            assert len(dv.formula1 or "") <= 255, dv.formula1
    # Every column's pop-up is its help, cut at a word and marked where Excel's
    # 255 characters are not enough (the Instructions sheet has it whole).
    dvs = _validations(blank[SHEET_REFERRALS])
    for c in COLUMNS:
        prompt = dvs[_letter(c)].prompt or ""
        if prompt.endswith("…"):
            assert prompt[:-1].split()[-1] in c.help.split(), c.header
        else:
            assert prompt.endswith(c.help), c.header
        assert not c.required or prompt.startswith("Required"), c.header


def test_clip_cuts_at_a_word() -> None:
    assert template.clip("short text", 32) == "short text"
    cut = template.clip("Consent For Microsoft To Contact Partners", 32)
    assert len(cut) <= 32 and cut == "Consent For Microsoft To…"


def test_number_formats(blank: Workbook, filled: Workbook) -> None:
    dims = blank[SHEET_REFERRALS].column_dimensions

    def fmt(c: Column) -> str:
        return dims[_letter(c)].number_format

    for c in COLUMNS:
        if c.kind is Kind.DATE:
            assert fmt(c) == "yyyy-mm-dd", c.header
        elif c.kind is Kind.DECIMAL:
            assert fmt(c) == "#,##0.00", c.header
        elif c.kind in (Kind.PHONE, Kind.DUNS):
            assert fmt(c) == "@", c.header
        elif c.kind in (Kind.EMAIL, Kind.CHOICE, Kind.BOOL, Kind.LIST):
            assert fmt(c) == "General", c.header
    # Text that is often all digits must stay text; long free text must not be
    # "@" (Excel shows #### for text-formatted cells over 255 characters).
    digits = ("postal_code", "external_id", "referral_id", "solution.1.id", "mpn_id")
    assert [fmt(_col(k)) for k in digits] == ["@"] * len(digits)
    assert fmt(_col("notes")) == fmt(_col("name")) == "General"
    # Written cells carry the format too, and a leading zero survives.
    ws = filled[SHEET_REFERRALS]
    rows = example_rows()
    for r, row in enumerate(rows, start=2):
        date_cell = ws[f"{_letter(_col('closing_date'))}{r}"]
        assert date_cell.is_date and date_cell.number_format == "yyyy-mm-dd"
        assert date_cell.value.date() == row["closing_date"]
        postal = ws[f"{_letter(_col('postal_code'))}{r}"]
        assert postal.value == row["postal_code"] and postal.number_format == "@"
    assert any(str(row["postal_code"]).startswith("0") for row in rows)


def test_instructions_explain_every_column(blank: Workbook) -> None:
    ws = blank[SHEET_INSTRUCTIONS]
    first = [c.value for c in ws["A"]]
    top = first.index("Column")
    assert [c.value for c in ws[top + 1]][:6] == [
        "Column",
        "Required",
        "Type",
        "Allowed values",
        "Help",
        "Example",
    ]
    table = list(ws.iter_rows(min_row=top + 2, max_row=top + 1 + len(COLUMNS), values_only=True))
    assert [line[0] for line in table] == LABELS
    for c, line in zip(COLUMNS, table, strict=True):
        need = {Need.ALWAYS: "every row without a Referral ID", Need.NEW: "new referrals"}.get(c.need)
        if c.read_only:
            assert "read-only" in line[1]
        elif need:
            assert line[1] == need, c.header
        elif c.when:
            assert c.when in line[1], c.header
        else:
            assert line[1] == "optional", c.header
        assert line[2] == c.kind.value
        assert line[4] == c.help
        if c.kind is Kind.CHOICE and line[3] and "Lists sheet" not in line[3]:
            assert line[3].split(", ") == list(enums.load().lists[c.choices]), c.header
    text = "\n".join(str(v) for v in first[:top] if v)
    contact = SPEC.group("contact")
    assert f"{contact.label} {contact.in_template + 1} Email" in text
    assert SPEC.single("external_id").header in text and "blank" in text.lower()
    assert all(c.header in text for c in COLUMNS if c.read_only)
    for deal_type in enums.load().lists["deal_type"]:
        assert any(line.startswith(f"{deal_type}:") for line in text.splitlines()), deal_type


# --- plain values, reproducible files ---------------------------------------


def test_cells_are_values_never_formulas(tmp_path: Path, filled: Workbook) -> None:
    for ws in filled.worksheets:
        assert not [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"]
    tricky = {
        "external_id": "=1+1",
        "name": "+SUM(A1)",
        "notes": "-2 days; @risk",
        "invite_notes": '=HYPERLINK("http://example.com")',
    }
    path = save_workbook(build_workbook([tricky]), tmp_path / "tricky.xlsx")
    ws = openpyxl.load_workbook(path)[SHEET_REFERRALS]
    for key, value in tricky.items():
        cell = ws[f"{_letter(_col(key))}2"]
        assert (cell.value, cell.data_type) == (value, "s"), key
    raw = zipfile.ZipFile(path).read("xl/worksheets/sheet2.xml")
    assert b"<f>" not in raw


def test_rows_with_unknown_keys_are_refused() -> None:
    with pytest.raises(ValueError, match=r"contact\.9\.mail"):
        build_workbook([{"external_id": "X", "contact.9.mail": "x@y.com"}])


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="xlsx"):
        write_template(tmp_path / "t.ods", fmt="ods")


def test_same_input_same_bytes(tmp_path: Path, files: dict[str, Path]) -> None:
    again = write_template(tmp_path / "again.xlsx", examples=True)
    assert again.read_bytes() == files["examples"].read_bytes()
    core = zipfile.ZipFile(again).read("docProps/core.xml").decode()
    assert "<dc:creator>bulkref</dc:creator>" in core
    stamps = re.findall(r"<dcterms:(created|modified)[^>]*>([^<]+)<", core)
    assert [k for k, _ in stamps] == ["created", "modified"]
    # A fixed time, not the clock: saving later must not change the file.
    modified = dt.datetime.fromisoformat(stamps[1][1].replace("Z", "+00:00"))
    assert modified == dt.datetime.fromisoformat(stamps[0][1].replace("Z", "+00:00"))
    assert modified.date() != dt.datetime.now(dt.UTC).date()


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


@pytest.mark.parametrize("rel", sorted(COMMITTED))
def test_committed_copy_is_fresh(rel: str, tmp_path: Path) -> None:
    fmt, with_examples = COMMITTED[rel]
    committed = ROOT / rel
    assert committed.exists(), f"{rel} is missing; run: {REFRESH}"
    fresh = write_template(tmp_path / Path(rel).name, fmt=fmt, examples=with_examples)
    stale = f"{rel} is stale; regenerate it with: {REFRESH}"
    if fmt == "csv":
        assert fresh.read_bytes() == committed.read_bytes(), stale
        return
    want, have = _members(fresh), _members(committed)
    assert sorted(have) == sorted(want), stale
    for name in want:
        assert have[name] == want[name], f"{stale} (member {name} differs)"


# --- example deals ----------------------------------------------------------


def _deal_kind(row: dict[str, object]) -> str:
    if row.get("deal_type") == "Private":
        return "shared private" if row.get("referral_type") == "Shared" else "private"
    if row.get("deal_type") == "Co-sell":
        return "services co-sell" if row.get("partner_role") else "co-sell"
    return str(row.get("deal_type")).lower()


def test_examples_cover_the_five_deal_kinds() -> None:
    tables = enums.load()
    by_kind: dict[str, list[dict[str, object]]] = {}
    for row in example_rows():
        by_kind.setdefault(_deal_kind(row), []).append(row)
    assert set(by_kind) == {
        "private",
        "partner-led",
        "co-sell",
        "services co-sell",
        "shared private",
    }
    for row in by_kind["private"] + by_kind["shared private"]:
        assert row.get("share_with_microsoft") != "Yes"
    for row in by_kind["partner-led"] + by_kind["co-sell"] + by_kind["services co-sell"]:
        assert row.get("share_with_microsoft") in ("Yes", None)
    for row in by_kind["co-sell"] + by_kind["services co-sell"]:
        assert row["help_needed"] in tables.lists["assistance_request_code"]
    assert any(row.get("invite_notes") for row in by_kind["co-sell"])
    for row in by_kind["services co-sell"]:
        assert row["partner_role"] in tables.lists["partner_role"]
        assert row["solution_play"] in tables.solution_plays[str(row["solution_area"])]
    for row in by_kind["shared private"]:
        assert row["target.1.type"] == "SolutionProfile"
        assert str(row["target.1.id"]).startswith("SOL-")


def test_examples_follow_the_rules() -> None:
    tables = enums.load()
    rows = example_rows()
    keys = {c.key for c in COLUMNS}
    ids = [row["external_id"] for row in rows]
    assert len(ids) == len(set(ids))
    for row in rows:
        assert set(row) <= keys
        assert not row.get("referral_id"), "examples are new deals"
        missing = [c.header for c in COLUMNS if c.required and row.get(c.key) in (None, "")]
        assert not missing, (row["external_id"], missing)
        assert row["substatus"] in tables.status_substatus[str(row["status"])]
        assert isinstance(row["closing_date"], dt.date) and row["closing_date"].year == 2027
        assert isinstance(row["deal_value"], int | float) and row["deal_value"] >= 0
        assert row["currency"] in ("USD", "EUR", "GBP") and row["country"] in ("US", "DE", "GB")
        for c in COLUMNS:
            value = row.get(c.key)
            if value is None:
                continue
            if c.kind is Kind.CHOICE:
                assert value in tables.lists[c.choices], (c.header, value)
            elif c.kind is Kind.BOOL:
                assert value in ("Yes", "No"), (c.header, value)
            elif c.kind is Kind.EMAIL:
                assert EMAIL.match(str(value)), value
            elif c.kind is Kind.PHONE:
                assert PHONE.match(str(value)), value
            elif c.kind is Kind.DUNS:
                assert re.fullmatch(r"\d{9}", str(value)), value
        contacts = SPEC.group("contact").in_template
        assert any(
            row.get(f"contact.{n}.email") or row.get(f"contact.{n}.phone") for n in range(1, contacts + 1)
        )


def test_example_rows_are_written_as_given(filled: Workbook) -> None:
    ws = filled[SHEET_REFERRALS]
    rows = example_rows()
    assert ws.max_row == len(rows) + 1
    for r, row in enumerate(rows, start=2):
        for c in COLUMNS:
            got = ws[f"{_letter(c)}{r}"].value
            want = row.get(c.key)
            if isinstance(got, dt.datetime) and type(want) is dt.date:
                got = got.date()
            assert got == want, (r, c.header)


def test_committed_examples_pass_the_validator() -> None:
    from bulkref.validation.check import check_file

    for rel in ("examples/referrals.xlsx", "examples/referrals.csv"):
        result = check_file(ROOT / rel)
        assert result.valid, [p.message for p in result.report.problems]
        assert result.report.rows == len(example_rows())


def test_csv_is_utf8_with_bom_and_the_same_headers(files: dict[str, Path]) -> None:
    raw = files["csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert lines[0] == LABELS
    rows = example_rows()
    assert len(lines) == len(rows) + 1
    at = {c.key: i for i, c in enumerate(COLUMNS)}
    for line, row in zip(lines[1:], rows, strict=True):
        assert len(line) == len(COLUMNS)
        assert line[at["closing_date"]] == row["closing_date"].isoformat()
        assert float(line[at["deal_value"]]) == row["deal_value"]
        assert line[at["share_with_microsoft"]] in ("Yes", "No")
        # A phone number starting with + carries the apostrophe that keeps Excel from
        # reading it as a formula; bulkref's reader takes it off.
        assert line[at["contact.1.phone"]] == csv_safe(row.get("contact.1.phone", ""))
        assert line[at["postal_code"]] == row["postal_code"]


def test_blank_csv_is_just_the_header(tmp_path: Path) -> None:
    path = write_template(tmp_path / "t.csv", fmt="csv")
    assert path.read_text(encoding="utf-8-sig").splitlines() == [",".join(LABELS)]


# --- LibreOffice ------------------------------------------------------------

OFFICE = shutil.which("libreoffice") or shutil.which("soffice")
needs_office = pytest.mark.skipif(OFFICE is None, reason="LibreOffice is not installed")

# LibreOffice's CSV filter: comma, double quotes, UTF-8, from line 1, ...,
# cells as shown (token 9), every sheet to its own file (token 12 = -1).
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"


@pytest.fixture(scope="module")
def office_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A profile of its own, so a running or broken user profile cannot interfere.
    return tmp_path_factory.mktemp("lo-profile")


def _convert(src: Path, to: str, outdir: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    assert OFFICE is not None
    return subprocess.run(
        [
            OFFICE,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            to,
            "--outdir",
            str(outdir),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
@needs_office
def test_libreoffice_reads_the_examples(files: dict[str, Path], office_profile: Path, tmp_path: Path) -> None:
    done = _convert(files["examples"], CSV_FILTER, tmp_path, office_profile)
    assert done.returncode == 0, done.stderr
    out = tmp_path / f"{files['examples'].stem}-{SHEET_REFERRALS}.csv"
    assert out.exists(), (done.stdout, done.stderr, list(tmp_path.iterdir()))
    lines = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert lines[0] == LABELS
    rows = example_rows()
    assert len(lines) == len(rows) + 1
    at = {c.key: i for i, c in enumerate(COLUMNS)}
    for line, row in zip(lines[1:], rows, strict=True):
        assert line[at["external_id"]] == row["external_id"]
        assert line[at["postal_code"]] == row["postal_code"]  # text: zeros kept
        assert line[at["closing_date"]] == row["closing_date"].isoformat()  # as formatted
        assert line[at["customer_name"]] == row["customer_name"]
    lists = (tmp_path / f"{files['examples'].stem}-{SHEET_LISTS}.csv").read_text(encoding="utf-8")
    assert lists.splitlines()[0].split(",")[0] == SPEC.single("deal_type").choices


@pytest.mark.slow
@needs_office
def test_libreoffice_keeps_the_drop_downs(
    files: dict[str, Path], office_profile: Path, tmp_path: Path
) -> None:
    outdir = tmp_path / "out"
    done = _convert(files["blank"], "xlsx", outdir, office_profile)
    assert done.returncode == 0, done.stderr
    again = openpyxl.load_workbook(outdir / files["blank"].name)
    assert again.sheetnames == [SHEET_INSTRUCTIONS, SHEET_REFERRALS, SHEET_LISTS]
    ws = again[SHEET_REFERRALS]
    assert [c.value for c in ws[1]] == LABELS
    dvs = ws.data_validations.dataValidation
    # LibreOffice parsed every validation: one per column, the lists still on Lists.
    assert len(dvs) == len(COLUMNS)
    lists = [dv for dv in dvs if dv.type == "list"]
    assert len(lists) == sum(c.kind in (Kind.CHOICE, Kind.BOOL) for c in COLUMNS)
    assert all((dv.formula1 or "").startswith(f"{SHEET_LISTS}!") for dv in lists)
    assert all(dv.prompt for dv in dvs)
