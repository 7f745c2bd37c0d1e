"""Mapping files: a legacy CRM export read through a TOML mapping, validated,
planned and applied; every feature of the format, and every way a mapping breaks."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from bulkref.apply.run import apply_input
from bulkref.errors import BulkrefError
from bulkref.mapping.file import MappingError, NumberFormat, key_lines, load_mapping, parse_mapping
from bulkref.mapping.source import read_mapped
from bulkref.plan.make import make_plan
from bulkref.plan.model import Plan
from bulkref.sheets.values import parse_number
from bulkref.validation.check import check_file
from bulkref.validation.schema import Validated

ROOT = Path(__file__).resolve().parents[1]
LEGACY = ROOT / "examples" / "legacy"
EXAMPLES = {
    "dynamics365": LEGACY / "dynamics365-opportunities.csv",
    "salesforce": LEGACY / "salesforce-opportunities.xlsx",
    "hubspot": LEGACY / "hubspot-deals.csv",
}

HEADER = ["Opp ID", "Opp Name", "Account", "Street", "Town", "Nation", "Value", "Curr", "Close", "Email"]
ROW = {
    "Opp ID": "OPP-1",
    "Opp Name": "Contoso ERP",
    "Account": "Contoso Ltd",
    "Street": "1 Main St",
    "Town": "Seattle",
    "Nation": "United States",
    "Value": "50000",
    "Curr": "USD",
    "Close": "2027-03-31",
    "Email": "sue@contoso.example",
}
BASE = """[fields]
"External Reference ID" = "Opp ID"
"Referral Name" = "Opp Name"
"Customer Name" = "Account"
"Address Line 1" = "Street"
"City" = "Town"
"Country" = "Nation"
"Deal Value" = "Value"
"Currency" = "Curr"
"Closing Date" = "Close"
"Customer Contact 1 Email" = "Email"
"Deal Type" = { value = "Partner-led" }
"""


def write_export(path: Path, rows: list[dict[str, Any]], delimiter: str = ",") -> Path:
    headers = list(dict.fromkeys([*HEADER, *(k for r in rows for k in r)]))
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(headers)
        for r in rows:
            w.writerow(["" if r.get(h) is None else r.get(h) for h in headers])
    return path


class Legacy:
    """An export and a mapping in a temporary folder."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def check(self, rows: list[dict[str, Any]], mapping: str, delimiter: str = ",") -> Validated:
        export = write_export(self.tmp / "export.csv", [{**ROW, **r} for r in rows], delimiter)
        return check_file(export, mapping=self.mapping(mapping))

    def mapping(self, text: str) -> Path:
        path = self.tmp / "mapping.toml"
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
def legacy(tmp_path: Path) -> Legacy:
    return Legacy(tmp_path)


def codes(v: Validated) -> list[str]:
    return [p.code for p in v.report.errors]


# --------------------------------------------------------------------------- the format


def test_renamed_columns_validate_with_the_export_s_rows_and_labels_naming_both(legacy: Legacy) -> None:
    v = legacy.check([{}, {"Opp ID": "OPP-2"}], BASE)
    assert v.valid, v.report.as_json()
    assert list(v.values.index) == [2, 3]
    assert v.values.loc[3, "external_id"] == "OPP-2"
    assert v.values.loc[2, "country"] == "US"  # an English name, read by the validator as ever
    assert v.table.headers["city"] == "Town -> City"
    assert v.table.headers["deal_type"] == "mapping.toml line 12 -> Deal Type"
    assert v.table.letters["city"] == "E"


def test_fields_are_named_by_header_key_or_json_name(legacy: Legacy) -> None:
    text = BASE.replace('"City" = "Town"', 'city = "Town"').replace(
        '"Customer Name" = "Account"', '"customerProfile/name" = "Account"'
    )
    v = legacy.check([{}], text)
    assert v.valid
    assert (v.values.loc[2, "city"], v.values.loc[2, "customer_name"]) == ("Seattle", "Contoso Ltd")


