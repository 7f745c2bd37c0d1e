"""bulkref serve --team: two people signed in through the sandbox's identity provider, in
Chromium, against a TLS sandbox standing in for Partner Center (LIVE, issued tokens only,
no BULKREF_ACCESS_TOKEN and no bulkref login: nothing is done in a terminal).

The preparer's own approval is refused with a reason; the second person approves and
applies; the audit trail names both, with fingerprints, and shows an edited entry;
sessions survive a restart. Without a browser: the audit chain's checks, the team's
gate, https with --certfile, a reverse proxy's --public-url, and serve's refusals.
"""

from __future__ import annotations

import csv
import io
import json
import re
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from helpers import RunningSandbox, axe_findings, shot

from bulkref.cli.main import cli
from bulkref.sandbox.options import (
    SANDBOX_CLIENT_ID,
    SANDBOX_PASSWORD,
    SANDBOX_SECOND_PASSWORD,
    SANDBOX_SECOND_USER,
    SANDBOX_USER,
)
from bulkref.web.app import Settings
from bulkref.web.audit import Trail
from bulkref.web.people import LOCAL, Actor
from bulkref.web.server import WebServer

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
EXAMPLES = Path(__file__).parent.parent / "examples" / "referrals.xlsx"
AUTH_ENV = (
    "BULKREF_ACCESS_TOKEN",
    "BULKREF_API_URL",
    "BULKREF_AUTHORITY",
    "BULKREF_TENANT_ID",
    "BULKREF_CLIENT_ID",
    "BULKREF_CLIENT_SECRET",
    "BULKREF_USERNAME",
    "BULKREF_PASSWORD",
)


@pytest.fixture
def live(
    sandbox_factory: Callable[..., RunningSandbox], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> RunningSandbox:
    """A TLS sandbox that takes only the tokens it issued: Partner Center and its sign-in."""
    running = sandbox_factory(tls=True, require_issued_tokens=True)
    for name in AUTH_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SSL_CERT_FILE", str(running.server.ca_file))
    monkeypatch.setenv("BULKREF_AUTHORITY", f"{running.root}/common")
    monkeypatch.setenv("BULKREF_CLIENT_ID", SANDBOX_CLIENT_ID)
    return running


def team_server(live: RunningSandbox, tmp_path: Path, port: int = 0, **settings: Any) -> WebServer:
    return WebServer(
        Settings(api_url=live.url, port=port, home=tmp_path / "home", team=True, **settings)
    ).start()


def stored(live: RunningSandbox) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {live.server.admin_token}"}
    context = ssl.create_default_context(cafile=str(live.server.ca_file))
    answer = httpx.get(live.url, params={"$top": 100}, headers=headers, verify=context, timeout=10)
    return answer.json()["value"]  # type: ignore[no-any-return]


# -- in Chromium ------------------------------------------------------------------------------

needs_browser = pytest.mark.skipif(
    not CHROMEDRIVER.exists(), reason="needs Debian's chromium-driver (/usr/bin/chromedriver); CI installs it"
)


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Chromium instances, each a person's own browser (its own profile and cookies)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    started: list[Any] = []

    def start() -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1360,900",
            f"--user-data-dir={tmp_path / f'profile-{len(started)}'}",
        ):
            options.add_argument(flag)
        # The sandbox's sign-in page is https with a throwaway CA made for this test.
        options.accept_insecure_certs = True
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(tmp_path / "downloads"),
                "download.prompt_for_download": False,
            },
        )
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        driver.set_page_load_timeout(60)
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.quit()


def wait(driver: Any, condition: Callable[[Any], Any], timeout: float = 30) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def by_id(driver: Any, element: str, timeout: float = 30) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return wait(driver, ec.presence_of_element_located((By.ID, element)), timeout)


def sign_in(driver: Any, server: WebServer, username: str, password: str) -> None:
    driver.get(server.url + "/")
    assert "/signin" in driver.current_url  # --team: nothing before signing in
    assert axe_findings(driver) == []  # the sign-in page passes axe-core
    shot(driver, "7-sign-in")
    by_id(driver, "signin-start").click()
    by_id(driver, "username").send_keys(username)  # the identity provider's page
    driver.find_element("id", "password").send_keys(password)
    driver.find_element("id", "signin").click()
    assert username in by_id(driver, "who").text
    assert username in driver.find_element("id", "account").text  # the banner names the account


