"""In Chromium (Debian's, as tests/test_web_browser.py drives it): a CRM export
mapped on the mapping page, previewed live, saved and applied, with no file
typed by hand; a bad cell fixed on the Check page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import CHROMEDRIVER, axe_findings, row, shot, wait, write_xlsx
from helpers import CRM_EXPORT as EXPORT

import bulkref
from bulkref.web.app import Settings
from bulkref.web.server import WebServer

pytestmark = pytest.mark.skipif(
    not CHROMEDRIVER.exists(), reason="needs Debian's chromium-driver (/usr/bin/chromedriver); CI installs it"
)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BULKREF_HOME", str(home))
        mp.delenv("BULKREF_API_URL", raising=False)
        with WebServer(Settings(sandbox=True, port=0, home=home)) as server:
            yield server


def pick(driver: Any, label: str, value: str) -> None:
    Select(driver.find_element(By.CSS_SELECTOR, f'select[aria-label="{label}"]')).select_by_visible_text(
        value
    )


def test_a_crm_export_is_mapped_previewed_saved_and_applied(
    browser: Any, app: WebServer, tmp_path: Path
) -> None:
    export = tmp_path / "opportunities.csv"
    export.write_text(EXPORT, encoding="utf-8")
    browser.get(app.url + "/")
    browser.find_element(By.ID, "file").send_keys(str(export))
    browser.find_element(By.ID, "upload").click()
    wait(browser, ec.presence_of_element_located((By.ID, "mapping-form")))
    assert browser.current_url.endswith("/mapping")
    assert "To decide" in browser.find_element(By.ID, "questions").text

    # The stage's open values, chosen from the drop-downs the suggestion left to decide.
    pick(browser, "Status for Prospecting", "New")
    pick(browser, "Status for Qualification", "New")
    pick(browser, "Substatus for Prospecting", "Pending")
    pick(browser, "Substatus for Qualification", "Received")
    country = browser.find_element(By.CSS_SELECTOR, 'input[aria-label="Country for U.S."]')
    country.clear()
    country.send_keys("US")
    # Fields the suggestion did not find: a column each, picked by its header.
    for field, column in (("External Reference ID", "Opportunity ID"), ("Currency", "Currency")):
        source = browser.find_element(By.CSS_SELECTOR, f'tr[data-field="{field}"] select[data-source]')
        Select(source).select_by_value(f"col:{column}")
        wait(browser, ec.presence_of_element_located((By.ID, "mapping-form")))

    # The live preview catches up with the form: every row ready.
    def ready(d: Any) -> bool:
        counts = d.find_elements(By.ID, "preview-counts")
        return bool(counts) and counts[0].text.startswith("3 rows · 3 ready · 0 errors")

    wait(browser, ready)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#preview-grid tbody tr")) == 3
    shot(browser, "2c-mapping")
    assert axe_findings(browser) == []  # the mapping page, with its preview, passes axe-core

    browser.find_element(By.ID, "mapping-save").click()
    wait(browser, ec.presence_of_element_located((By.ID, "to-review")))
    assert "Read through opportunities.mapping.toml" in browser.find_element(By.ID, "mapping-used").text
    browser.find_element(By.ID, "to-review").click()
    wait(browser, ec.presence_of_element_located((By.ID, "plan-rows")), timeout=60)
    browser.find_element(By.ID, "approver").send_keys("Ada Reviewer")
    browser.find_element(By.ID, "approve").click()
    wait(browser, ec.presence_of_element_located((By.ID, "approval")))
    browser.find_element(By.ID, "start-apply").click()
    wait(browser, ec.presence_of_element_located((By.ID, "applied")), timeout=60)
    assert browser.find_element(By.ID, "applied").text.startswith("3 created")
    imp = app.app.web.store.recent(1)[0]
    ids = [r["referral_id"] for r in imp.results() if r.get("referral_id")]
    assert len(ids) == 3
    names = {bulkref.get_referral(i, sandbox=True).doc["name"] for i in ids}
    assert names == {"Deal 1", "Deal 2", "Deal 3"}
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []


def test_a_bad_cell_is_fixed_in_the_page(browser: Any, app: WebServer, tmp_path: Path) -> None:
    sheet = write_xlsx(
        tmp_path / "cells.xlsx",
        [row(External_Reference_ID="CELL-1"), row(External_Reference_ID="CELL-2", Country="Atlantis")],
    )
    browser.get(app.url + "/")
    browser.find_element(By.ID, "file").send_keys(str(sheet))
    browser.find_element(By.ID, "upload").click()
    wait(browser, ec.presence_of_element_located((By.ID, "grid")))
    bad = browser.find_element(By.CSS_SELECTOR, "#grid td.bad.error details.cell-edit")
    bad.find_element(By.TAG_NAME, "summary").click()
    value = bad.find_element(By.NAME, "value")
    value.clear()
    value.send_keys("DE")
    shot(browser, "2d-cell-edit")
    assert axe_findings(browser) == []  # the Check page with a cell being fixed passes axe-core
    bad.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, ec.presence_of_element_located((By.ID, "to-review")))
    assert not browser.find_elements(By.CSS_SELECTOR, "#grid td.bad")
    assert browser.current_url.endswith("#row-3")
    assert "1 cell corrected" in browser.find_element(By.ID, "corrections").text
