"""The command line as users script it: exit codes, JSON keys, one-sentence errors."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from helpers import VALID_ROW, row

Make = Callable[..., Path]


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkref", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.slow
def test_validate_valid_file_exits_0_with_the_documented_json(xlsx: Make) -> None:
    done = run("validate", xlsx([VALID_ROW]), "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc) >= {"valid", "rows", "errors", "warnings"}
    assert doc["valid"] is True and doc["rows"] == 1 and doc["errors"] == []


@pytest.mark.slow
def test_validate_invalid_file_exits_1_and_names_sheet_row_column(xlsx: Make) -> None:
    path = xlsx([VALID_ROW, row(External_Reference_ID="CRM-2", Currency="Euros")])
    done = run("validate", path, "--format", "json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["valid"] is False
    assert doc["errors"] == [
        {
            "sheet": "Referrals",
            "row": 3,
            "column": "Currency",
            "code": "invalid_currency",
            "message": "'Euros' is not a currency: use the three-letter ISO code, like USD or EUR.",
            "value": "Euros",
        }
    ]
    text = run("validate", path)
    assert text.returncode == 1
    assert "row 3, Currency" in text.stdout and "INVALID: 1 error in 1 of 2 rows" in text.stdout


def _zip_not_workbook(p: Path) -> None:
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("hello.txt", "not a workbook")


def _truncated_workbook(p: Path, source: Path) -> None:
    p.write_bytes(source.read_bytes()[:600])


BAD_FILES: dict[str, Callable[[Path, Path], None]] = {
    "empty.xlsx": lambda p, s: p.write_bytes(b""),
    "random.xlsx": lambda p, s: p.write_bytes(bytes(range(256)) * 40),
    "notes.txt": lambda p, s: p.write_text("just some text\n"),
    "archive.xlsx": lambda p, s: _zip_not_workbook(p),
    "broken.xlsx": lambda p, s: _truncated_workbook(p, s),
    "old.xls": lambda p, s: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 2000),
    "binary.csv": lambda p, s: p.write_bytes(b"a,b\n\x00\x01\x02\xff\xfe\x00\x00\x00garbage" * 50),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_unusable_files_exit_2_with_one_sentence(tmp_path: Path, xlsx: Make, name: str) -> None:
    path = tmp_path / name
    BAD_FILES[name](path, xlsx([VALID_ROW]))
    done = run("validate", path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bulkref: ") and path.name in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_missing_file_or_directory_exit_2(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope.xlsx"
    if kind == "directory":
        path.mkdir()
    done = run("validate", path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_annotate_highlights_bad_cells_and_lists_errors(tmp_path: Path, xlsx: Make) -> None:
    path = xlsx([VALID_ROW, row(External_Reference_ID="CRM-2", Country="Atlantis", Deal_Value="x")])
    out = tmp_path / "annotated.xlsx"
    done = run("validate", path, "--annotate", out)
    assert done.returncode == 1 and f"Annotated copy: {out}" in done.stdout
    wb = openpyxl.load_workbook(out)
    ws = wb["Referrals"]
    headers = [c.value for c in ws[1]]
    country = ws.cell(3, headers.index("Country") + 1)
    value = ws.cell(3, headers.index("Deal Value") + 1)
    good = ws.cell(2, headers.index("Country") + 1)
    assert country.value == "Atlantis"  # the data is kept
    assert country.fill.fgColor.rgb.endswith("FFC7CE") and value.fill.fgColor.rgb.endswith("FFC7CE")
    assert "invalid_country" in country.comment.text and "not a country" in country.comment.text
    assert good.comment is None and not good.fill.fgColor.rgb.endswith("FFC7CE")
    errors = wb["Errors"]
    listed = [(r[2].value, r[3].value, r[4].value) for r in errors.iter_rows(min_row=2)]
    assert listed == [(3, "Country", "invalid_country"), (3, "Deal Value", "not_a_number")]
    assert run("validate", path, "--annotate", path).returncode == 2  # never overwrites the input


@pytest.mark.slow
def test_annotate_from_csv(tmp_path: Path) -> None:
    from helpers import write_csv

    path = write_csv(
        tmp_path / "deals.csv", [VALID_ROW, row(External_Reference_ID="=HYPERLINK(1)", Currency="Euros")]
    )
    out = tmp_path / "deals-annotated.xlsx"
    assert run("validate", path, "--annotate", out).returncode == 1
    ws = openpyxl.load_workbook(out)["Referrals"]
    headers = [c.value for c in ws[1]]
    assert ws.cell(3, headers.index("Currency") + 1).comment is not None
    cell = ws.cell(3, headers.index("External Reference ID") + 1)
    assert cell.value == "=HYPERLINK(1)" and cell.data_type == "s"  # text, not a formula


@pytest.mark.slow
def test_template_command(tmp_path: Path) -> None:
    done = run("template", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "referrals-template.xlsx").exists()
    assert "referrals-template.xlsx" in done.stdout
    again = run("template", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    assert run("template", "--force", cwd=tmp_path).returncode == 0
    csv_done = run("template", "t.csv", "--examples", cwd=tmp_path)
    assert csv_done.returncode == 0
    assert (tmp_path / "t.csv").read_bytes().startswith(b"\xef\xbb\xbfExternal Reference ID")


@pytest.mark.slow
def test_template_with_examples_validates(tmp_path: Path) -> None:
    out = tmp_path / "filled.xlsx"
    assert run("template", out, "--examples").returncode == 0
    done = run("validate", out, "--format", "json")
    doc = json.loads(done.stdout)
    assert done.returncode == 0, doc["errors"]
    assert doc["rows"] >= 5


@pytest.mark.slow
def test_bad_flag_exits_2() -> None:
    done = run("validate", "x.xlsx", "--format", "yaml")
    assert done.returncode == 2 and "Traceback" not in done.stderr