@needs_browser
def test_two_people_four_eyes_apply_and_the_audit_trail(
    live: RunningSandbox, tmp_path: Path, browsers: Callable[[], Any]
) -> None:
    server = team_server(live, tmp_path)
    try:
        ann, ben = browsers(), browsers()
        sign_in(ann, server, SANDBOX_USER, SANDBOX_PASSWORD)
        assert "LIVE" in ann.find_element("id", "target").text

        # Ann prepares: uploads and plans, reading the sandbox as herself.
        ann.find_element("id", "file").send_keys(str(EXAMPLES))
        ann.find_element("id", "upload").click()
        by_id(ann, "grid")
        assert SANDBOX_USER in ann.find_element("id", "prepared").text
        ann.find_element("id", "to-review").click()
        by_id(ann, "plan-rows", 60)  # planned in the background, then shown
        refused = ann.find_element("id", "approve-refused").text  # her own approval: refused, with why
        assert "You prepared this import" in refused and "another person" in refused
        assert not ann.find_elements("id", "approve")
        # And the server refuses it too when the form is sent anyway.
        imp_id = ann.current_url.split("/imports/")[1].split("/")[0]
        imp = server.app.web.store.get(imp_id)
        ann.execute_script(
            """
            const form = document.createElement("form");
            form.method = "post"; form.action = arguments[0];
            const fields = {csrf: arguments[1], plan: arguments[2], name: "Ann"};
            for (const [k, v] of Object.entries(fields)) {
              const input = document.createElement("input");
              input.name = k; input.value = v; form.append(input);
            }
            document.body.append(form); form.submit();
            """,
            f"/imports/{imp_id}/approve",
            ann.find_element("css selector", "#who input[name=csrf]").get_attribute("value"),
            _plan_fp(imp),
        )
        assert "You prepared this import" in by_id(ann, "error-message").text
        assert imp.approval() is None

        # Ben reviews: the import waits in his queue, and he approves it as himself.
        sign_in(ben, server, SANDBOX_SECOND_USER, SANDBOX_SECOND_PASSWORD)
        ben.get(server.url + "/queue?show=mine")
        row = ben.find_element("css selector", f'#queue tr[data-import="{imp_id}"]')
        assert "awaiting review" in row.text and SANDBOX_USER in row.text and "5 to create" in row.text
        assert axe_findings(ben) == []  # the queue passes axe-core
        shot(ben, "8-queue")
        ann.get(server.url + "/queue?show=mine")
        assert by_id(ann, "queue-empty").text == "Nothing is waiting for your review."
        row.find_element("css selector", "a").click()
        by_id(ben, "plan-rows", 60)
        assert not ben.find_elements("id", "approver")  # no name to type: his sign-in is the name
        assert axe_findings(ben) == []  # the review page, signed in, passes axe-core
        ben.find_element("id", "approve").click()
        assert SANDBOX_SECOND_USER in by_id(ben, "approval").text
        by_id(ben, "start-apply").click()
        assert by_id(ben, "applied", timeout=60).text.startswith("5 created")
        sheet_ids = {r.get("externalReferenceId") for r in stored(live)} - {None}
        assert len(sheet_ids) == 5  # written to the LIVE target with Ben's issued token

        # The audit trail names both, with the fingerprints, and is intact.
        ben.get(server.url + f"/imports/{imp_id}/audit")
        assert by_id(ben, "audit-check").text.startswith("Intact")
        assert axe_findings(ben) == []  # the audit page passes axe-core
        shot(ben, "9-audit")
        events = [
            (r.get_attribute("data-event"), r.find_elements("tag name", "td")[3].text)
            for r in ben.find_elements("css selector", "#audit tbody tr")
        ]
        assert ("upload", SANDBOX_USER) in events and ("plan", SANDBOX_USER) in events
        assert ("approval refused", SANDBOX_USER) in events
        assert ("approve", SANDBOX_SECOND_USER) in events and ("apply start", SANDBOX_SECOND_USER) in events
        assert ("apply finish", SANDBOX_SECOND_USER) in events
        entries = Trail(imp.folder).entries()
        approve = next(e for e in entries if e["event"] == "approve")
        assert approve["planFingerprint"] == _plan_fp(imp) and approve["inputFingerprint"]
        ben.find_element("id", "audit-csv").click()
        downloaded = _wait_file(tmp_path / "downloads", ".csv")
        rows = list(csv.DictReader(io.StringIO(downloaded.read_text(encoding="utf-8-sig"))))
        assert {r["person"] for r in rows} == {SANDBOX_USER, SANDBOX_SECOND_USER}
        assert all(re.fullmatch(r"[0-9a-f]{64}", r["hash"]) for r in rows)

        # An edited entry shows: Ann's name put on Ben's approval.
        lines = (imp.folder / "audit.jsonl").read_text(encoding="utf-8").splitlines()
        at = next(i for i, line in enumerate(lines) if '"event": "approve"' in line)
        lines[at] = lines[at].replace(SANDBOX_SECOND_USER, SANDBOX_USER)
        (imp.folder / "audit.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        ben.refresh()
        check = by_id(ben, "audit-check").text
        assert check == f"Entry {at + 1} does not hold: it was changed after it was written."

        # A restart keeps both signed in.
        port = server.port
        server.stop()
        server = team_server(live, tmp_path, port=port)
        ben.get(server.url + "/queue")
        assert "/signin" not in ben.current_url and SANDBOX_SECOND_USER in by_id(ben, "who").text
        by_id(ben, "signout").click()  # and sign out ends it
        wait(ben, lambda d: "/signin" in d.current_url)
        ben.get(server.url + "/queue")
        assert "/signin" in ben.current_url
    finally:
        server.stop()


def _plan_fp(imp: Any) -> str:
    import bulkref

    return bulkref.fingerprint(imp.plan_path)


def _wait_file(folder: Path, suffix: str, timeout: float = 20) -> Path:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in folder.glob(f"*{suffix}")] if folder.is_dir() else []
        if found and not list(folder.glob("*.crdownload")):
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} file was downloaded")


