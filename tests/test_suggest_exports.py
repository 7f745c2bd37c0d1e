"""``bulkref map suggest`` on CRM exports the first examples do not cover: it maps
most of the columns that obviously correspond to a template field, lists what it
could not decide as TODOs at the top, and once those are answered the mapping
validates the export."""

from __future__ import annotations

import csv
import re
import tomllib
from pathlib import Path

import pytest

from bulkref.mapping.file import parse_mapping
from bulkref.mapping.suggest import suggest_mapping
from bulkref.spec.columns import SPEC
from bulkref.validation.check import check_mapped

LEGACY = Path(__file__).resolve().parents[1] / "examples" / "legacy"

# For each export, the template fields a person sees at once in its columns, and
# the column(s) that give each (either of two, where two columns say the same).
OBVIOUS: dict[str, dict[str, set[str]]] = {
    "pipedrive-deals.csv": {
        "External Reference ID": {"Deal - ID"},
        "Referral Name": {"Deal - Title"},
        "Customer Name": {"Organization - Name", "Deal - Organization"},
        "Deal Value": {"Deal - Value"},
        "Currency": {"Deal - Currency"},
        "Closing Date": {"Deal - Expected close date"},
        "Status": {"Deal - Stage", "Deal - Status"},
        "Substatus": {"Deal - Stage", "Deal - Status"},
        "Deal Type": {"Deal - Microsoft co-sell"},
        "Address Line 1": {"Organization - Address"},
        "City": {"Organization - Address"},
        "Country": {"Organization - Address"},
        "Customer Contact 1 First Name": {"Person - Name"},
        "Customer Contact 1 Email": {"Person - Email"},
        "Customer Contact 1 Phone": {"Person - Phone"},
    },
    "zoho-deals.csv": {
        "External Reference ID": {"Record Id"},
        "Referral Name": {"Deal Name"},
        "Customer Name": {"Account Name"},
        "Deal Value": {"Amount"},
        "Currency": {"Amount"},
        "Closing Date": {"Closing Date"},
        "Status": {"Stage"},
        "Notes": {"Description"},
        "Address Line 1": {"Billing Street"},
        "City": {"Billing City"},
        "Postal Code": {"Billing Code"},
        "Country": {"Billing Country"},
        "Customer Contact 1 First Name": {"Contact Name"},
        "Customer Contact 1 Email": {"Contact Email"},
        "Customer Contact 1 Phone": {"Phone"},
    },
    "dynamics365-export.xlsx": {
        "External Reference ID": {"(Do Not Modify) Opportunity"},
        "Referral Name": {"Topic"},
        "Customer Name": {"Potential Customer"},
        "Closing Date": {"Est. Close Date"},
        "Deal Value": {"Est. Revenue"},
        "Currency": {"Currency"},
        "Status": {"Status"},
        "Substatus": {"Status Reason"},
        "Deal Type": {"Co-sell Requested"},
        "Address Line 1": {"Street 1 (Account)"},
        "City": {"City (Account)"},
        "Postal Code": {"ZIP/Postal Code (Account)"},
        "Country": {"Country/Region (Account)"},
        "Customer Contact 1 First Name": {"Contact"},
        "Customer Contact 1 Email": {"Email (Contact)"},
        "Customer Contact 1 Phone": {"Business Phone (Contact)"},
    },
    "salesforce-contact-roles.xlsx": {
        "External Reference ID": {"Opportunity ID"},
        "Referral Name": {"Opportunity Name"},
        "Customer Name": {"Account Name"},
        "Status": {"Stage"},
        "Deal Value": {"Amount"},
        "Currency": {"Opportunity Currency"},
        "Closing Date": {"Close Date"},
        "Address Line 1": {"Billing Street"},
        "City": {"Billing City"},
        "Postal Code": {"Billing Zip/Postal Code"},
        "Country": {"Billing Country"},
        "Customer Contact 1 First Name": {"Contact: Full Name"},
        "Customer Contact 1 Email": {"Contact: Email"},
        "Customer Contact 1 Phone": {"Contact: Phone"},
    },
}

# How a reviewer answers the TODOs: a "?" by a value the field takes, consistently
# (every open deal Active and Accepted), and every required field not found by a constant.
ANSWERS = {"Status": "Active", "Substatus": "Accepted"}
_ENTRY = re.compile(r'^# ("([^"]+)" = .*)$')


