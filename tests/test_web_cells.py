"""A bad cell fixed on the Check page: checked again at once, written into a
corrected copy (the upload kept, both downloadable) and into the import's record;
text typed there never becomes a formula."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from helpers import check_counts as counts
from helpers import csrf_of, row, write_csv, write_xlsx

import bulkref
from bulkref.web.app import Settings
from bulkref.web.server import WebServer


@pytest.fixture
def server(sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[WebServer]:
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", sandbox.token)
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BULKREF_API_URL", raising=False)
    with WebServer(Settings(api_url=sandbox.url, home=tmp_path / "home", port=0)) as web:
        yield web


def edit_form(page: str, value: str) -> dict[str, str]:
    """The first bad cell's form on the Check page, with ``value`` typed."""
    form = re.search(r'<details class="cell-edit">.*?</form>', page, re.S)
    assert form is not None, "no cell can be edited"
    data = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(0)))
    return {**data, "value": value}


def test_a_bad_cell_fixed_in_the_page(server: WebServer, tmp_path: Path) -> None:
    sheet = write_xlsx(
        tmp_path / "deals.xlsx",
        [row(External_Reference_ID="FIX-1"), row(External_Reference_ID="FIX-2", Country="Atlantis")],
    )
    c = httpx.Client(base_url=server.url, timeout=60)
    r = c.post("/imports", data={"csrf": csrf_of(c)}, files={"file": ("deals.xlsx", sheet.read_bytes())})
    base = r.headers["location"].rsplit("/", 1)[0]
    page = c.get(base + "/check").text
    assert counts(page)["errors in 1 rows"] == 1
    data = edit_form(page, "DE")
    assert data["row"] == "3" and data["old"] == "Atlantis"
    r = c.post(base + "/cells", data=data)
    assert r.status_code == 303 and r.headers["location"].endswith("/check#row-3")
    page = c.get(base + "/check").text
    assert counts(page)["errors in 0 rows"] == 0 and 'id="to-review"' in page
    assert "1 cell corrected" in page
    corrected = openpyxl.load_workbook(io.BytesIO(c.get(base + "/corrected").content))["Referrals"]
    header = [cell.value for cell in corrected[1]]
    assert corrected.cell(3, header.index("Country") + 1).value == "DE"
    original = c.get(base + "/original")
    assert original.content == sheet.read_bytes()  # the upload, as it came
    imp = server.app.web.store.get(base.rsplit("/", 1)[1])
    [edit] = imp.meta["edits"]
    assert edit["old"] == "Atlantis" and edit["new"] == "DE" and edit["header"] == "Country"
    # A second fix keeps the first and the original.
    r = c.post(base + "/cells", data={**data, "value": "FR"})
    assert r.status_code == 303
    imp = server.app.web.store.get(base.rsplit("/", 1)[1])
    assert (
        len(imp.meta["edits"]) == 2 and (imp.folder / imp.meta["original"]).read_bytes() == sheet.read_bytes()
    )
    assert len(list(imp.folder.glob("input-*"))) == 1


def test_text_typed_into_a_cell_never_becomes_a_formula(server: WebServer, tmp_path: Path) -> None:
    sheet = write_csv(
        tmp_path / "deals.csv", [row(External_Reference_ID="CSV-1", Customer_Contact_1_Email="x")]
    )
    c = httpx.Client(base_url=server.url, timeout=60)
    r = c.post("/imports", data={"csrf": csrf_of(c)}, files={"file": ("deals.csv", sheet.read_bytes())})
    base = r.headers["location"].rsplit("/", 1)[0]
    data = edit_form(c.get(base + "/check").text, '=HYPERLINK("http://evil.example","x")')
    assert c.post(base + "/cells", data=data).status_code == 303
    text = c.get(base + "/corrected").content.decode("utf-8-sig")
    assert "'=HYPERLINK" in text  # quote-prefixed in the CSV
    imp = server.app.web.store.get(base.rsplit("/", 1)[1])
    problems = bulkref.check_file(imp.input).report.problems
    assert [p.value for p in problems if p.code == "invalid_email"] == [
        '=HYPERLINK("http://evil.example","x")'
    ]


def test_workbook_cells_keep_their_kind_and_text_stays_text(tmp_path: Path) -> None:
    book = tmp_path / "b.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Deals"
    ws.append(["Amount", "Name"])
    ws.append([100, "x"])
    wb.save(book)
    out = bulkref.correct_cells(
        book,
        [bulkref.CellEdit(2, "A", "250"), bulkref.CellEdit(2, "B", "=1+1")],
        tmp_path / "c.xlsx",
        sheet="Deals",
    )
    cells = openpyxl.load_workbook(out)["Deals"]
    assert cells["A2"].value == 250 and cells["B2"].value == "=1+1" and cells["B2"].data_type == "s"
    with pytest.raises(bulkref.BulkrefError, match="no sheet 'Other'"):
        bulkref.correct_cells(book, [bulkref.CellEdit(2, "A", "1")], tmp_path / "d.xlsx", sheet="Other")
    with pytest.raises(bulkref.BulkrefError, match="no cell"):
        bulkref.correct_cells(book, [bulkref.CellEdit(0, "A", "1")], tmp_path / "d.xlsx", sheet="Deals")


def test_a_forged_cell_is_refused(server: WebServer, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "deals.csv", [row(External_Reference_ID="CSV-1", Country="Atlantis")])
    c = httpx.Client(base_url=server.url, timeout=60)
    r = c.post("/imports", data={"csrf": csrf_of(c)}, files={"file": ("deals.csv", sheet.read_bytes())})
    base = r.headers["location"].rsplit("/", 1)[0]
    data = edit_form(c.get(base + "/check").text, "DE")
    for bad in ({"letter": "../x"}, {"row": "1"}, {"row": "x"}, {"csrf": "forged"}):
        assert c.post(base + "/cells", data={**data, **bad}).status_code in (403, 422)
    r = c.post(base + "/cells", data={**data, "back": "x#<script>"})
    assert r.status_code == 303 and r.headers["location"].endswith("/check#row-2")