# -- without a browser ----------------------------------------------------------------------


def test_the_audit_chain_shows_an_edit_a_removal_and_a_cut(tmp_path: Path) -> None:
    trail = Trail(tmp_path)
    ann = Actor("k-ann", "Ann", "ann@contoso.example", True)
    for event in ("upload", "plan", "approve", "apply start"):
        trail.append(event, ann, input_fingerprint="a" * 64, plan_fingerprint="b" * 64)
    assert trail.verify().intact and trail.verify().entries == 4
    original = trail.path.read_text(encoding="utf-8")
    lines = original.splitlines()

    trail.path.write_text("\n".join(lines[:1] + lines[2:]) + "\n", encoding="utf-8")  # one removed
    assert (trail.verify().broken_at, trail.verify().intact) == (2, False)
    trail.path.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")  # the last one cut off
    assert trail.verify().reason == "entries were removed from the end."
    edited = json.loads(lines[1])
    edited["details"] = {"note": "changed"}
    trail.path.write_text("\n".join([lines[0], json.dumps(edited), *lines[2:]]) + "\n", encoding="utf-8")
    assert trail.verify().text() == "Entry 2 does not hold: it was changed after it was written."
    trail.path.write_text(original, encoding="utf-8")
    assert trail.verify().intact
    # A spreadsheet opening the CSV gets text, never a formula.
    trail.append("upload", Actor("k", '=HYPERLINK("x")', "=cmd@x", True))
    assert "'=cmd@x" in trail.as_csv() and ",=cmd" not in trail.as_csv()
    assert LOCAL.label == "the local user"


def test_team_pages_need_a_sign_in(live: RunningSandbox, tmp_path: Path) -> None:
    server = team_server(live, tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            first = c.get("/queue")
            assert first.status_code == 303 and first.headers["location"] == "/signin?next=%2Fqueue"
            page = c.get("/signin?next=/queue")
            assert page.status_code == 200 and 'id="signin-start"' in page.text
            assert "bulkref login" not in page.text  # no terminal advice on a page
            assert c.post("/imports", data={}).status_code == 401
            assert c.get("/imports/20260101-000000-00000000/audit.json").status_code == 401
            start = c.get("/signin/start?next=//evil.example/")
            assert start.status_code == 303 and start.headers["location"].startswith(f"{live.root}/common/")
            # Back from the identity provider without the browser that started: refused.
            done = httpx.get(server.url + "/signin/done?code=x&state=y", timeout=10)
            assert done.status_code == 400 and "did not start in this browser" in done.text
    finally:
        server.stop()


def test_https_with_certfile_and_a_reverse_proxys_public_url(live: RunningSandbox, tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    leaf.private_key_pem.write_to_path(str(key))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    ca.cert_pem.write_to_path(str(ca_file))
    settings = Settings(api_url=live.url, port=0, home=tmp_path / "home", secure=True)
    server = WebServer(settings, certfile=cert, keyfile=key).start()
    try:
        assert server.url.startswith("https://")
        with httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=str(ca_file))) as c:
            assert "LIVE" in c.get("/").text
            start = c.get("/signin/start")
            assert "Secure" in start.headers["set-cookie"]
            assert "redirect_uri=https%3A%2F%2F127.0.0.1" in start.headers["location"]
    finally:
        server.stop()
    proxied = WebServer(
        Settings(api_url=live.url, port=0, home=tmp_path / "home", public_url="https://bulkref.example.com")
    ).start()
    try:
        with httpx.Client(base_url=proxied.url, timeout=30) as c:
            assert c.get("/", headers={"Host": "bulkref.example.com"}).status_code == 200
            assert c.get("/", headers={"Host": "bulkref.example.com.evil.example"}).status_code == 403
            forwarded = {"Host": "bulkref.example.com", "X-Forwarded-Host": "evil.example"}
            start = c.get("/signin/start", headers=forwarded)
            assert (
                "redirect_uri=https%3A%2F%2Fbulkref.example.com%2Fsignin%2Fdone" in start.headers["location"]
            )
    finally:
        proxied.stop()


def test_serve_refuses_a_team_without_sign_in_and_lone_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in AUTH_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path))
    runner = CliRunner()
    for args, said in (
        (["--team"], "--team needs people to sign in"),
        (["--approvals", "2"], "give --team too"),
        (["--certfile", str(EXAMPLES)], "--certfile and --keyfile go together"),
        (["--public-url", "ftp://x"], "is not an address"),
    ):
        r = runner.invoke(cli, ["serve", "--sandbox", "--no-browser", "--port", "0", *args])
        assert r.exit_code == 2 and said in r.output, (args, r.output)