def answer(text: str) -> str:
    out = []
    for line in text.splitlines():
        m = _ENTRY.match(line)
        if m and '"?"' in m.group(1):
            assert m.group(2) in ANSWERS, f"a TODO this test cannot answer: {line}"
            out.append(m.group(1).replace('"?"', f'"{ANSWERS[m.group(2)]}"'))
        elif m and "<column of the export>" in m.group(1):
            out.append(
                m.group(1).split("   #")[0].replace('"<column of the export>"', '{ value = "to check" }')
            )
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def reads(doc: dict[str, object]) -> dict[str, set[str]]:
    """The export columns each field's entry reads, by the field's template header ({n} as 1)."""
    out: dict[str, set[str]] = {}
    for name, entry in doc["fields"].items():  # type: ignore[attr-defined]
        column = SPEC.resolve(name.replace("{n}", "1"))
        assert column is not None, name
        if isinstance(entry, str):
            out[column.header] = {entry}
        else:
            out[column.header] = {entry["column"]} if "column" in entry else set(entry.get("columns", []))
    return out


@pytest.mark.parametrize("name", list(OBVIOUS))
def test_most_obvious_columns_are_mapped_and_the_answered_suggestion_validates(name: str) -> None:
    found = suggest_mapping(LEGACY / name)
    text = found.toml()
    answered = answer(text)
    doc = tomllib.loads(answered)
    got = reads(doc)
    mapped = [f for f, columns in OBVIOUS[name].items() if got.get(f, set()) & columns]
    share = len(mapped) / len(OBVIOUS[name])
    assert share >= 0.8, f"{share:.0%}: not mapped: {set(OBVIOUS[name]) - set(mapped)}"
    checked = check_mapped(LEGACY / name, parse_mapping(answered, "answered.toml"))
    assert checked.report.errors == [], [(p.row, p.column, p.message) for p in checked.report.errors]
    # Every TODO is in one list at the top, and each is marked where it is to be done.
    top = text.split("[source]")[0]
    assert len(found.open_questions) == top.count("\n#   - ")
    for question in found.open_questions:
        assert f"#   - {question}" in top
        assert text.count(question) == 2 or "required for new referrals" in question


def test_pipedrive_prefixes_address_strings_and_two_column_status() -> None:
    text = suggest_mapping(LEGACY / "pipedrive-deals.csv").toml()
    doc = tomllib.loads(text)
    fields = doc["fields"]
    assert fields["External Reference ID"] == "Deal - ID"  # not Partner Center's Referral ID
    assert fields["Customer Contact 1 Email"] == "Person - Email"
    assert fields["Deal Type"]["column"] == "Deal - Microsoft co-sell"
    # Europe's "street, postal city, country" and China's country-first form, both.
    assert fields["City"] == {
        "column": "Organization - Address",
        "pattern": ["street_postal_city", "country_city_street"],
        "part": "city",
    }
    assert fields["Country"]["values"] == {"中国": "CN"}
    assert set(doc["patterns"]) == {"street_postal_city", "country_city_street"}
    assert (
        '# "Status" = { columns = ["Deal - Status", "Deal - Stage"], rules = [["lost", "*", "Closed"], '
        '["won", "*", "Closed"], ["open", "Proposal made", "?"]'
    ) in text


def test_zoho_amounts_with_currency_codes_and_type_not_as_referral_type() -> None:
    found = suggest_mapping(LEGACY / "zoho-deals.csv")
    doc = tomllib.loads(found.toml())
    assert doc["fields"]["Currency"] == {"column": "Amount", "from_amount": True}
    assert doc["fields"]["Deal Value"] == "Amount"
    assert doc["source"]["date_format"] == "%b %d, %Y"
    assert "Referral Type" not in doc["fields"]
    assert "Type" in [h for h, _ in found.unmapped]
    assert "decimal and thousands" not in found.toml()  # KRW 120,000,000 reads as it is
    assert found.open_questions[0].startswith("Deal Type: no column says which deals are co-sell")
    assert doc["fields"]["Deal Type"] == {"value": "Partner-led"}
    # Kim Min-jun, Lee Seo-yeon, ...: Korean names, family name first.
    assert doc["fields"]["Customer Contact 1 Last Name"] == {
        "column": "Contact Name",
        "name": "last",
        "name_order": "family_given",
    }
    checked = check_mapped(LEGACY / "zoho-deals.csv", parse_mapping(answer(found.toml()), "answered.toml"))
    assert checked.values.loc[2, ["contact.1.first_name", "contact.1.last_name"]].tolist() == [
        "Min-jun",
        "Kim",
    ]