def test_one_stage_column_gives_status_and_substatus_through_value_maps(legacy: Legacy) -> None:
    text = (
        BASE
        + """
"Status" = { column = "Stage", values = { "Closed Won" = "Closed", "Prospecting" = "New" } }
"Substatus" = { column = "Stage", values = { "Closed Won" = "Won", "Prospecting" = "Pending" } }
"""
    )
    v = legacy.check([{"Stage": "Closed Won"}, {"Opp ID": "2", "Stage": "prospecting"}], text)
    assert v.valid, v.report.as_json()
    assert v.values[["status", "substatus"]].values.tolist() == [["Closed", "Won"], ["New", "Pending"]]


def test_values_the_map_does_not_list_are_an_error_kept_or_blank(legacy: Legacy) -> None:
    currency = '"Currency" = { column = "Curr", values = { "EUR €" = "EUR" }, other = "keep" }'
    text = (
        BASE.replace('"Currency" = "Curr"', currency)
        + """
"Qualification" = { column = "Stage", values = { "Qualify" = "MarketingQualified" }, other = "blank" }
"Status Reason" = { column = "Why", values = { "Price" = "Too expensive", "Other" = "" } }
"""
    )
    v = legacy.check(
        [
            {"Curr": "EUR €", "Stage": "Qualify", "Why": "Price"},
            {"Opp ID": "2", "Curr": "GBP", "Stage": "Develop", "Why": "Other"},
            {"Opp ID": "3", "Why": "Timing"},
        ],
        text,
    )
    assert v.values["currency"].tolist() == ["EUR", "GBP", "USD"]
    assert v.values["qualification"].tolist() == ["MarketingQualified", None, None]
    assert v.values["status_reason"].tolist() == ["Too expensive", None, None]
    [problem] = v.report.errors
    assert (problem.code, problem.row, problem.column, problem.mapping_line) == (
        "unmapped_value",
        4,
        "Why -> Status Reason",
        15,
    )


def test_constants_and_defaults(legacy: Legacy) -> None:
    text = (
        BASE
        + """
"Consent To Contact" = { value = true }
"Notes" = { value = "Imported from the legacy CRM" }
"Marketplace Purchase Intent" = { column = "Intent", default = "HaveNotDecided" }
"Customer Size" = { column = "Size", default = "51to500employees" }
"""
    )
    v = legacy.check([{"Intent": "Yes", "Size": None}, {"Opp ID": "2"}], text)
    assert v.valid, v.report.as_json()
    assert v.values["consent_contact"].tolist() == [True, True]
    assert v.values["notes"].tolist() == ["Imported from the legacy CRM"] * 2
    assert v.values["marketplace_intent"].tolist() == ["Yes", "HaveNotDecided"]
    assert v.values["customer_size"].tolist() == ["51to500employees"] * 2


def test_a_date_constant_is_a_toml_date(legacy: Legacy) -> None:
    text = BASE.replace('"Closing Date" = "Close"', '"Closing Date" = { value = 2027-06-30 }')
    v = legacy.check([{}], text)
    assert v.values.loc[2, "closing_date"] == dt.date(2027, 6, 30)


def test_split_a_full_name_and_street_lines_and_join_columns(legacy: Legacy) -> None:
    text = (
        BASE.replace(
            '"Address Line 1" = "Street"',
            """
"Address Line 1" = { column = "Street", split = "\\n", part = "first" }
"Address Line 2" = { column = "Street", split = "\\n", part = "rest" }""",
        )
        + """
"Customer Contact 1 First Name" = { column = "Name", split = " ", part = "first" }
"Customer Contact 1 Last Name" = { column = "Name", split = " ", part = "rest" }
"Customer Contact 1 Title" = { column = "Name", split = " ", part = -1 }
"Team Member 1 First Name" = { column = "Owner", split = ",", part = "last" }
"Team Member 1 Last Name" = { column = "Owner", split = ",", part = "but_last" }
"Team Member 1 Email" = "Owner Email"
"Notes" = { columns = ["Note 1", "Note 2"], join = " | " }
"""
    )
    v = legacy.check(
        [
            {
                "Street": "1 Main St\r\nSuite 400\nFloor 2",
                "Name": "Ana  de la Cruz",
                "Owner": "Weber, Jonas",
                "Owner Email": "jonas@partner.example",
                "Note 1": "first",
                "Note 2": "second",
            },
            {"Opp ID": "2", "Name": "Cher", "Note 2": "only"},
        ],
        text,
    )
    assert v.valid, v.report.as_json()
    row = v.values.loc[2]
    assert (row["address_line1"], row["address_line2"]) == ("1 Main St", "Suite 400\nFloor 2")
    assert (row["contact.1.first_name"], row["contact.1.last_name"], row["contact.1.title"]) == (
        "Ana",
        "de la Cruz",
        "Cruz",
    )
    assert (row["team.1.first_name"], row["team.1.last_name"]) == ("Jonas", "Weber")
    assert row["notes"] == "first | second"
    other = v.values.loc[3]
    assert (other["contact.1.first_name"], other["contact.1.last_name"]) == ("Cher", None)
    assert other["notes"] == "only"
    assert other["address_line2"] is None


