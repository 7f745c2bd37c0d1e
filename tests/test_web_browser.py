"""bulkref serve in a real browser: Debian's Chromium, driven by Selenium through
/usr/bin/chromedriver (nothing downloads a browser or a driver), against the sandbox.

The whole flow from upload to downloaded results; a broken sheet's bad cells; a
hostile referral name shown as text; a POST without its CSRF token refused; an
apply stopped midway (the sandbox's latency fault slows it) and resumed.

With BULKREF_SCREENSHOTS=DIR the flow saves a PNG of each step there
(scripts/screenshots.py makes docs/screenshots/ this way).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from helpers import CHROMEDRIVER, axe_findings, row, shot, wait, write_csv, write_xlsx

import bulkref
from bulkref.web.app import Settings
from bulkref.web.server import WebServer

CHROMIUM = Path("/usr/bin/chromium")
EXAMPLES = Path(__file__).parent.parent / "examples" / "referrals.xlsx"
HOSTILE = "<script>alert(1)</script>"

pytestmark = [
    pytest.mark.slow,  # a browser per module
    pytest.mark.skipif(
        not CHROMEDRIVER.exists(),
        reason="needs Debian's chromium-driver (/usr/bin/chromedriver); CI installs it",
    ),
]

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402

# axe-core, as the axe-playwright-python package ships it (a test dependency): injected into
# each page through Selenium, so it runs offline and whatever the page's own policy admits.


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory of the module's own: the embedded sandbox's state and the imports."""
    folder = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BULKREF_HOME", str(folder))
        mp.delenv("BULKREF_API_URL", raising=False)
        yield folder


@pytest.fixture(scope="module")
def app(home: Path) -> Iterator[WebServer]:
    with WebServer(Settings(sandbox=True, port=0)) as server:
        yield server


def upload(driver: Any, server: WebServer, path: Path) -> None:
    driver.get(server.url + "/")
    driver.find_element(By.ID, "file").send_keys(str(path))
    driver.find_element(By.ID, "upload").click()
    wait(driver, ec.presence_of_element_located((By.ID, "grid")))


def downloaded(folder: Path, suffix: str, before: set[Path], timeout: float = 20) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [p for p in folder.glob(f"*{suffix}") if p not in before]
        if new and not list(folder.glob("*.crdownload")):
            return new[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} file was downloaded: {sorted(p.name for p in folder.iterdir())}")


def plan_and_approve(driver: Any, name: str = "Ada Reviewer") -> None:
    driver.find_element(By.ID, "to-review").click()
    wait(driver, ec.presence_of_element_located((By.ID, "plan-rows")))
    driver.find_element(By.ID, "approver").send_keys(name)
    driver.find_element(By.ID, "approve").click()
    wait(driver, ec.presence_of_element_located((By.ID, "approval")))