def test_a_contact_roles_report_is_grouped_and_its_footer_skipped() -> None:
    found = suggest_mapping(LEGACY / "salesforce-contact-roles.xlsx")
    text = found.toml()
    doc = tomllib.loads(text)
    assert doc["source"]["group_by"] == "Opportunity ID"
    assert "11 rows, 5 deals (up to 3 rows each)" in text
    assert doc["skip"] == [{"column": "Opportunity Owner", "pattern": "^Grand Totals", "and_below": True}]
    assert doc["fields"]["Customer Contact {n} Email"] == "Contact: Email"
    assert doc["fields"]["Customer Contact {n} First Name"] == {
        "column": "Contact: Full Name",
        "name": "first",
    }
    assert doc["fields"]["Address Line 1"] == {"column": "Billing Street", "split": "\n", "part": "first"}


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_total_rows_and_rows_without_an_id_get_skip_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path / "report.csv",
        [
            ["Deal ID", "Deal Name", "Amount", "Account"],
            ["1", "A", "100", "X"],
            ["", "B (draft)", "50", "Y"],
            ["Total", "", "150", ""],
            ["2", "C", "75", "Z"],
        ],
    )
    doc = tomllib.loads(suggest_mapping(path).toml())
    assert doc["skip"] == [
        {"column": "Deal ID", "pattern": r"(?i)^\s*(grand\s+|sub\s*)?totals?\b"},
        {"column": "Deal ID", "blank": True},
    ]


def test_decimal_and_thousands_are_asked_for_only_where_the_numbers_need_them(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.csv", [["Deal ID", "Amount"], ["1", "1,234.50"], ["2", "USD 99"]])
    assert "decimal and thousands" not in suggest_mapping(plain).toml()
    mixed = write(tmp_path / "mixed.csv", [["Deal ID", "Amount"], ["1", "1.234,50"], ["2", "1,234.50"]])
    found = suggest_mapping(mixed)
    assert any("add decimal and thousands for this format" in q for q in found.open_questions)


def test_an_export_in_the_template_s_own_shape_is_mapped_one_to_one() -> None:
    template = LEGACY.parent / "referrals.csv"
    found = suggest_mapping(template)
    doc = tomllib.loads(found.toml())
    assert doc["fields"]["Status"] == "Status" and doc["fields"]["Substatus"] == "Substatus"
    assert found.open_questions == [] and "skip" not in doc and "group_by" not in doc["source"]
    checked = check_mapped(template, parse_mapping(found.toml(), "suggested.toml"))
    assert checked.report.errors == [], [(p.row, p.column, p.message) for p in checked.report.errors]


def test_a_whole_address_fills_only_the_parts_no_column_of_their_own_fills(tmp_path: Path) -> None:
    path = write(
        tmp_path / "deals.csv",
        [
            ["Deal ID", "Deal Name", "Address", "City"],
            ["1", "A", "Leopoldstraße 12, 80802 München, Germany", "Munich"],
            ["2", "B", "Calle de Alcalá 48, 28014 Madrid, Spain", "Madrid"],
        ],
    )
    found = suggest_mapping(path)
    fields = tomllib.loads(found.toml())["fields"]
    assert fields["City"] == "City"
    assert fields["Postal Code"]["part"] == "postal" and fields["Country"]["part"] == "country"
    parse_mapping(found.toml(), "suggested.toml")  # no field filled twice


def test_a_footer_line_with_a_line_break_still_gives_a_loadable_skip_rule(tmp_path: Path) -> None:
    path = write(
        tmp_path / "report.csv",
        [
            ["Deal ID", "Deal Name", "Amount", "Account"],
            ["1", "A", "100", "X"],
            ["2", "B", "50", "Y"],
            ["Confidential 'internal'\nDo not distribute", "", "", ""],
        ],
    )
    found = suggest_mapping(path)
    mapping = parse_mapping(found.toml(), "suggested.toml")
    assert [r.pattern.pattern for r in mapping.skips if r.pattern] == ["^Confidential .internal."]
