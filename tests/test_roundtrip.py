"""One-to-many data round-trips: rows written in the template's shape read back unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkref.sheets.examples import EXAMPLES
from bulkref.sheets.template import build_workbook, save_workbook, write_csv
from bulkref.sheets.values import split_list
from bulkref.validation.check import check_file

THREE_CONTACTS = {
    **EXAMPLES[1],
    "external_id": "CRM-3C",
    "contact.3.first_name": "Third",
    "contact.3.last_name": "Person",
    "contact.3.email": "third@example.com",
    "solution.2.id": "SOL-2",
    "solution.2.name": "Second solution",
    "solution.2.type": "Name",
}


def expected(value: object, key: str) -> object:
    if key in ("industries", "products", "services"):
        return split_list(str(value))
    if isinstance(value, int | float) and key == "deal_value":
        return float(value)
    if key in (
        "share_with_microsoft",
        "consent_contact",
        "consent_share_info",
        "consent_msft_contact_partners",
    ):
        return value == "Yes"
    return value


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_rows_round_trip_through_the_template_shape(tmp_path: Path, fmt: str) -> None:
    rows = [*EXAMPLES, THREE_CONTACTS]
    counts = {"contact": 3, "solution": 2}
    path = tmp_path / f"rt.{fmt}"
    if fmt == "xlsx":
        save_workbook(build_workbook(rows, counts=counts), path)
    else:
        write_csv(path, rows, counts=counts)
    result = check_file(path)
    assert result.valid, [(p.row, p.code, p.message) for p in result.report.problems]
    assert "contact.3.email" in result.values.columns
    for excel_row, source in zip(result.values.index, rows, strict=True):
        got = result.values.loc[excel_row]
        for key, value in source.items():
            assert got[key] == expected(value, key), (excel_row, key, got[key])


def test_csv_keeps_formula_looking_text_from_running_and_reads_it_back(tmp_path: Path) -> None:
    row = {
        **EXAMPLES[0],
        "name": '=HYPERLINK("http://evil.example","click")',
        "contact.1.phone": "+1 425 555 0100",
        "notes": "@mention -minus",
    }
    path = write_csv(tmp_path / "f.csv", [row])
    raw = path.read_text(encoding="utf-8-sig")
    # Excel reads a leading apostrophe as "this is text": none of these can run.
    assert "'=HYPERLINK" in raw and "'+1 425 555 0100" in raw and "'@mention" in raw
    values = check_file(path).values.iloc[0]
    assert values["name"] == row["name"]
    assert values["contact.1.phone"] == "+1 425 555 0100"
    assert values["notes"] == "@mention -minus"