def test_dates_and_numbers_in_declared_formats_and_locales(legacy: Legacy) -> None:
    text = """[source]
date_format = "%d/%m/%Y"
decimal = ","
thousands = "."
""" + BASE.replace('"Deal Value" = "Value"', '"Deal Value" = "Value"\n"Customer DUNS" = "Duns"')
    v = legacy.check(
        [
            {"Value": "1.234,56", "Close": "31/12/2026", "Duns": "081466849"},
            {"Opp ID": "2", "Value": "€ 1.250.000", "Close": "01/02/2027"},
        ],
        text,
        delimiter=";",
    )
    assert v.valid, v.report.as_json()
    assert v.values["deal_value"].tolist() == [1234.56, 1250000.0]
    assert v.values["closing_date"].tolist() == [dt.date(2026, 12, 31), dt.date(2027, 2, 1)]


def test_a_field_s_own_format_overrides_the_source_s(legacy: Legacy) -> None:
    text = '[source]\ndate_format = "%d/%m/%Y"\n' + BASE.replace(
        '"Closing Date" = "Close"',
        '"Closing Date" = { column = "Close", date_format = "%m/%d/%Y %H:%M" }',
    ).replace('"Deal Value" = "Value"', '"Deal Value" = { column = "Value", decimal = ",", thousands = " " }')
    v = legacy.check([{"Close": "12/31/2026 17:00", "Value": "1 234,5"}], text)
    assert v.valid, v.report.as_json()
    assert v.values.loc[2, "closing_date"] == dt.date(2026, 12, 31)
    assert v.values.loc[2, "deal_value"] == 1234.5


def test_without_a_declared_date_format_the_validator_reads_iso_dates(legacy: Legacy) -> None:
    v = legacy.check([{"Close": "2027-03-31T17:00:00Z"}], BASE)
    assert v.valid and v.values.loc[2, "closing_date"] == dt.date(2027, 3, 31)


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("1,234.56", NumberFormat(".", ","), 1234.56),
        ("1.234,56", NumberFormat(",", "."), 1234.56),
        ("1234,5", NumberFormat(",", "."), 1234.5),
        ("-12", NumberFormat(",", "."), -12.0),
        ("1 234 567,8", NumberFormat(",", " "), 1234567.8),
        ("1\u00a0234,8", NumberFormat(",", " "), 1234.8),
        ("1'234.50", NumberFormat(".", "'"), 1234.5),
        ("$ 99", NumberFormat(), 99.0),
        ("1.5", NumberFormat(",", "."), None),  # "." groups thousands here: 1.5 is no number
        ("1,5", NumberFormat(".", ","), None),
        ("12,34.5", NumberFormat(".", ","), None),
        ("abc", NumberFormat(), None),
    ],
)
def test_numbers_are_read_in_their_format_only(text: str, fmt: NumberFormat, expected: float | None) -> None:
    assert parse_number(text, fmt.decimal, fmt.thousands, currency=True) == expected


