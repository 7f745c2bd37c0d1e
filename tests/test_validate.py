"""Validation: every problem reported by sheet, Excel row and header, with a stable code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import VALID_ROW, row, write_csv

from bulkref.validation.check import check_file

Make = Callable[..., Path]


def codes(path: Path) -> list[tuple[int | None, str | None, str]]:
    return [(p.row, p.column, p.code) for p in check_file(path).report.errors]


def test_valid_row_has_no_problems(xlsx: Make) -> None:
    result = check_file(xlsx([VALID_ROW]))
    assert result.valid, [p.message for p in result.report.problems]
    assert result.report.rows == 1
    typed = result.values.loc[2]
    assert typed["closing_date"] == dt.date(2027, 3, 31)
    assert typed["deal_value"] == 50000.0
    assert typed["contact.1.email"] == "sue@contoso.com"


def test_a_dozen_mistakes_in_a_dozen_columns_are_all_reported(xlsx: Make) -> None:
    bad = row(
        External_Reference_ID="CRM-2",
        Deal_Type="Cosell please",  # invalid_choice
        Customer_Size="huge",  # invalid_choice
        Country="Atlantis",  # invalid_country
        Currency="DOLLARS",  # invalid_currency
        Deal_Value="lots",  # not_a_number
        Closing_Date="next spring",  # not_a_date
        Share_With_Microsoft_Sellers="perhaps",  # not_yes_no
        Status="Active",  # substatus Pending does not fit Active
        **{
            "Customer Contact 1 Email": "sue-at-contoso",
            "Customer Contact 1 Phone": "call me",
            "Customer DUNS": "12345",
            "Referral Name": None,
        },
    )
    path = xlsx([VALID_ROW, bad])
    found = {(r, c, code) for r, c, code in codes(path)}
    assert found == {
        (3, "Deal Type", "invalid_choice"),
        (3, "Customer Size", "invalid_choice"),
        (3, "Country", "invalid_country"),
        (3, "Currency", "invalid_currency"),
        (3, "Deal Value", "not_a_number"),
        (3, "Closing Date", "not_a_date"),
        (3, "Share With Microsoft Sellers", "not_yes_no"),
        (3, "Substatus", "substatus_mismatch"),
        (3, "Customer Contact 1 Email", "invalid_email"),
        (3, "Customer DUNS", "invalid_duns"),
        (3, "Referral Name", "required"),
    }
    report = check_file(path).report
    # Partner Center holds phone numbers as free text: one with no digit is only a warning.
    assert [(p.row, p.column, p.code) for p in report.warnings] == [
        (3, "Customer Contact 1 Phone", "invalid_phone")
    ]
    assert all(p.sheet == "Referrals" for p in report.errors)
    by_code = {p.code: p for p in report.errors}
    assert by_code["invalid_country"].value == "Atlantis"
    assert "Atlantis" in by_code["invalid_country"].message
    assert by_code["substatus_mismatch"].message.endswith("Active allows Accepted.")


def test_tolerant_values_are_read_not_rejected(xlsx: Make) -> None:
    path = xlsx(
        [
            row(
                Deal_Type="partner led",
                Country="Germany",
                Currency="eur",
                Deal_Value="1,234.50",
                Share_With_Microsoft_Sellers="TRUE",
                Closing_Date="2027-01-15",
                Marketplace_Purchase_Intent="have not decided",
                **{"Customer DUNS": 81466849, "Postal Code": 98052},
            )
        ]
    )
    result = check_file(path)
    assert result.valid, [p.message for p in result.report.problems]
    v = result.values.loc[2]
    assert (v["deal_type"], v["country"], v["currency"]) == ("Partner-led", "DE", "EUR")
    assert v["deal_value"] == 1234.5
    assert v["share_with_microsoft"] is True
    assert v["marketplace_intent"] == "HaveNotDecided"
    assert v["customer_duns"] == "081466849"  # the leading zero a number cell lost
    assert v["postal_code"] == "98052"


@pytest.mark.parametrize(
    ("changes", "column", "code"),
    [
        ({"Deal Type": "Private"}, "Share With Microsoft Sellers", "private_shared_with_microsoft"),
        (
            {"Share With Microsoft Sellers": "No"},
            "Share With Microsoft Sellers",
            "needs_share_with_microsoft",
        ),
        ({"Deal Type": "Co-sell"}, "Help Needed", "cosell_needs_help"),
        ({"Help Needed": "ProofOfConceptOrDemo"}, "Help Needed", "help_without_cosell"),
        ({"Referral Type": "Independent"}, "Referral Type", "referral_type_mismatch"),
        (
            {"Deal Type": "Private", "Share With Microsoft Sellers": "No", "Referral Type": "Shared"},
            "Referral Type",
            "shared_needs_target",
        ),
        (
            {
                "Deal Type": "Co-sell",
                "Help Needed": "GeneralOrOther",
                "Partner Role": "Transact",
                "Solution Area": "Security",
            },
            "Solution Play",
            "services_cosell_incomplete",
        ),
        (
            {"Partner Role": "Transact", "Solution Area": "Security", "Solution Play": "Data security"},
            "Deal Type",
            "services_cosell_not_cosell",
        ),
        (
            {"Customer Contact 1 Email": None, "Customer Contact 1 Phone": None},
            "Customer Contact 1 Email",
            "contact_needs_email_or_phone",
        ),
        (
            {
                "Customer Contact 1 Email": None,
                "Customer Contact 1 Phone": None,
                "Customer Contact 1 First Name": None,
                "Customer Contact 1 Last Name": None,
            },
            "Customer Contact 1 Email",
            "no_customer_contact",
        ),
        ({"Deal Value": -1}, "Deal Value", "negative_value"),
        ({"Status": "Closed", "Substatus": "Accepted"}, "Substatus", "substatus_mismatch"),
        ({"Team Member 1 First Name": "Ann"}, "Team Member 1 Email", "team_member_needs_email"),
        ({"Target 1 Type": "SolutionProfile"}, "Target 1 ID", "incomplete_target"),
    ],
)
def test_cross_field_rules(xlsx: Make, changes: dict[str, object], column: str, code: str) -> None:
    r = dict(VALID_ROW)
    r.update(changes)
    headers = list(dict.fromkeys([*VALID_ROW, *changes, "Team Member 1 Email", "Target 1 ID"]))
    found = codes(xlsx([r], headers=headers))
    assert (2, column, code) in found, found
    assert len(found) == 1, f"one mistake, one error: {found}"


def test_the_good_forms_of_the_cross_field_rules_pass(xlsx: Make) -> None:
    rows = [
        row(External_Reference_ID="P", Deal_Type="Private", Share_With_Microsoft_Sellers="No"),
        row(
            External_Reference_ID="S",
            Deal_Type="Private",
            Share_With_Microsoft_Sellers=None,
            Referral_Type="Shared",
            **{"Target 1 Type": "SolutionProfile", "Target 1 ID": "SOL-1"},
        ),
        row(External_Reference_ID="C", Deal_Type="Co-sell", Help_Needed="ProofOfConceptOrDemo"),
        row(
            External_Reference_ID="V",
            Deal_Type="Co-sell",
            Help_Needed="GeneralOrOther",
            Partner_Role="Deployment services",
            Solution_Area="Infrastructure",
            Solution_Play="Migrate SAP",
        ),
        row(External_Reference_ID="A", Status="Active", Substatus="Accepted"),
    ]
    result = check_file(xlsx(rows))
    assert result.valid, [(p.row, p.code) for p in result.report.problems]


def test_external_reference_id_must_be_present_and_unique(xlsx: Make) -> None:
    found = codes(xlsx([VALID_ROW, VALID_ROW, row(External_Reference_ID=None)]))
    assert (2, "External Reference ID", "duplicate_external_id") in found
    assert (3, "External Reference ID", "duplicate_external_id") in found
    assert (4, "External Reference ID", "required") in found
    message = next(p.message for p in check_file(xlsx([VALID_ROW, VALID_ROW])).report.errors)
    assert "row 3" in message


def test_update_rows_need_only_the_key(xlsx: Make) -> None:
    path = xlsx(
        [{"External Reference ID": "CRM-9", "Referral ID": "abc", "Status": "Closed", "Substatus": "Won"}]
    )
    result = check_file(path)
    assert result.valid, [p.message for p in result.report.problems]


def test_missing_required_columns_is_one_error_naming_all(xlsx: Make) -> None:
    path = xlsx([{"External Reference ID": "X1", "Referral Name": "Deal"}])
    errors = check_file(path).report.errors
    missing = [p for p in errors if p.code == "missing_columns"]
    assert len(missing) == 1
    for header in ("Deal Type", "Customer Name", "Country", "Currency", "Closing Date"):
        assert header in missing[0].message


def test_csv_reports_the_same_problems_as_xlsx(tmp_path: Path, xlsx: Make) -> None:
    rows = [VALID_ROW, row(External_Reference_ID="CRM-2", Country="Atlantis", Deal_Value="x")]
    from_csv = codes(write_csv(tmp_path / "r.csv", rows, encoding="utf-8-sig", delimiter=";"))
    assert from_csv == codes(xlsx(rows))
    assert from_csv == [(3, "Country", "invalid_country"), (3, "Deal Value", "not_a_number")]


def test_a_referral_id_stands_in_for_the_external_reference_id(xlsx: Make) -> None:
    # Referrals made in Partner Center (incoming leads, the UI) have no External Reference ID:
    # exported and edited, their rows are found by Referral ID.
    path = xlsx(
        [
            {
                "External Reference ID": None,
                "Referral ID": "abc",
                "Status": "Active",
                "Substatus": "Accepted",
            },
            {"External Reference ID": None, "Referral ID": None, "Status": "Active", "Substatus": "Accepted"},
        ]
    )
    errors = [(p.row, p.column, p.code) for p in check_file(path).report.errors]
    assert (2, "External Reference ID", "required") not in errors
    assert (3, "External Reference ID", "required") in errors
