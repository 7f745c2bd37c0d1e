"""The Check page tells the truth: sheet-level problems at the top, counts that
add up (never negative), every row counted with an error listed under "only rows
with problems", and no command-line advice or server file name on the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import SALESFORCE
from helpers import check_counts as counts
from helpers import upload_bytes as upload

import bulkref
from bulkref.web.app import Settings
from bulkref.web.server import WebServer
from bulkref.web.wording import page_message


@pytest.fixture
def server(sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[WebServer]:
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", sandbox.token)
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BULKREF_API_URL", raising=False)
    with WebServer(Settings(api_url=sandbox.url, home=tmp_path / "home", port=0)) as web:
        yield web


def shown_rows(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr class="[^"]*" data-row="(\d+)"', page)]


def test_an_export_without_mapping_shows_its_sheet_problems_first_and_no_negative_count(
    server: WebServer,
) -> None:
    c = httpx.Client(base_url=server.url, timeout=60)
    base = upload(c, "salesforce.csv", SALESFORCE.encode())
    page = c.get(base + "/check").text
    top = page[page.index("<main>") : page.index('id="counts"')]
    assert 'id="sheet-problems"' in top
    assert "Missing required columns" in top and "missing_columns" in top
    # The five headers that are not bulkref columns: said once, each named.
    assert "5 headers are not bulkref columns" in top and "Billing Country" in top
    assert 'id="map-columns"' in top  # the way forward: the mapping page
    n = counts(page)
    assert n["rows"] == 10 and n["ready"] == 0 and n["errors in 10 rows"] == 10
    assert all(v >= 0 for v in n.values())
    # No command-line advice, no generated file name.
    imp = server.app.web.store.get(base.rsplit("/", 1)[1])
    assert "--locale" not in page and "bulkref map" not in page and imp.input.name not in page


def test_only_rows_with_problems_lists_every_row_counted_with_an_error(server: WebServer) -> None:
    """With group_by, a bad cell on the second row of a deal is the deal's: counted
    once, and listed (at the deal's first row) when only rows with problems are shown."""
    export = (
        "Deal,Name,Account,Street,City,Country,Amount,Currency,Close,Email\n"
        "D-1,Contoso ERP,Contoso,1 Main St,Seattle,US,50000,USD,2027-03-31,sue@contoso.example\n"
        "D-1,Contoso ERP,Contoso,1 Main St,Seattle,US,50000,USD,2027-03-31,not an email\n"
        "D-2,Fabrikam BI,Fabrikam,2 Main St,Seattle,US,9000,USD,2027-04-30,ann@fabrikam.example\n"
        "D-3,Adatum AI,Adatum,3 Main St,Seattle,Atlantis,9000,USD,2027-04-30,bo@adatum.example\n"
    )
    mapping = (
        '[source]\ngroup_by = "Deal"\n\n[fields]\n"External Reference ID" = "Deal"\n'
        '"Referral Name" = "Name"\n"Customer Name" = "Account"\n"Address Line 1" = "Street"\n'
        '"City" = "City"\n"Country" = "Country"\n"Deal Value" = "Amount"\n"Currency" = "Currency"\n'
        '"Closing Date" = "Close"\n"Customer Contact {n} Email" = "Email"\n'
        '"Deal Type" = { value = "Partner-led" }\n'
    )
    c = httpx.Client(base_url=server.url, timeout=60)
    base = upload(c, "grouped.csv", export.encode(), mapping.encode())
    page = c.get(base + "/check").text
    n = counts(page)
    assert n["rows"] == 3 and n["ready"] == 1 and n["errors in 2 rows"] == 2
    only = c.get(base + "/check?problems=1").text
    assert shown_rows(only) == [2, 5]
    assert "not an email" in only and "Atlantis" in only
    assert "No rows with problems" not in only


def test_a_mapping_that_fills_no_required_field_is_the_sheets_problem(server: WebServer) -> None:
    mapping = b'[fields]\n"Referral Name" = "Opportunity Name"\n'
    c = httpx.Client(base_url=server.url, timeout=60)
    base = upload(c, "salesforce.csv", SALESFORCE.encode(), mapping)
    page = c.get(base + "/check").text
    top = page[page.index("<main>") : page.index('id="counts"')]
    assert "fills no External Reference ID" in top
    n = counts(page)
    assert n["ready"] == 0 and n["in the sheet as a whole"] == 1 and min(n.values()) >= 0
    assert 'id="edit-mapping"' in page


@pytest.mark.parametrize(
    ("message", "said"),
    [
        (
            "Closing Date '01/02/2027' reads as day/month and as month/day alike: pass --locale de-DE "
            "(day first) or --locale en-US (month first), write it as YYYY-MM-DD, or read the file "
            "through a mapping from `bulkref map suggest`.",
            "Closing Date '01/02/2027' reads as day/month and as month/day alike: write it as "
            "YYYY-MM-DD, or state the date format on the mapping page (Map columns).",
        ),
        (
            "Closing Date must be a date: an Excel date or text like 2026-12-31, not 'x'; for dates "
            "written 31.12.2026 or 12/31/2026 pass --locale (de-DE, en-US, ...).",
            "Closing Date must be a date: an Excel date or text like 2026-12-31, not 'x'.",
        ),
        ("Pick a sheet, or pass --sheet NAME to choose one.", "Pick a sheet."),
        (
            "'x' is not an email address (name@example.com).",
            "'x' is not an email address (name@example.com).",
        ),
    ],
)
def test_page_messages_give_no_command_line_advice(message: str, said: str) -> None:
    assert page_message(message) == said


def test_every_library_message_about_a_bad_cell_reads_without_flags(tmp_path: Path) -> None:
    sheet = tmp_path / "dates.csv"
    sheet.write_text("Closing Date,Deal Value\n01/02/2027,1.234,50\nsoon,many\n", encoding="utf-8")
    problems = bulkref.check_file(sheet).report.problems
    assert any("--" in p.message for p in problems)  # the terminal's wording has advice
    assert not [p.message for p in problems if "--" in page_message(p.message)]