def test_repeated_and_delimited_columns_fill_lists_and_numbered_groups(legacy: Legacy) -> None:
    text = BASE.replace(
        '"Customer Contact 1 Email" = "Email"',
        """
"Customer Contact {n} Email" = { column = "Emails", delimiter = ";" }
"Customer Contact {n} First Name" = { columns = ["First 1", "First 2", "First 3"] }
"Products" = { columns = ["Product 1", "Product 2", "Product 3"], values = { "D365 Sales" = "D365Sales" }, \
other = "keep" }
"Industries" = { column = "Industry", delimiter = "|" }""",
    )
    v = legacy.check(
        [
            {
                "Emails": "a@x.example; b@x.example;c@x.example;;d@x.example",
                "First 1": "Ann",
                "First 2": None,
                "First 3": "Cy",
                "Product 1": "D365 Sales",
                "Product 2": "",
                "Product 3": "Azure",
                "Industry": "Retail|Manufacturing",
            },
            {"Opp ID": "2", "Emails": "d@x.example"},
        ],
        text,
    )
    assert v.valid, v.report.as_json()
    row = v.values.loc[2]
    assert [row[f"contact.{n}.email"] for n in (1, 2, 3, 4, 5)] == [
        "a@x.example",
        "b@x.example",
        "c@x.example",
        None,
        "d@x.example",
    ]
    assert [row[f"contact.{n}.first_name"] for n in (1, 2, 3)] == ["Ann", None, "Cy"]
    assert row["products"] == ("D365Sales", "Azure")
    assert row["industries"] == ("Retail", "Manufacturing")
    assert v.table.headers["contact.5.email"] == "Emails -> Customer Contact 5 Email"
    assert v.table.headers["contact.3.first_name"] == "First 3 -> Customer Contact 3 First Name"
    assert v.values.loc[3, "contact.2.email"] is None


# --------------------------------------------------------------------------- problems


def test_problems_name_the_export_row_and_column_the_field_and_the_mapping_line(legacy: Legacy) -> None:
    text = '[source]\ndate_format = "%d/%m/%Y"\n' + BASE
    v = legacy.check(
        [{"Close": "12/31/2026", "Email": "bob@@x"}, {"Opp ID": "2", "Value": "12x", "Close": "31/01/2027"}],
        text,
    )
    doc = v.report.as_json()
    assert not doc["valid"]
    by_code = {e["code"]: e for e in doc["errors"]}
    assert by_code["bad_source_date"] == {
        "sheet": "export.csv",
        "row": 2,
        "column": "Close -> Closing Date",
        "code": "bad_source_date",
        "message": by_code["bad_source_date"]["message"],
        "value": "12/31/2026",
        "file": str(legacy.tmp / "export.csv"),
        "field": "Closing Date",
        "sourceColumn": "Close",
        "mappingLine": 12,
    }
    assert "%d/%m/%Y" in by_code["bad_source_date"]["message"]
    assert "mapping.toml line 12" in by_code["bad_source_date"]["message"]
    # The validator's own problems name both sides too.
    email = by_code["invalid_email"]
    assert (email["row"], email["column"], email["field"], email["sourceColumn"], email["mappingLine"]) == (
        2,
        "Email -> Customer Contact 1 Email",
        "Customer Contact 1 Email",
        "Email",
        13,
    )
    assert (by_code["bad_source_number"]["row"], by_code["bad_source_number"]["value"]) == (3, "12x")
    # A cell whose conversion failed is reported once, not again as blank.
    assert sorted(codes(v)) == ["bad_source_date", "bad_source_number", "invalid_email"]


def test_a_mapping_that_fills_no_required_field_is_reported_once(legacy: Legacy) -> None:
    text = "\n".join(line for line in BASE.splitlines() if not line.startswith(('"Country"', '"Currency"')))
    v = legacy.check([{}], text)
    [problem] = [p for p in v.report.errors if p.code == "missing_columns"]
    assert "Country, Currency" in problem.message and "mapping.toml" in problem.message


