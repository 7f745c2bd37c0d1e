"""``bulkref map suggest``: a starter mapping from an export's headers and cells."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bulkref.mapping.file import parse_mapping
from bulkref.mapping.suggest import suggest_mapping
from bulkref.validation.check import check_mapped

LEGACY = Path(__file__).resolve().parents[1] / "examples" / "legacy"
EXAMPLES = ["dynamics365-opportunities.csv", "salesforce-opportunities.xlsx", "hubspot-deals.csv"]
OBVIOUS = {
    "External Reference ID",
    "Referral Name",
    "Customer Name",
    "Deal Value",
    "Closing Date",
    "Currency",
    "Country",
}


def export(tmp_path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_s_obvious_columns_are_mapped_by_themselves(name: str) -> None:
    found = suggest_mapping(LEGACY / name)
    assert set(found.mapped) >= OBVIOUS | {"Deal Type"}  # Deal Type is always there, from a column or not
    mapping = parse_mapping(found.toml(), "suggested.toml")  # loads as it is, no edits
    checked = check_mapped(LEGACY / name, mapping)
    # What is left to the reviewer is listed at the top: the stages' statuses above all.
    assert checked.report.errors == []
    assert [q.split(":")[0] for q in found.open_questions][-2:] == ["Status", "Substatus"]


def test_the_dynamics_export_gets_its_formats_currency_codes_and_a_stage_value_map_to_fill() -> None:
    text = suggest_mapping(LEGACY / "dynamics365-opportunities.csv").toml()
    doc = tomllib.loads(text)
    assert doc["source"] == {"date_format": "%d/%m/%Y", "decimal": ",", "thousands": "."}
    fields = doc["fields"]
    assert fields["External Reference ID"] == "(Do Not Modify) Opportunity"
    assert fields["Referral Name"] == "Topic"
    assert fields["Deal Value"] == "Est. Revenue"
    assert fields["Currency"]["values"] == {
        "Euro": "EUR",
        "Swiss Franc": "CHF",
        "Pound Sterling": "GBP",
        "US Dollar": "USD",
    }
    assert fields["Customer Contact 1 First Name"] == {"column": "Contact", "name": "first"}
    # The Yes/No co-sell column gives the deal type, and the help a co-sell deal asks for.
    assert fields["Deal Type"] == {
        "column": "Co-sell Requested",
        "values": {"Yes": "Co-sell", "No": "Partner-led"},
    }
    assert fields["Help Needed"]["values"] == {"Yes": "GeneralOrOther", "No": ""}
    # The state and the stage decide the status, the state and its reason the substatus:
    # commented rules, the won and lost ones decided, the open ones to fill in.
    assert "Status" not in fields and "Substatus" not in fields
    assert (
        '# "Status" = { columns = ["Status", "Sales Stage"], rules = [["Won", "*", "Closed"], '
        '["Lost", "*", "Closed"], ["Open", "Develop", "?"]'
    ) in text
    assert '# "Substatus" = { columns = ["Status", "Status Reason"], rules = [["Won", "*", "Won"]' in text
    # Local country names are looked up.
    assert fields["Country"]["values"] == {"Österreich": "AT", "Deutschland": "DE"}
    # Every column left out is listed, with samples.
    assert '#   "Owner"                         e.g. "Jonas Weber", "Lea Brunner"' in text
    assert '"(Do Not Modify) Modified On"' in text.split("not mapped")[1]


def test_salesforce_and_hubspot_specifics() -> None:
    sf = tomllib.loads(suggest_mapping(LEGACY / "salesforce-opportunities.xlsx").toml())
    assert sf["source"] == {"sheet": "Report", "date_format": "%m/%d/%Y"}
    assert sf["fields"]["Customer Contact 1 Email"] == "Contact: Email"
    assert sf["fields"]["Country"] == {
        "column": "Billing Country",
        "values": {"Brasil": "BR"},
        "other": "keep",
    }
    assert sf["fields"]["Address Line 2"] == {"column": "Billing Street", "split": "\n", "part": "rest"}
    assert "Referral Type" not in sf["fields"]  # Type is New Customer / Existing Customer: not that
    hs_text = suggest_mapping(LEGACY / "hubspot-deals.csv").toml()
    hs = tomllib.loads(hs_text)
    assert hs["source"] == {"date_format": "%Y-%m-%d %H:%M"}
    assert hs["fields"]["Customer Contact {n} Email"] == {"column": "Associated Contact", "delimiter": ";"}
    assert hs["fields"]["External Reference ID"] == "Record ID"
    assert '# "Status" = { column = "Deal Stage", values = { "appointmentscheduled" = "?"' in hs_text
    assert '"closedwon" = "Closed"' in hs_text  # what the stage's name says is decided
    # HubSpot's "Deal Type" is new or existing business; its co-sell pipeline is the deal type.
    assert hs["fields"]["Deal Type"] == {
        "column": "Pipeline",
        "values": {"Sales Pipeline": "Partner-led", "Microsoft Co-sell": "Co-sell"},
    }


def test_ambiguous_dates_and_plain_numbers(tmp_path: Path) -> None:
    path = export(
        tmp_path,
        [
            ["Deal ID", "Deal", "Close Date", "Amount", "Company"],
            ["1", "A", "03/04/2027", "1,234.50", "X"],
            ["2", "B", "04/05/2027", "99", "Y"],
        ],
    )
    found = suggest_mapping(path)
    doc = tomllib.loads(found.toml())
    assert doc["source"] == {"date_format": "%d/%m/%Y"}  # no day over 12: dd/mm is assumed, and shown
    assert doc["fields"]["Deal Value"] == "Amount"
    assert "# Close Date: 03/04/2027, 04/05/2027" in found.toml()


def test_values_that_are_already_valid_choices_are_mapped_plainly(tmp_path: Path) -> None:
    path = export(
        tmp_path,
        [
            ["Opportunity ID", "Stage", "Customer Size"],
            ["1", "New", "1to50employees"],
            ["2", "closed", "51to500employees"],
        ],
    )
    fields = tomllib.loads(suggest_mapping(path).toml())["fields"]
    assert fields["Status"] == "Stage"
    assert fields["Customer Size"] == "Customer Size"


@pytest.mark.slow
def test_cli_map_suggest_prints_writes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bulkref", "map", "suggest", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=dict(os.environ),
            timeout=60,
        )

    source = str(LEGACY / "hubspot-deals.csv")
    printed = run(source)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == suggest_mapping(source).toml()
    written = run(source, "-o", "mapping.toml")
    assert written.returncode == 0 and written.stdout.startswith("Wrote mapping.toml: 14 fields mapped")
    assert (tmp_path / "mapping.toml").read_text(encoding="utf-8") == printed.stdout
    again = run(source, "-o", "mapping.toml")
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    forced = run(source, "-o", "mapping.toml", "--force")
    assert forced.returncode == 0
