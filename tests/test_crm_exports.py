"""Four CRM exports the first examples do not cover (Pipedrive, Zoho CRM, a
Dynamics 365 "Export to Excel" workbook, a Salesforce "Opportunities with
Contact Roles" report), each with a mapping written from the guide (docs/mapping.md): they
validate, and plan and apply as many referrals as the export has deals."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from bulkref.apply.run import apply_input
from bulkref.plan.make import make_plan
from bulkref.plan.model import Plan
from bulkref.plan.review import plan_text
from bulkref.validation.check import check_file

LEGACY = Path(__file__).resolve().parents[1] / "examples" / "legacy"
# export -> (referrals, rows of the export read, rows skipped)
EXPORTS = {
    "pipedrive-deals.csv": (6, 6, 0),
    "zoho-deals.csv": (6, 6, 0),
    "dynamics365-export.xlsx": (5, 5, 0),
    "salesforce-contact-roles.xlsx": (5, 11, 5),
}


def mapping_of(name: str) -> Path:
    return LEGACY / (name.rsplit(".", 1)[0] + ".mapping.toml")


def make_exports() -> Any:
    sys.path.insert(0, str(LEGACY))
    try:
        import make_exports
    finally:
        sys.path.remove(str(LEGACY))
    return make_exports


def test_the_committed_exports_are_what_their_script_writes(tmp_path: Path) -> None:
    written = make_exports().write(tmp_path)
    assert sorted(p.name for p in written) == sorted(EXPORTS)
    for path in written:
        assert path.read_bytes() == (LEGACY / path.name).read_bytes(), (
            "run: .venv/bin/python examples/legacy/make_exports.py"
        )


@pytest.mark.parametrize("name", list(EXPORTS))
def test_each_export_is_valid_through_its_readme_mapping(name: str) -> None:
    referrals, read, skipped = EXPORTS[name]
    v = check_file(LEGACY / name, mapping=mapping_of(name))
    assert v.report.problems == [], v.report.as_json()
    assert len(v.values) == referrals
    assert len(v.report.skipped or []) == skipped
    grouped = sum(len(rows) for rows in (v.report.groups or {}).values())
    assert referrals - len(v.report.groups or {}) + grouped == read


def test_what_the_mappings_make_of_the_hard_cells() -> None:
    pipedrive = check_file(LEGACY / "pipedrive-deals.csv", mapping=mapping_of("pipedrive-deals.csv")).values
    beijing = pipedrive.loc[4]
    assert [beijing[k] for k in ("address_line1", "postal_code", "city", "country")] == [
        "建国路88号",
        "100022",
        "北京市",
        "CN",
    ]
    assert (beijing["contact.1.first_name"], beijing["contact.1.last_name"]) == ("伟", "王")
    assert pipedrive.loc[6, "postal_code"] == "1015 CJ"
    assert pipedrive[["status", "substatus"]].loc[[2, 3, 5, 6]].values.tolist() == [
        ["Active", "Accepted"],
        ["New", "Received"],
        ["Closed", "Lost"],
        ["Closed", "Won"],
    ]
    zoho = check_file(LEGACY / "zoho-deals.csv", mapping=mapping_of("zoho-deals.csv")).values
    assert zoho.loc[
        2, ["deal_value", "currency", "contact.1.first_name", "contact.1.last_name"]
    ].tolist() == [
        120000000.0,
        "KRW",
        "Min-jun",
        "Kim",
    ]
    dynamics = check_file(LEGACY / "dynamics365-export.xlsx", mapping=mapping_of("dynamics365-export.xlsx"))
    assert dynamics.values["substatus"].tolist() == ["Accepted", "Accepted", "Won", "Lost", "Accepted"]
    sf = check_file(
        LEGACY / "salesforce-contact-roles.xlsx", mapping=mapping_of("salesforce-contact-roles.xlsx")
    ).values
    lamna = sf.loc[10]  # three contact roles, one person in two of them
    assert [lamna[f"contact.{n}.email"] for n in (1, 2)] == [
        "liam.oconnor@lamnahealth.example",
        "grace.kim@lamnahealth.example",
    ]
    assert "contact.3.email" not in sf or lamna["contact.3.email"] is None
    assert sf.loc[4, "contact.3.email"] == "priya.nair@fourthcoffee.example"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox: Any) -> Any:
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", sandbox.token)
    return sandbox


def test_the_contact_roles_report_applies_as_one_referral_per_deal(env: Any, tmp_path: Path) -> None:
    name = "salesforce-contact-roles.xlsx"
    export = tmp_path / name
    export.write_bytes((LEGACY / name).read_bytes())
    mapping = tmp_path / "m.toml"
    mapping.write_text(mapping_of(name).read_text(encoding="utf-8"), encoding="utf-8")
    planned = make_plan(export, api_url=env.url, mapping=mapping)
    assert planned.summary["create"] == 5, [r.reason for r in planned.rows]
    # The footer's rows are in no plan row, and the plan says so, saved or shown.
    assert [s.row for s in planned.skipped] == [14, 16, 17, 18, 19]
    doc = json.loads(json.dumps(planned.as_json()))
    assert doc["skipped"][0] == {
        "row": 14,
        "reason": "Opportunity Owner 'Grand Totals (11 records)' matches '^Grand Totals'",
        "mappingLine": 12,
    }
    assert Plan.from_json(doc) == planned
    assert "skipped 5 rows of the export ([[skip]] in the mapping): 14, 16, 17, 18, 19" in plan_text(planned)
    run = apply_input(export, api_url=env.url, mapping=mapping, results=tmp_path / "results.xlsx")
    assert run.summary["created"] == 5 and run.summary["failed"] == 0, run.results
    assert sorted(r.row for r in run.results) == [2, 4, 7, 8, 10]  # each deal by its first row
    again = make_plan(export, api_url=env.url, mapping=mapping)
    assert again.summary["unchanged"] == 5, [r.reason for r in again.rows]


def test_every_problem_in_a_grouped_export_names_row_column_field_and_mapping_line(tmp_path: Path) -> None:
    import openpyxl

    name = "salesforce-contact-roles.xlsx"
    wb = openpyxl.load_workbook(LEGACY / name)
    ws = wb.active
    assert ws is not None
    ws["E3"] = 99000.0  # a second row of the first deal with another amount
    ws["D5"] = "On Hold"  # a stage the value map does not list
    ws["P6"] = "not an email"  # the third contact of the second deal
    ws["G7"] = "31.04.2027"  # no date in mm/dd/yyyy
    export = tmp_path / name
    wb.save(export)
    v = check_file(export, mapping=mapping_of(name))
    got = {(p.row, p.code, p.column) for p in v.report.errors}
    assert got == {
        (2, "group_conflict", "Amount -> Deal Value"),
        (5, "unmapped_value", "Stage -> Status"),
        (5, "unmapped_value", "Stage -> Substatus"),
        (6, "invalid_email", "Contact: Email -> Customer Contact 3 Email"),  # the row of the cell
        (7, "bad_source_date", "Close Date -> Closing Date"),
    }
    for p in v.report.errors:
        assert p.file == str(export) and p.field and p.source_column and p.mapping_line, p
    conflict = next(p for p in v.report.errors if p.code == "group_conflict")
    assert "'38000' (row 2); '99000' (row 3)" in conflict.message
    assert conflict.mapping_line == 26


@pytest.mark.slow
def test_cli_apply_says_how_many_rows_the_mapping_skipped(tmp_path: Path, sandbox: Any) -> None:
    import os
    import subprocess

    name = "salesforce-contact-roles.xlsx"
    (tmp_path / name).write_bytes((LEGACY / name).read_bytes())
    (tmp_path / "m.toml").write_bytes(mapping_of(name).read_bytes())
    env = {**os.environ, "BULKREF_HOME": str(tmp_path / "home"), "BULKREF_ACCESS_TOKEN": sandbox.token}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bulkref",
            "apply",
            name,
            "--mapping",
            "m.toml",
            "--api-url",
            sandbox.url,
            "--yes",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "5 to create, 0 to update, 0 unchanged, 0 blocked, 0 invalid, 5 rows skipped by the mapping." in (
        done.stdout + done.stderr
    )