def test_hidden_rows_and_header_row_of_a_workbook_export(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Export"
    ws.append(["Opportunities, all"])
    ws.append([])
    ws.append(HEADER)
    for i in range(3):
        ws.append([*[ROW[h] for h in HEADER[:-3]], "USD", dt.datetime(2027, 1, 31), ROW["Email"]])
        ws.cell(ws.max_row, 1, f"OPP-{i}")
    ws.row_dimensions[5].hidden = True
    wb.save(tmp_path / "export.xlsx")
    m = tmp_path / "m.toml"
    m.write_text(BASE)
    # The first filled row is the header: a title line above it is the header.
    with pytest.raises(MappingError, match=r"Did you mean|Its columns are"):
        check_file(tmp_path / "export.xlsx", mapping=m)
    ws.delete_rows(1, 2)
    ws.row_dimensions[3].hidden = True
    wb.save(tmp_path / "export.xlsx")
    v = check_file(tmp_path / "export.xlsx", mapping=m)
    assert v.valid, v.report.as_json()
    assert list(v.values.index) == [2, 3, 4]
    assert v.values.loc[2, "closing_date"] == dt.date(2027, 1, 31)
    assert [p.code for p in v.report.warnings] == ["hidden_rows"]


# --------------------------------------------------------------------------- broken mappings


def broken(legacy: Legacy, text: str) -> str:
    export = write_export(legacy.tmp / "export.csv", [ROW])
    with pytest.raises(MappingError) as info:
        check_file(export, mapping=legacy.mapping(text))
    assert info.value.exit_code == 2
    return str(info.value)


def test_an_unknown_field_names_its_line_and_the_close_field(legacy: Legacy) -> None:
    message = broken(legacy, BASE + '"Closng Date" = { column = "Close" }\n')
    assert message.startswith(
        'mapping.toml line 13: [fields] "Closng Date" (reading column "Close"): no '
        'template field is called that (did you mean "Closing Date"?)'
    )


def test_an_unknown_source_column_names_its_line_and_the_close_column(legacy: Legacy) -> None:
    message = broken(legacy, BASE.replace('"City" = "Town"', '"City" = "Twon"'))
    assert message.startswith(
        "mapping.toml line 6: [fields] \"City\" reads column 'Twon', which is not in "
        "'export.csv'. Did you mean 'Town'?"
    )


def test_a_value_missing_from_a_value_map_names_the_line_the_column_and_the_value(legacy: Legacy) -> None:
    text = BASE + '"Status" = { column = "Stage", values = { "Open" = "New" } }\n'
    v = legacy.check([{"Stage": "Open"}, {"Opp ID": "2", "Stage": "Negotiation"}], text)
    [p] = v.report.errors
    assert (p.code, p.row, p.column, p.source_column, p.field, p.mapping_line, p.value) == (
        "unmapped_value",
        3,
        "Stage -> Status",
        "Stage",
        "Status",
        13,
        "Negotiation",
    )
    assert p.message.startswith(
        "'Negotiation' is not in the value map of mapping.toml line 13 (\"Open\"): "
        'add "Negotiation" = "..." to it'
    )


def test_bad_toml_names_the_line(legacy: Legacy) -> None:
    message = broken(legacy, '[fields]\n"External Reference ID" = "Opp ID"\n"City" = Town\n')
    assert message.startswith("mapping.toml line 3 is not valid TOML")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('"Deal Value" = { colum = "Value" }', "has no option 'colum' (did you mean 'column'?)"),
        (
            '"Status" = { column = "Stage", values = { "Open" = "Opne" } }',
            '"Open" maps to "Opne", which is not a Status',
        ),
        ('"Created" = "Created On"', "Created is filled by Partner Center and ignored on input"),
        ('"Closing Date" = { column = "Close", date_format = "%d/%m" }', "does not read a whole date"),
        ('"Notes" = { columns = ["Opp Name", "Account"] }', 'add join = ", "'),
        ('"Customer Contact {n} Email" = { value = "a@b.example" }', "takes columns, not a constant"),
        ('"City {n}" = "Town"', "{n} is for numbered groups"),
        ('"Status" = { column = "Stage", other = "keep" }', "add values = { ... } too"),
        ('"City" = { column = "Town", split = " " }', "split and part go together"),
        ('"City" = { column = "Town", split = " ", part = "middle" }', "part must be one of"),
        ('"Deal Value" = { column = "Value", decimal = ";" }', 'decimal must be "." or ","'),
        ('"City" = { column = "Town", date_format = "%Y" }', "date_format is for date fields"),
        ('"Notes" = { column = "Town", value = "x" }', "has both value (a constant) and column(s)"),
        ('"Notes" = { default = "x" }', "use value = ... for a constant"),
        ('"city" = "Town"', '"city" fills City, which "City" (line 6) fills already'),
    ],
)
def test_each_bad_option_is_a_mapping_error_naming_its_line(
    legacy: Legacy, entry: str, expected: str
) -> None:
    # The entry replaces BASE's entry for the same field (TOML refuses a key twice), at the end.
    name = entry.split(" = ", 1)[0]
    kept = [line for line in BASE.splitlines() if not line.startswith(name + " =")]
    message = broken(legacy, "\n".join([*kept, entry]) + "\n")
    assert expected in message
    assert message.startswith(f"mapping.toml line {len(kept) + 1}: "), message


