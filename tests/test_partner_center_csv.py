"""Partner Center's own co-sell CSV, read as it is: validate, plan and apply it with no
mapping, results in the same layout, and ``export --layout partner-center`` writing it back.

tests/data/partner-center-cosell.csv is 12 deals in the layout Partner Center's page
"Bulk operations for Co-sell opportunities using CSV files" lists (English headers, a third
of the deals co-sell), as an ops person who uses its bulk upload holds it.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import csrf_of
from helpers import upload_file as upload
from helpers import web_client as client

from bulkref.apply.run import apply_input
from bulkref.cli.main import cli
from bulkref.plan.make import make_plan
from bulkref.validation.check import check_file
from bulkref.web.app import Settings
from bulkref.web.server import WebServer

DATA = Path(__file__).parent / "data"
DEALS = DATA / "partner-center-cosell.csv"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox_factory: Any) -> Any:
    documented = sandbox_factory(profile="documented")
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", documented.token)
    return documented


def test_the_twelve_deals_validate_with_no_mapping_each_convention_read() -> None:
    checked = check_file(DEALS)
    assert checked.valid, [p.message for p in checked.report.errors]
    assert checked.report.layout == "partner-center" and checked.report.rows == 12
    v = checked.values
    assert v["deal_type"].value_counts().to_dict() == {"Partner-led": 6, "Co-sell": 4, "Private": 2}
    first = v.loc[2]
    assert first["external_id"] == "CRM-0001"  # CRM ID
    assert str(first["closing_date"]) == "2027-01-30"  # 1/30/2027, month first
    assert first["help_needed"] == "ProofOfConceptOrDemo"  # help code 3
    assert (first["status"], first["substatus"]) == ("New", "Pending")  # the page's New/Accepted, new deal
    assert first["marketplace_intent"] == "HaveNotDecided"
    assert first["solution.1.id"] == "SOL-1234-PQRS"  # the id of 'SOL-1234-PQRS, USD, 10, 100'
    assert (first["team.1.first_name"], first["team.1.last_name"], first["team.1.phone"]) == (
        "Bob",
        "Partner",
        "999999",
    )
    assert first["team.1.email"] == "bob.partner1@partner.example"
    # 'Alice, Seller, , alice...': a blank phone keeps the email in its place.
    assert (first["team.2.phone"], first["team.2.email"]) == (None, "alice.seller@partner.example")
    assert v.loc[3, "help_needed"] is None  # help No: no code sent
    # One note names the columns left out, numbered ones said once.
    notes = [p.message for p in checked.report.warnings]
    assert len(notes) == 1 and "'Managed Account 1-2'" in notes[0] and "'Sales Stage'" in notes[0]


def test_validate_says_the_layout_and_json_carries_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(DEALS)])
    assert result.exit_code == 0, result.output
    assert "(read as Partner Center's co-sell layout)" in result.output
    doc = json.loads(CliRunner().invoke(cli, ["validate", str(DEALS), "--format", "json"]).output)
    assert doc["layout"] == "partner-center" and doc["valid"] and doc["skipped"] == []


def test_bad_cells_name_the_layouts_column_and_no_mapping_line(tmp_path: Path) -> None:
    rows = _rows(DEALS)
    rows[0]["What specific help from Microsoft?"] = "9"
    rows[1]["Estimated Close Date"] = "2027-02-15"
    rows[2]["Consent to share Customer/Partner contact"] = "No"
    rows[3]["Team member 1"] = "just one field"
    checked = check_file(_write(tmp_path / "bad.csv", rows))
    errors = {(p.row, p.code): p for p in checked.report.errors}
    assert set(errors) == {(2, "no_rule_matched"), (3, "bad_source_date"), (5, "pattern_mismatch")}
    help_ = errors[(2, "no_rule_matched")]
    assert help_.column == "Microsoft help required? + What specific help from Microsoft? -> Help Needed"
    assert "Partner Center's co-sell layout" in help_.message and "line" not in help_.message
    assert all(p.mapping_line is None for p in checked.report.problems)
    # Consent No: Partner Center creates no deal without it; the row is left out, never silently.
    assert [s.row for s in checked.report.skipped or ()] == [4]
    assert "Consent to share Customer/Partner contact is No" in (checked.report.skipped or [])[0].reason


def test_a_layout_without_a_required_column_is_one_sentence(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "Customer City"} for r in _rows(DEALS)]
    checked = check_file(_write(tmp_path / "nocity.csv", rows))
    missing = [p for p in checked.report.errors if p.code == "missing_columns"]
    assert len(missing) == 1 and "City" in missing[0].message and "mapping" not in missing[0].message


def test_apply_to_the_documented_sandbox_results_in_the_layout_and_a_rerun_is_safe(
    env: Any, tmp_path: Path
) -> None:
    deals = tmp_path / "deals.csv"
    shutil.copy(DEALS, deals)
    rows = _rows(deals)
    rows[4]["Customer Country"] = "Narnia"  # one bad row: its Errors cell says why
    _write(deals, rows)
    run = apply_input(deals, api_url=env.url)
    assert run.summary["created"] == 11 and run.summary["skipped"] == 1, run.results
    assert run.layout_results == tmp_path / "deals.partner-center-results.csv"
    back = _rows(run.layout_results)
    assert list(back[0])[: len(rows[0])] == list(rows[0])  # the same headers, in order
    assert [r["CRM ID"] for r in back] == [r["CRM ID"] for r in rows]
    assert "Narnia" in back[4]["Errors"] and all(not r["Errors"] for i, r in enumerate(back) if i != 4)
    assert all(r["Referral ID"] and r["Engagement ID"] for i, r in enumerate(back) if i != 4)
    # Nothing to remove before running it again: the same file, or the results file itself.
    again = apply_input(deals, api_url=env.url)
    assert again.summary["created"] == 0 and again.summary["unchanged"] == 11
    fixed = back.copy()
    fixed[4] = {**fixed[4], "Customer Country": "GB", "Errors": ""}
    redo = apply_input(_write(tmp_path / "redo.csv", fixed), api_url=env.url)
    assert redo.summary["created"] == 1 and redo.summary["unchanged"] == 11, redo.results


def test_cli_apply_names_the_layout_results(env: Any, tmp_path: Path) -> None:
    deals = tmp_path / "deals.csv"
    shutil.copy(DEALS, deals)
    result = CliRunner().invoke(cli, ["apply", str(deals), "--api-url", env.url, "--yes", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{") :])
    assert doc["partnerCenterResults"].endswith("deals.partner-center-results.csv")
    assert doc["skippedByMapping"] == 0


def _many(n: int) -> list[dict[str, str]]:
    # One call a deal (no co-sell's second referral): the scale is what is tried here.
    template = [r for r in _rows(DEALS) if r["Microsoft help required?"] == "No"]
    out = []
    for i in range(n):
        row = dict(template[i % len(template)])
        row["CRM ID"] = f"BULK-{i:05d}"
        row["Deal Name"] = f"{row['Deal Name']} #{i}"
        out.append(row)
    return out


def test_five_thousand_rows_plan_and_apply_with_no_row_limit(env: Any, tmp_path: Path) -> None:
    big = _write(tmp_path / "big.csv", _many(5000))
    run = apply_input(big, api_url=env.url, concurrency=16)
    assert run.plan.layout == "partner-center" and run.plan.summary["create"] == 5000
    assert run.summary["created"] == 5000 and run.summary["failed"] == 0
    assert run.layout_results is not None and len(_rows(run.layout_results)) == 5000


def test_export_in_the_layout_writes_the_same_headers_back_each_deal_once(env: Any, tmp_path: Path) -> None:
    deals = tmp_path / "deals.csv"
    shutil.copy(DEALS, deals)
    assert apply_input(deals, api_url=env.url).summary["created"] == 12
    out = tmp_path / "back.csv"
    result = CliRunner().invoke(
        cli,
        ["export", "--api-url", env.url, "--layout", "partner-center", "-o", str(out), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{") :])
    assert doc["rows"] == 12 and doc["referrals"] == 16  # each co-sell's Microsoft referral folded in
    with out.open(encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f))
    with DEALS.open(encoding="utf-8-sig", newline="") as f:
        assert header == next(csv.reader(f))
    back = {r["CRM ID"]: r for r in _rows(out)}
    assert sorted(back) == sorted(r["CRM ID"] for r in _rows(DEALS))
    first = back["CRM-0001"]
    assert (first["Microsoft help required?"], first["What specific help from Microsoft?"]) == ("Yes", "3")
    assert first["Estimated Close Date"] == "1/30/2027" and first["Solution 1"] == "SOL-1234-PQRS"
    assert first["Team member 2"] == "Alice, Seller, , alice.seller@partner.example"
    assert back["CRM-0005"]["Share with Microsoft sales team"] == "No"  # the Private deal
    # Read back as it is: every deal unchanged.
    planned = make_plan(out, api_url=env.url)
    assert planned.summary["unchanged"] == 12, [r.reason for r in planned.rows]


def test_export_refuses_the_layout_in_a_workbook(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["export", "--sandbox", "--layout", "partner-center", "-o", str(tmp_path / "x.xlsx")]
    )
    assert result.exit_code == 2 and "is a CSV file" in result.output


@pytest.fixture
def server(env: Any, tmp_path: Path) -> Iterator[WebServer]:
    running = WebServer(Settings(port=0, api_url=env.url, home=tmp_path / "home")).start()
    yield running
    running.stop()


def test_the_web_app_checks_the_layout_and_offers_it_on_the_export_page(server: WebServer) -> None:
    c = client(server)
    base = upload(c, DEALS)
    check = c.get(base + "/check").text
    # Read as it is, with no mapping: every deal ready.
    assert '"big">12</span> rows' in check and '"big">12</span> ready' in check, check
    page = c.get("/export").text
    assert '<option value="partner-center"' in page
    r = c.post("/export", data={"csrf": csrf_of(c), "layout": "partner-center", "format": "xlsx"})
    assert r.status_code == 303
    server.app.web.jobs.wait(60)
    got = c.get(r.headers["location"] + "/file")
    assert got.headers["content-type"].startswith("text/csv")
    assert got.text.lstrip("\ufeff").startswith("Errors,Engagement ID,Referral ID,Deal Name,")