def test_whole_flow_from_upload_to_downloaded_results(browser: Any, app: WebServer, downloads: Path) -> None:
    browser.get(app.url + "/")
    assert "SANDBOX" in browser.find_element(By.ID, "target").text

    upload(browser, app, EXAMPLES)
    assert "SANDBOX" in browser.find_element(By.ID, "target").text
    counts = browser.find_element(By.ID, "counts").text
    assert "5\nrows" in counts and "0\nerrors" in counts
    assert len(browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr")) == 5
    shot(browser, "2-check")

    browser.find_element(By.ID, "to-review").click()  # plans against the target, then shows the plan
    wait(browser, ec.presence_of_element_located((By.ID, "plan-rows")))
    assert "SANDBOX" in browser.find_element(By.ID, "target").text
    assert "5 to create" in browser.find_element(By.ID, "plan-counts").text
    assert "Contoso warehouse analytics" in browser.find_element(By.ID, "plan-rows").text
    before = set(downloads.iterdir())
    browser.find_element(By.ID, "plan-json").click()
    plan_file = downloaded(downloads, ".json", before)
    assert bulkref.Plan.from_json(json.loads(plan_file.read_text())).summary["create"] == 5
    browser.find_element(By.ID, "approver").send_keys("Ada Reviewer")
    shot(browser, "3-review")
    browser.find_element(By.ID, "approve").click()

    approval = wait(browser, ec.presence_of_element_located((By.ID, "approval"))).text
    assert "Ada Reviewer" in approval
    shot(browser, "4-approve")
    browser.find_element(By.ID, "start-apply").click()
    wait(browser, ec.presence_of_element_located((By.ID, "applied")), timeout=60)
    assert "SANDBOX" in browser.find_element(By.ID, "target").text
    assert browser.find_element(By.ID, "applied").text.startswith("5 created")

    browser.find_element(By.ID, "to-results").click()
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert len(rows) == 5
    shown_ids = [r.find_elements(By.TAG_NAME, "td")[4].text for r in rows]
    assert all(shown_ids) and len(set(shown_ids)) == 5
    shot(browser, "5-results")

    before = set(downloads.iterdir())
    browser.find_element(By.ID, "results-file").click()
    results = downloaded(downloads, ".xlsx", before)
    ws = openpyxl.load_workbook(results)["Results"]
    header = [c.value for c in ws[1]]
    ids = [
        r[header.index("Referral ID")] for r in ws.iter_rows(min_row=2, values_only=True) if r[0] is not None
    ]
    assert sorted(ids) == sorted(shown_ids)
    for referral_id in ids:  # each id is a referral the sandbox holds, under the sheet's name
        assert bulkref.get_referral(referral_id, sandbox=True).doc["id"] == referral_id

    # Nothing on these pages broke the Content-Security-Policy (no inline script or style).
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []

    browser.get(app.url + "/export")
    shot(browser, "6-export")
    before = set(downloads.iterdir())
    browser.find_element(By.ID, "export").click()
    exported = downloaded(downloads, ".xlsx", before, timeout=40)
    sheet = openpyxl.load_workbook(exported)["Referrals"]
    names = {c.value for c in sheet["D"]} | {c.value for row_ in sheet.iter_rows() for c in row_[:6]}
    assert "Contoso warehouse analytics" in names

    browser.get(app.url + "/")  # the import is listed, applied
    recent = browser.find_element(By.ID, "recent").text
    assert "referrals.xlsx" in recent and "applied" in recent
    shot(browser, "1-start")


def test_broken_sheet_shows_its_bad_cells_and_takes_a_corrected_one(
    browser: Any, app: WebServer, tmp_path: Path
) -> None:
    broken = write_xlsx(
        tmp_path / "broken.xlsx",
        [
            row(External_Reference_ID="BRK-1"),
            row(External_Reference_ID="BRK-2", Country="Atlantis"),
            row(External_Reference_ID="BRK-3"),
            row(External_Reference_ID="BRK-4", Customer_Contact_1_Email="not an email"),
        ],
    )
    upload(browser, app, broken)
    bad = browser.find_elements(By.CSS_SELECTOR, "#grid td.bad.error")
    assert [c.text for c in bad] == ["Atlantis", "not an email"]
    bad_rows = browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr.error")
    assert [r.get_attribute("data-row") for r in bad_rows] == ["3", "5"]
    messages = bad_rows[0].find_element(By.CSS_SELECTOR, "td.msgs").text  # beside the row's cells
    assert "Referrals, row 3, Country:" in messages
    assert "row 5, Customer Contact 1 Email:" in bad_rows[1].text
    assert "2\nerrors in 2 rows" in browser.find_element(By.ID, "counts").text

    browser.find_element(By.ID, "only-problems").click()
    shown = [r.get_attribute("data-row") for r in browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr")]
    assert shown == ["3", "5"]
    browser.find_element(By.ID, "only-problem-columns").click()
    headers = [h.text.split("\n")[-1] for h in browser.find_elements(By.CSS_SELECTOR, "#grid thead th")]
    assert headers == [
        "Row",
        "Problems",
        "External Reference ID",
        "Referral Name",
        "Country",
        "Customer Contact 1 Email",
    ]
    assert [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#grid td.bad.error")] == [
        "Atlantis",
        "not an email",
    ]
    shot(browser, "2b-check-errors")

    fixed = write_xlsx(tmp_path / "fixed.xlsx", [row(External_Reference_ID=f"BRK-{i}") for i in range(1, 5)])
    url = browser.current_url.split("?")[0]
    browser.find_element(By.ID, "replace-file").send_keys(str(fixed))
    browser.find_element(By.ID, "replace").click()
    wait(browser, ec.presence_of_element_located((By.ID, "to-review")))
    assert browser.current_url == url  # the same import, checked again
    assert not browser.find_elements(By.CSS_SELECTOR, "#grid td.bad")
    assert "fixed.xlsx" in browser.find_element(By.CLASS_NAME, "import-name").text


def test_hostile_referral_name_is_text(browser: Any, app: WebServer, tmp_path: Path) -> None:
    sheet = write_xlsx(
        tmp_path / "hostile.xlsx", [row(External_Reference_ID="EVIL-1", Referral_Name=HOSTILE)]
    )
    upload(browser, app, sheet)
    cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#grid td")]
    assert HOSTILE in cells
    assert HOSTILE not in browser.page_source  # escaped in the markup, not interpreted
    browser.find_element(By.ID, "to-review").click()
    rows = wait(browser, ec.presence_of_element_located((By.ID, "plan-rows")))
    assert HOSTILE in rows.text
    assert HOSTILE not in browser.page_source
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018  (the script never ran)


def test_a_file_dropped_on_the_page_is_uploaded(browser: Any, app: WebServer, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "dropped.csv", [row(External_Reference_ID="DROP-1")])
    browser.get(app.url + "/")
    browser.execute_script(
        """
        const file = new File([arguments[0]], "dropped.csv", {type: "text/csv"});
        const data = new DataTransfer();
        data.items.add(file);
        document.querySelector("[data-drop]").dispatchEvent(
            new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        """,
        sheet.read_text(encoding="utf-8"),
    )
    assert browser.find_element(By.CSS_SELECTOR, "[data-drop-file]").text == "dropped.csv"
    browser.find_element(By.ID, "upload").click()
    wait(browser, ec.presence_of_element_located((By.ID, "grid")))
    assert "dropped.csv" in browser.find_element(By.CLASS_NAME, "import-name").text
    assert [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#grid tbody td")][1] == "DROP-1"


def test_post_without_csrf_token_is_refused(browser: Any, app: WebServer) -> None:
    browser.get(app.url + "/")
    browser.execute_script("document.querySelector('#upload-form input[name=csrf]').remove()")
    browser.find_element(By.ID, "file").send_keys(str(EXAMPLES))
    before = len(app.app.web.store.recent(100))
    browser.find_element(By.ID, "upload").click()
    message = wait(browser, ec.presence_of_element_located((By.ID, "error-message"))).text
    assert "did not come from bulkref" in message
    assert len(app.app.web.store.recent(100)) == before  # nothing was stored


def test_stop_midway_then_resume(
    browser: Any, home: Path, tmp_path: Path, sandbox_factory: Callable[..., Any]
) -> None:
    slow = sandbox_factory(faults="latency=250ms")
    rows = [row(External_Reference_ID=f"STOP-{i:03}", Referral_Name=f"Deal {i}") for i in range(1, 31)]
    sheet = write_xlsx(tmp_path / "thirty.xlsx", rows)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BULKREF_ACCESS_TOKEN", slow.token)
        with WebServer(Settings(api_url=slow.url, port=0, home=tmp_path / "home")) as server:
            upload(browser, server, sheet)
            assert "LIVE" in browser.find_element(By.ID, "target").text  # not the sandbox: an API URL
            plan_and_approve(browser)
            concurrency = browser.find_element(By.ID, "concurrency")
            concurrency.clear()
            concurrency.send_keys("2")
            browser.find_element(By.ID, "start-apply").click()
            wait(
                browser, lambda d: int(d.find_element(By.CSS_SELECTOR, '[data-field="done"]').text or 0) >= 4
            )
            shot(browser, "4b-applying")
            browser.find_element(By.ID, "stop").click()
            interrupted = wait(browser, ec.presence_of_element_located((By.ID, "interrupted")), timeout=30)
            assert "stopped before the end" in interrupted.text
            imp = server.app.web.store.recent(1)[0]
            first = [r for r in imp.results() if r["outcome"] == "created"]
            assert 4 <= len(first) < 30
            assert len(slow.client().get(slow.url, params={"$top": 100}).json()["value"]) == len(
                first
            )  # nothing sent beyond the rows reported

            concurrency = browser.find_element(By.ID, "concurrency")
            concurrency.clear()
            concurrency.send_keys("1")  # slow enough to watch the counters go on
            browser.find_element(By.ID, "resume").click()

            def counted(d: Any) -> tuple[int, int] | None:
                if d.find_element(By.CSS_SELECTOR, '[data-field="state"]').text != "running":
                    return None
                done = int(d.find_element(By.CSS_SELECTOR, '[data-field="done"]').text.replace(",", "") or 0)
                created = int(d.find_element(By.CSS_SELECTOR, '[data-count="created"]').text or 0)
                return (done, created) if done > len(first) else None

            done, created = wait(browser, counted)
            # The rows the first run created count on, not from 0 (as the command line counts them).
            assert created >= len(first) and done >= created
            wait(browser, ec.presence_of_element_located((By.ID, "applied")), timeout=60)
            assert browser.find_element(By.ID, "applied").text.startswith("30 created")
    stored = slow.client().get(slow.url, params={"$top": 100}).json()["value"]
    assert sorted(r["externalReferenceId"] for r in stored) == [f"STOP-{i:03}" for i in range(1, 31)]


# -- accessibility ------------------------------------------------------------------------------


def audited(driver: Any, findings: list[str]) -> None:
    """The page passes axe (findings gathered, to see them all at once) and has one h1."""
    findings += axe_findings(driver)
    h1 = driver.find_elements(By.TAG_NAME, "h1")
    if len(h1) != 1:
        findings.append(f"{driver.current_url}: {len(h1)} h1 elements")


def tabs_to(driver: Any, element_id: str, most: int) -> int:
    """How many presses of Tab, from the top of the page, reach the element ``element_id``."""
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    for n in range(1, most + 1):
        ActionChains(driver).send_keys(Keys.TAB).perform()  # as a person presses it, to whatever has focus
        if driver.switch_to.active_element.get_attribute("id") == element_id:
            return n
    raise AssertionError(f"{element_id} is not reached in {most} presses of Tab")


def test_no_page_has_a_critical_or_serious_accessibility_finding(
    browser: Any, app: WebServer, tmp_path: Path, downloads: Path
) -> None:
    findings: list[str] = []
    browser.get(app.url + "/")
    audited(browser, findings)
    assert tabs_to(browser, "file", 12) <= 12  # past the banner, the menu and the template links

    broken = write_xlsx(
        tmp_path / "a11y-broken.xlsx", [row(External_Reference_ID="A11Y-0", Country="Atlantis")]
    )
    upload(browser, app, broken)  # the check page, with a bad cell
    audited(browser, findings)

    # The check page of a good sheet, new to the sandbox (the module's other tests share it).
    good = [row(External_Reference_ID=f"A11Y-{i}", Referral_Name=f"Accessible deal {i}") for i in (1, 2, 3)]
    upload(browser, app, write_xlsx(tmp_path / "a11y.xlsx", good))
    audited(browser, findings)
    browser.find_element(By.ID, "to-review").click()
    wait(browser, ec.presence_of_element_located((By.ID, "plan-rows")))
    audited(browser, findings)
    assert tabs_to(browser, "approver", 16) <= 16  # the approval comes before the rows
    browser.execute_script("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    audited(browser, findings)  # the rows' details open: the new deals' fields, the calls
    browser.find_element(By.ID, "chip-create").click()  # a filtered view
    audited(browser, findings)
    browser.get(browser.current_url.split("?")[0].replace("/review", "/plan.html"))
    findings += axe_findings(browser)  # the whole plan as one page (the CLI's --format html)
    browser.back()

    browser.find_element(By.ID, "approver").send_keys("Ada Reviewer")
    browser.find_element(By.ID, "approve").click()
    wait(browser, ec.presence_of_element_located((By.ID, "approval")))
    audited(browser, findings)  # apply, approved
    assert tabs_to(browser, "start-apply", 16) <= 16
    browser.find_element(By.ID, "start-apply").click()
    wait(browser, ec.presence_of_element_located((By.ID, "applied")), timeout=60)
    audited(browser, findings)  # apply, applied
    browser.find_element(By.ID, "to-results").click()
    audited(browser, findings)

    browser.get(app.url + "/export")
    audited(browser, findings)
    before = set(downloads.iterdir())
    browser.find_element(By.ID, "export").click()
    # The done page: a second download nobody clicked for is Chromium's to refuse (the flow
    # test had one), and the page's link is there for that.
    wait(browser, ec.presence_of_element_located((By.ID, "export-file"))).click()
    downloaded(downloads, ".xlsx", before, timeout=40)
    audited(browser, findings)

    browser.get(app.url + "/imports/20260101-000000-deadbeef")
    assert browser.find_element(By.ID, "error-message")
    audited(browser, findings)
    assert findings == [], "\n".join(findings)


# -- a reviewer's page at 20,000 rows -----------------------------------------------------------


def big_plan(small: bulkref.Plan, n: int) -> bulkref.Plan:
    """``small``'s one create made ``n`` rows of every kind (creates, updates with a field
    diff, unchanged, blocked), under their own ids: a plan of that size without planning
    20,000 rows (the page's cost is in the rows it holds, not in how they were planned)."""
    from bulkref.plan.model import Action, Change

    first = small.rows[0]
    rows = []
    for i in range(n):
        ext = f"BIG-{i:05}"
        kind = i % 10
        if kind < 4:
            r = dataclasses.replace(first, row=i + 2, external_id=ext, name=f"Big deal {i}")
        elif kind < 6:
            r = dataclasses.replace(
                first,
                row=i + 2,
                external_id=ext,
                name=f"Big deal {i}",
                action=Action.UPDATE,
                referral_id=f"ref-{i:05}",
                changes=(Change.of("Deal Value", 1000 + i, 2000 + i), Change.of("Status", "New", "Active")),
            )
        elif kind < 9:
            r = dataclasses.replace(first, row=i + 2, external_id=ext, action=Action.UNCHANGED, steps=())
        else:
            r = dataclasses.replace(
                first,
                row=i + 2,
                external_id=ext,
                action=Action.BLOCKED,
                steps=(),
                reason="the deal is Closed",
            )
        rows.append(r)
    return dataclasses.replace(small, rows=tuple(rows))


def test_a_20000_row_review_shows_its_first_screen_within_2_seconds(
    browser: Any, app: WebServer, tmp_path: Path
) -> None:
    web = app.app.web
    sheet = write_csv(tmp_path / "big.csv", [row(External_Reference_ID="BIG-00000")])
    imp = web.store.create("big.csv", sheet.read_bytes(), ".csv")
    plan = big_plan(bulkref.make_plan(imp.input, offline=True), 20_000)
    web.keep_plan(imp, plan)  # as the plan step keeps one: plan.json and the review's index
    assert imp.plan_path.stat().st_size > 10_000_000  # the plan.json a reviewer downloads is whole

    url = f"{app.url}/imports/{imp.id}/review"
    started = time.perf_counter()
    browser.get(url)  # returns once the page has loaded
    first_screen = time.perf_counter() - started
    print(f"first screen of 20,000 rows: {first_screen:.2f} s")
    shown = browser.find_elements(By.CSS_SELECTOR, "#plan-rows tbody.r")
    assert len(shown) == 100  # a page of rows, the unchanged folded away as the plan page does
    assert {r.get_attribute("data-action") for r in shown} == {"create", "update", "blocked"}
    assert "20000 all" in browser.find_element(By.ID, "plan-counts").text
    assert "Rows 1–100 of 14000 · 6000 unchanged hidden" in browser.find_element(By.ID, "shown").text
    assert first_screen < 2.0, f"first screen in {first_screen:.2f} s"
    assert len(browser.page_source) < 2_000_000
    # A new deal reads as its fields, not its request's JSON.
    fields = browser.find_element(By.CSS_SELECTOR, "tbody.create dl.fields").get_attribute("textContent")
    assert "Referral NameContoso ERP" in fields and "Customer NameContoso Ltd" in fields  # what is sent

    # The same filters as the plan page, served a page at a time, each within the bound too.
    for act, expect in ((lambda: browser.find_element(By.ID, "chip-blocked").click(), "of 2000 · blocked"),):
        started = time.perf_counter()
        act()
        assert expect in wait(browser, ec.presence_of_element_located((By.ID, "shown"))).text
        assert time.perf_counter() - started < 2.0
    assert {r.get_attribute("data-action") for r in browser.find_elements(By.CSS_SELECTOR, "tbody.r")} == {
        "blocked"
    }
    browser.find_element(By.ID, "chip-blocked").click()  # back to all
    browser.find_element(By.ID, "q").send_keys("big-19999", Keys.ENTER)
    found = wait(
        browser,
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "tbody.r")
            if "“" in d.find_element(By.ID, "shown").text
            else None
        ),
    )
    assert [r.find_element(By.TAG_NAME, "code").text for r in found] == ["BIG-19999"]
    browser.get(url + "?page=140")  # the last page of the rows shown
    assert "Rows 13901–14000 of 14000" in browser.find_element(By.ID, "shown").text