def test_several_problems_are_listed_together(legacy: Legacy) -> None:
    message = broken(legacy, '[source]\nsheets = "x"\n' + BASE + '"Foo" = "Bar"\n"Notes" = 3\n')
    assert message.splitlines()[0] == "mapping.toml has 3 problems; fix them and run again:"
    listed = [line.split(":")[0].strip() for line in message.splitlines()[1:]]
    assert listed == ["line 2", "line 15", "line 16"]


def test_a_sheet_the_export_does_not_have_names_the_mapping_line(tmp_path: Path) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        mapping_of(EXAMPLES["salesforce"]).read_text().replace('sheet = "Report"', 'sheet = "Opportunities"')
    )
    with pytest.raises(MappingError) as info:
        check_file(EXAMPLES["salesforce"], mapping=mapping)
    assert str(info.value).startswith(
        'm.toml line 7: [source] sheet = "Opportunities" names no sheet of the '
        "export. 'examples/legacy/salesforce-opportunities.xlsx' has no sheet".replace(
            "examples/legacy/", str(LEGACY) + "/"
        )
    )


def test_a_missing_mapping_file_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="map suggest"):
        load_mapping(tmp_path / "nope.toml")


def test_entry_lines_are_found_in_every_toml_form() -> None:
    text = '''# a "quoted" comment = x
[source]
sheet = "A # not a comment"

[fields]
"External Reference ID" = "Opp ID"   # trailing
'Deal Type'.value = "Partner-led"
Notes = """
City = "not a key"
"""
Products = { columns = [
  "P1",
  "P2",
] }
"Status".column = "Stage"

[fields."Substatus"]
column = "Stage"

[fields.Substatus.values]
"Closed \\"Won\\"" = "Won"
'''
    lines = key_lines(text)
    assert lines[("source", "sheet")] == 3
    assert lines[("fields", "External Reference ID")] == 6
    assert lines[("fields", "Deal Type")] == 7
    assert lines[("fields", "Notes")] == 8
    assert ("fields", "City") not in lines
    assert lines[("fields", "Products")] == 11
    assert lines[("fields", "Status")] == 15
    assert lines[("fields", "Substatus")] == 17
    assert lines[("fields", "Substatus", "values", 'Closed "Won"')] == 21
    mapping = parse_mapping(text)
    assert [f.line for f in mapping.fields] == [6, 7, 8, 11, 15, 17]


# --------------------------------------------------------------------------- the examples


def mapping_of(export: Path) -> Path:
    return export.with_name(export.name.rsplit(".", 1)[0] + ".mapping.toml")


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_each_example_export_is_valid_through_its_mapping(name: str) -> None:
    export = EXAMPLES[name]
    v = check_file(export, mapping=mapping_of(export))
    assert v.report.problems == [], v.report.as_json()
    assert v.table.rows == 8


def test_the_salesforce_workbook_is_what_its_script_writes(tmp_path: Path) -> None:
    sys.path.insert(0, str(LEGACY))
    try:
        import make_salesforce
    finally:
        sys.path.remove(str(LEGACY))
    from bulkref.sheets.template import save_workbook

    save_workbook(make_salesforce.build(), tmp_path / "fresh.xlsx")
    assert (tmp_path / "fresh.xlsx").read_bytes() == EXAMPLES["salesforce"].read_bytes(), (
        "run: .venv/bin/python examples/legacy/make_salesforce.py"
    )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox_as_sent: Any) -> Any:
    # as-sent: the examples say New and must plan unchanged after they are applied; what a
    # create answers (Active/Accepted, as documented) is not what these tests are about.
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", sandbox_as_sent.token)
    return sandbox_as_sent


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_each_example_plans_applies_and_then_plans_unchanged(name: str, env: Any, tmp_path: Path) -> None:
    export, mapping = EXAMPLES[name], mapping_of(EXAMPLES[name])
    planned = make_plan(export, api_url=env.url, mapping=mapping)
    assert planned.summary["create"] == 8, [r.reason for r in planned.rows]
    doc = planned.as_json()
    assert doc["mapping"] == str(mapping) and len(doc["mappingFingerprint"]) == 64
    assert Plan.from_json(json.loads(json.dumps(doc))) == planned
    run = apply_input(export, api_url=env.url, mapping=mapping, results=tmp_path / "results.xlsx")
    assert run.summary["created"] == 8 and run.summary["failed"] == 0, run.results
    assert sorted(r.row for r in run.results) == list(range(2, 10))
    again = make_plan(export, api_url=env.url, mapping=mapping)
    assert again.summary["unchanged"] == 8, [(r.row, r.changes) for r in again.rows]


def test_a_saved_plan_is_refused_once_its_mapping_changed(env: Any, tmp_path: Path) -> None:
    export = tmp_path / "hubspot-deals.csv"
    export.write_bytes(EXAMPLES["hubspot"].read_bytes())
    mapping = tmp_path / "hubspot.mapping.toml"
    mapping.write_bytes(mapping_of(EXAMPLES["hubspot"]).read_bytes())
    saved = make_plan(export, api_url=env.url, mapping=mapping).save(tmp_path / "plan.json")
    with pytest.raises(BulkrefError, match="leave --mapping out"):
        apply_input(saved, api_url=env.url, mapping=tmp_path / "other.toml", results=tmp_path / "r.xlsx")
    mapping.write_text(mapping.read_text() + "\n# reviewed\n")
    with pytest.raises(BulkrefError, match=r"The mapping .* changed since the plan was made"):
        apply_input(saved, api_url=env.url, results=tmp_path / "r.xlsx")


def test_read_mapped_gives_the_table_and_where_each_column_came_from() -> None:
    export = EXAMPLES["dynamics365"]
    mapped = read_mapped(export, mapping_of(export))
    origin = mapped.origins["address_line2"]
    assert (origin.field, origin.source, origin.line) == ("Address Line 2", "Street 2, Street 3", 36)
    assert mapped.table.frame.loc[4, "address_line2"] == "Tower B, Stock 12"


# --------------------------------------------------------------------------- command line


def bulkref(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkref", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.slow
def test_cli_validate_plan_and_apply_through_a_mapping(tmp_path: Path, sandbox_as_sent: Any) -> None:
    sandbox = sandbox_as_sent  # the re-plan after apply expects New to read back as sent
    env = {"BULKREF_HOME": str(tmp_path / "home"), "BULKREF_ACCESS_TOKEN": sandbox.token}
    export = tmp_path / "deals.csv"
    export.write_bytes(EXAMPLES["hubspot"].read_bytes())
    mapping = tmp_path / "deals.mapping.toml"
    mapping.write_bytes(mapping_of(EXAMPLES["hubspot"]).read_bytes())
    done = bulkref("validate", str(export), "--mapping", str(mapping), "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["valid"] is True
    done = bulkref(
        "plan",
        str(export),
        "--mapping",
        str(mapping),
        "--api-url",
        sandbox.url,
        "--out",
        str(tmp_path / "plan.json"),
        "--format",
        "json",
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["create"] == 8
    done = bulkref(
        "apply",
        str(tmp_path / "plan.json"),
        "--api-url",
        sandbox.url,
        "--yes",
        "--format",
        "json",
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["created"] == 8
    done = bulkref(
        "apply",
        str(export),
        "--mapping",
        str(mapping),
        "--api-url",
        sandbox.url,
        "--yes",
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "0 created, 0 updated, 8 unchanged" in done.stdout


@pytest.mark.slow
def test_cli_a_broken_mapping_exits_2_with_one_sentence_naming_the_line(tmp_path: Path) -> None:
    mapping = tmp_path / "broken.toml"
    mapping.write_text(mapping_of(EXAMPLES["hubspot"]).read_text().replace('"Deal Name"', '"Deal Nme"'))
    done = bulkref("validate", str(EXAMPLES["hubspot"]), "--mapping", str(mapping), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(
        "bulkref: broken.toml line 10: [fields] \"Referral Name\" reads column 'Deal Nme', which is not in "
        "'hubspot-deals.csv'. Did you mean 'Deal Name'?"
    )
    assert len(done.stderr.strip().splitlines()) == 1


DEEP_MAPPINGS = {
    "arrays": "x = " + "[" * 3000 + "]" * 3000 + "\n",
    "inline tables": '[fields]\n"Deal Value" = { column = "A", values = ' + "{ a = " * 40 + "1" + " }" * 41,
    "a dotted key": "[fields]\n" + "a." * 5000 + "b = 1\n",
    "a dotted table": "[" + "a." * 100_000 + "b]\n",
    "a dotted key just past the bound": "[fields]\n" + "a." * 40 + 'b = "x"\n',
}


@pytest.mark.parametrize("name", DEEP_MAPPINGS)
def test_a_mapping_nested_too_deep_is_one_sentence_naming_the_line(name: str) -> None:
    text = DEEP_MAPPINGS[name]
    with pytest.raises(MappingError) as info:
        parse_mapping(text, "/somewhere/deep.toml")
    message = str(info.value)
    assert message.startswith("deep.toml line ") and "more than 16 deep" in message, message
    assert "line 2" in message if text.startswith("[fields]") else "line 1" in message


def test_a_mapping_over_the_size_bound_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * 2**20 + b"\n[fields]\n")
    with pytest.raises(MappingError, match=r"^The mapping file 'big.toml' is over 1 MB"):
        load_mapping(big)
    with pytest.raises(MappingError, match="is over 1 MB"):
        parse_mapping("#" * (2**20 + 1), "big.toml")


def test_real_mappings_are_well_within_the_bounds() -> None:
    from bulkref.mapping.file import _nesting

    for path in LEGACY.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        assert len(text.encode()) < 2**20 // 20 and _nesting(text)[0] <= 4, path
        parse_mapping(text, path.name)


@pytest.mark.slow
def test_cli_a_mapping_too_deep_or_too_large_exits_2_without_a_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text(DEEP_MAPPINGS["arrays"])
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (2**20 + 10))
    for mapping, said in ((deep, "bulkref: deep.toml line 1 nests"), (big, "bulkref: The mapping file 'big")):
        done = bulkref("validate", str(EXAMPLES["hubspot"]), "--mapping", str(mapping), cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(said) and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_the_guide_s_full_example_is_a_valid_mapping_using_every_option() -> None:
    guide = (ROOT / "docs" / "mapping.md").read_text(encoding="utf-8")
    section = guide.split("\n## The format\n", 1)[1]
    text = section.split("```toml\n", 1)[1].split("```", 1)[0]
    mapping = parse_mapping(text, "mapping.md.toml")
    assert mapping.sheet == "Report"
    options = (
        "column",
        "columns",
        "value",
        "default",
        "values",
        "other",
        "split",
        "part",
        "join",
        "delimiter",
        "date_format",
        "decimal",
        "thousands",
        "sheet",
    )
    entries = [line for line in text.splitlines() if not line.startswith("#")]
    assert [o for o in options if not any(f"{o} =" in line for line in entries)] == []
