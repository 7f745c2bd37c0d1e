"""bulkref serve over HTTP (no browser): the layer rule, the safety defaults, the
approval rules, persistence across a restart, and the command itself."""

from __future__ import annotations

import ast
import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from helpers import csrf_of, row, write_csv, write_xlsx
from helpers import upload_file as upload
from helpers import web_client as client

import bulkref
from bulkref.cli.main import cli
from bulkref.web.app import Settings
from bulkref.web.server import WebServer, bind
from bulkref.web.store import write_json

WEB = Path(bulkref.__file__).parent / "web"
EXAMPLES = Path(__file__).parent.parent / "examples" / "referrals.xlsx"


@pytest.fixture
def target(sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The shared test sandbox as the app's target, and a data directory of this test's own."""
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", sandbox.token)
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BULKREF_API_URL", raising=False)
    return sandbox


@pytest.fixture
def serve(target: Any, tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    started: list[WebServer] = []

    def start(**settings: Any) -> WebServer:
        settings.setdefault("api_url", target.url)
        settings.setdefault("home", tmp_path / "home")
        server = WebServer(Settings(port=0, **settings)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def planned(c: httpx.Client, base: str, csrf: str | None = None) -> httpx.Response:
    """Plan the import (in the background, as the page does), wait for it, and the review page."""
    assert c.post(base + "/plan", data={"csrf": csrf or csrf_of(c)}).status_code == 303
    deadline = time.monotonic() + 60
    while c.get(base + "/plan-progress.json").json()["state"] in ("starting", "running"):
        assert time.monotonic() < deadline, "the plan did not end"
        time.sleep(0.05)
    return c.get(base + "/review")


def plan_fingerprint(c: httpx.Client, base: str) -> str:
    found = re.search(r'name="plan" value="([^"]+)"', planned(c, base).text)
    assert found is not None
    return found.group(1)


def approve(c: httpx.Client, base: str, name: str = "Ada") -> None:
    fp = plan_fingerprint(c, base)
    r = c.post(base + "/approve", data={"csrf": csrf_of(c), "name": name, "plan": fp})
    assert r.status_code == 303, r.text


# -- the layer rule ---------------------------------------------------------------------------


# Besides the public names, the web app may use the process plumbing it shares with the
# sandbox (serving an app with uvicorn): no business logic, nothing of the stages.
WEB_MAY_USE = ("bulkref.web", "bulkref.serving")


def layer_offences(name: str, source: str) -> list[str]:
    """Every use of bulkref in ``source`` other than the public names and ``WEB_MAY_USE``."""
    public = set(bulkref.__all__)
    offences = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            offences += [
                f"{name}: import {a.name}"
                for a in node.names
                if a.name.startswith("bulkref.") and not a.name.startswith(WEB_MAY_USE)
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            if node.module == "bulkref":
                offences += [f"{name}: bulkref.{a.name}" for a in node.names if a.name not in public]
            elif node.module.startswith("bulkref") and not node.module.startswith(WEB_MAY_USE):
                offences.append(f"{name}: from {node.module}")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "bulkref"
            and node.attr not in public
        ):
            offences.append(f"{name}: bulkref.{node.attr}")
    return offences


def test_web_modules_use_only_the_public_api() -> None:
    modules = sorted(WEB.glob("*.py"))
    assert {p.name for p in modules} >= {"app.py", "jobs.py", "store.py", "security.py", "views.py"}
    assert [o for p in modules for o in layer_offences(p.name, p.read_text(encoding="utf-8"))] == []


def test_the_layer_rule_catches_private_uses() -> None:
    source = (
        "import bulkref\nimport bulkref.plan.model\nfrom bulkref.apply.run import journal_path\n"
        "from bulkref import make_plan, Journal\nfrom bulkref.web import views\nbulkref.errors.X\n"
    )
    assert layer_offences("m.py", source) == [
        "m.py: import bulkref.plan.model",
        "m.py: from bulkref.apply.run",
        "m.py: bulkref.Journal",
        "m.py: bulkref.errors",
    ]


# -- safe by default --------------------------------------------------------------------------


def test_every_post_route_refuses_a_form_without_its_csrf_token(serve: Callable[..., WebServer]) -> None:
    server = serve()
    c = client(server)
    base = upload(c, EXAMPLES)
    imp_id = base.rsplit("/", 1)[1]
    posts = [r.path for r in server.app.app.routes if "POST" in (getattr(r, "methods", None) or ())]
    assert set(posts) == {
        "/imports",
        "/imports/{id}/input",
        "/imports/{id}/mapping",
        "/imports/{id}/mapping/preview",
        "/imports/{id}/cells",
        "/imports/{id}/plan",
        "/imports/{id}/approve",
        "/imports/{id}/apply",
        "/imports/{id}/stop",
        "/export",
        "/signout",
    }
    for path in posts:
        url = path.replace("{id}", imp_id)
        for data in ({}, {"csrf": "forged"}):
            r = c.post(url, data={**data, "name": "x"}, files={"file": ("a.xlsx", EXAMPLES.read_bytes())})
            assert r.status_code == 403, (url, r.status_code)
            assert "did not come from bulkref" in r.text
    assert len(server.app.web.store.recent(50)) == 1  # nothing was created
    assert not (server.app.web.store.get(imp_id).plan_path).exists()


def test_pages_carry_a_content_security_policy_and_stay_out_of_frames(
    serve: Callable[..., WebServer],
) -> None:
    c = client(serve())
    r = c.get("/")
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    base = upload(c, EXAMPLES)
    plan_fingerprint(c, base)
    plan = c.get(base + "/plan.html")
    assert plan.status_code == 200
    assert "'sha256-" in plan.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in plan.headers["content-security-policy"]
    assert "x-frame-options" not in plan.headers


def test_access_token_is_required_when_set_and_never_shown(
    serve: Callable[..., WebServer], caplog: pytest.LogCaptureFixture
) -> None:
    token = "tok-" + "x" * 30
    server = serve(access_token=token)
    c = client(server)
    caplog.set_level("INFO", logger="bulkref.web")
    assert c.get("/").status_code == 403
    assert c.get("/static/app.css").status_code == 403
    assert c.get("/?token=wrong").status_code == 403
    r = c.get(f"/export?token={token}")
    assert r.status_code == 303 and r.headers["location"] == "/export"  # the token leaves the address
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Lax" in r.headers["set-cookie"]
    page = c.get("/")
    assert page.status_code == 200
    assert token not in page.text
    assert c.get("/static/app.css").status_code == 200
    base = upload(c, EXAMPLES)
    assert token not in c.get(base + "/check").text
    assert all(token not in record.getMessage() for record in caplog.records)
    assert any("GET /export 303" in record.getMessage() for record in caplog.records)


def raw_get(c: httpx.Client, server: WebServer, target: bytes) -> httpx.Response:
    """GET with this exact request target (httpx would read ``//host/`` as a host of its own)."""
    return c.send(c.build_request("GET", httpx.URL(server.url).copy_with(raw_path=target)))


def test_redirects_stay_on_this_origin(serve: Callable[..., WebServer]) -> None:
    token = "tok-" + "z" * 30
    server = serve(access_token=token)
    c = client(server)
    t = token.encode()
    for target in (
        b"//evil.example/?token=" + t,
        b"//evil.example?token=" + t,
        b"/\\evil.example/?token=" + t,
        b"/%2F%2Fevil.example/?token=" + t,
        b"/%5Cevil.example/?token=" + t,
        b"/https:%2F%2Fevil.example?token=" + t,
    ):
        r = raw_get(c, server, target)
        assert r.status_code == 303, target
        location = r.headers["location"]
        assert location.startswith("/") and location[1:2] not in ("/", "\\"), (target, location)
        assert httpx.URL(server.url).join(location).host == "127.0.0.1", (target, location)
    r = raw_get(c, server, b"/export?token=" + t + b"&x=1")
    assert r.headers["location"] == "/export?x=1"
    r = raw_get(c, server, b"/imports/%0D%0ASet-Cookie:%20a=b?token=" + t)
    assert r.headers["location"] == "/imports/%0D%0ASet-Cookie:%20a=b"  # one header, encoded
    assert "a=b" not in r.headers["set-cookie"]
    # Without a token, Starlette's own redirects (a trailing slash) stay here too.
    plain = serve()
    c = client(plain)
    for target in (b"//evil.example/", b"//evil.example/export/", b"/\\evil.example/", b"/export/"):
        r = raw_get(c, plain, target)
        if r.is_redirect:
            location = httpx.URL(plain.url).join(r.headers["location"])
            assert location.host == "127.0.0.1" and location.port == plain.port, (target, location)


def test_loopback_app_answers_only_to_loopback_host_names(serve: Callable[..., WebServer]) -> None:
    c = client(serve())
    assert c.get("/", headers={"host": "evil.example"}).status_code == 403
    assert c.get("/", headers={"host": "evil.example:8780"}).status_code == 403
    for host in ("localhost:8780", "LOCALHOST", "127.0.0.1", "127.0.0.1:8780", "127.9.8.7:1", "[::1]:8780"):
        assert c.get("/", headers={"host": host}).status_code == 200, host


# Names a rebinding page can have (resolved to 127.0.0.1 by its own DNS), and broken Host headers.
REBINDING = (
    "127.0.0.1.nip.io",
    "127.0.0.1.evil.example",
    "127.attacker.example",
    "127.0.0.1.evil.example:8780",
    "localhost.evil.example",
    "[::1].evil.example",
    "[::1]x",
    "127.0.0.1:80.evil.example",
    "127.0.0.1:",
    "127.1",
)


def test_a_rebinding_host_name_gets_no_page_no_token_and_no_action(serve: Callable[..., WebServer]) -> None:
    server = serve()
    c = client(server)
    base = upload(c, EXAMPLES)
    csrf = csrf_of(c)  # even the real token does not help a page on another name
    fp = plan_fingerprint(c, base)
    imp = server.app.web.store.get(base.rsplit("/", 1)[1])
    plan_before = imp.plan_path.read_bytes()
    gets = ["/", "/export", base, base + "/check", base + "/review", base + "/apply", base + "/plan.html"]
    gets += [base + "/plan.json", base + "/progress.json", "/static/app.js", "/template.xlsx"]
    posts: list[tuple[str, dict[str, Any]]] = [
        ("/imports", {"data": {"csrf": csrf}, "files": {"file": ("a.xlsx", EXAMPLES.read_bytes())}}),
        (base + "/plan", {"data": {"csrf": csrf}}),
        (base + "/approve", {"data": {"csrf": csrf, "name": "Mallory", "plan": fp}}),
        (base + "/apply", {"data": {"csrf": csrf}}),
        ("/export", {"data": {"csrf": csrf, "format": "csv"}}),
    ]
    for host in REBINDING:
        for path in gets:
            r = c.get(path, headers={"host": host})
            assert r.status_code == 403, (host, path, r.status_code)
            assert csrf not in r.text and "csrf" not in r.text and fp not in r.text
            assert "set-cookie" not in r.headers
        for path, body in posts:
            r = c.post(path, headers={"host": host}, **body)
            assert r.status_code == 403, (host, path, r.status_code)
    assert [i.id for i in server.app.web.store.recent(50)] == [imp.id]  # no upload
    assert imp.plan_path.read_bytes() == plan_before  # no plan
    assert imp.approval() is None and not imp.journal_path.exists()  # no approval, no apply
    assert not server.app.web.store.exports.exists()  # no export


def test_the_host_check_parses_names_and_addresses() -> None:
    from bulkref.web.security import allowed_host, host_name, is_loopback

    for name in ("127.0.0.1", "127.255.0.9", "localhost", "LocalHost", "::1", "[::1]", "0:0:0:0:0:0:0:1"):
        assert is_loopback(name), name
    for name in ("127.0.0.1.nip.io", "127.attacker.example", "localhost.evil.example", "127.1", "0.0.0.0"):
        assert not is_loopback(name), name
    assert not is_loopback("192.0.2.10") and not is_loopback("") and not is_loopback("[::1].x")
    assert host_name("[::1]:8780") == "::1" and host_name("Example.COM:80") == "example.com"
    assert host_name("::1") == "::1" and host_name("x:y") is None and host_name("") is None
    for header in REBINDING:
        assert not allowed_host(header, "127.0.0.1"), header
    # A name the user serves (--host NAME) is accepted exactly, beside loopback.
    assert allowed_host("bulkref.example.com:8780", "bulkref.example.com")
    assert allowed_host("BULKREF.example.com", "bulkref.example.com")
    assert allowed_host("127.0.0.1:8780", "bulkref.example.com")
    assert not allowed_host("bulkref.example.com.evil.example", "bulkref.example.com")
    assert not allowed_host("evil.example", "bulkref.example.com")
    assert allowed_host("192.0.2.10:8780", "192.0.2.10") and not allowed_host("192.0.2.11", "192.0.2.10")
    assert allowed_host("[2001:db8::5]:8780", "2001:db8::5")
    assert allowed_host("[2001:db8::5]", "[2001:db8::5]")
    # Every interface: this machine's name (the printed URL's) and any address, never another name.
    import socket

    assert allowed_host(f"{socket.gethostname()}:8780", "0.0.0.0")
    assert allowed_host("192.0.2.10:8780", "0.0.0.0") and allowed_host("[2001:db8::5]:1", "::")
    assert not allowed_host("127.0.0.1.nip.io:8780", "0.0.0.0") and not allowed_host("evil.example", "::")


def test_with_an_access_token_the_host_is_checked_first(serve: Callable[..., WebServer]) -> None:
    token = "tok-" + "y" * 30
    server = serve(access_token=token)
    server.app.host = "bulkref.example.com"  # as `serve --host bulkref.example.com` (bound to loopback here)
    c = client(server)
    for host in ("127.0.0.1.evil.example", "evil.example", "bulkref.example.com.evil.example"):
        r = c.get(f"/?token={token}", headers={"host": host})
        assert r.status_code == 403 and "set-cookie" not in r.headers  # the token buys no cookie there
    r = c.get(f"/?token={token}", headers={"host": f"bulkref.example.com:{server.port}"})
    assert r.status_code == 303 and "set-cookie" in r.headers
    assert c.get("/", headers={"host": "bulkref.example.com"}).status_code == 200
    assert c.get("/").status_code == 200  # loopback too
    assert c.get("/", headers={"host": "evil.example"}).status_code == 403


def test_uploads_over_the_limit_are_refused(serve: Callable[..., WebServer]) -> None:
    server = serve(max_upload=20_000)
    c = client(server)
    big = b"PK" + b"\0" * 40_000
    r = c.post("/imports", data={"csrf": csrf_of(c)}, files={"file": ("big.xlsx", big)})
    assert r.status_code == 413
    assert server.app.web.store.recent() == []


def test_uploads_are_stored_under_generated_names(serve: Callable[..., WebServer], tmp_path: Path) -> None:
    server = serve()
    c = client(server)
    base = upload(c, EXAMPLES, name="../../outside/evil.xlsx")
    imp = server.app.web.store.get(base.rsplit("/", 1)[1])
    assert imp.name == "evil.xlsx"
    assert re.fullmatch(r"input-[0-9a-f]{12}\.xlsx", imp.input.name)
    assert imp.input.parent == imp.folder
    assert not (tmp_path / "outside").exists()
    r = c.post("/imports", data={"csrf": csrf_of(c)}, files={"file": ("notes.txt", b"hello")})
    assert r.status_code == 422 and "is not a sheet" in r.text


def test_unknown_or_malformed_import_ids_are_not_found(serve: Callable[..., WebServer]) -> None:
    c = client(serve())
    assert c.get("/imports/20260101-000000-deadbeef/check").status_code == 404
    assert c.get("/imports/..%2F..%2Fetc/check").status_code == 404
    assert c.get("/imports/nothing/results.xlsx").status_code == 404
    assert c.get("/export/../../x/file").status_code == 404


def test_templates_are_served_and_other_suffixes_are_not_found(
    serve: Callable[..., WebServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the app makes its folder
    c = client(serve())
    for path in ("/template.py", "/template.xlsx.py", "/template.XLSX", "/template.json", "/template.."):
        r = c.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "There is no such page." in r.text
    assert list(scratch.iterdir()) == []  # nothing left behind
    xlsx = c.get("/template.xlsx?examples=1")
    assert xlsx.status_code == 200 and xlsx.content.startswith(b"PK")
    assert "referrals-template-examples.xlsx" in xlsx.headers["content-disposition"]
    assert c.get("/template.csv").status_code == 200
    deadline = time.monotonic() + 5  # a download's folder goes once it is sent
    while list(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(scratch.iterdir()) == []


def test_a_hostile_referral_name_is_escaped(serve: Callable[..., WebServer], tmp_path: Path) -> None:
    c = client(serve())
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    sheet = write_xlsx(tmp_path / "x.xlsx", [row(External_Reference_ID="<b>E1</b>", Referral_Name=hostile)])
    base = upload(c, sheet, name='<img src=x onerror="alert(3)">.xlsx')
    page = c.get(base + "/check").text
    assert "<script>alert(1)" not in page and "<img src=x" not in page and "<b>E1" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    plan_fingerprint(c, base)
    for html in (c.get(base + "/review").text, c.get(base + "/plan.html").text, c.get("/").text):
        assert "<script>alert(1)" not in html and "<img src=x" not in html
    # A CSV's sheet is its file's name, which the plan's rows carry: shown as uploaded, escaped.
    csv_sheet = write_csv(tmp_path / "x.csv", [row(External_Reference_ID="C-1")])
    base = upload(c, csv_sheet, name="q' data-x='<i>y.csv")
    plan_fingerprint(c, base)
    check, plan = c.get(base + "/check").text, c.get(base + "/plan.html").text
    assert "data-x='" not in check + plan and "<i>y" not in check + plan
    assert "Sheet <strong>q&#39; data-x=&#39;&lt;i&gt;y.csv</strong>" in check
    assert "q&#x27; data-x=&#x27;&lt;i&gt;y.csv row 2" in plan


def test_pages_show_no_server_path_only_the_names_uploaded(
    serve: Callable[..., WebServer], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    server = serve(api_url=None, sandbox=True)  # the embedded sandbox: its state file is in home too
    c = client(server)
    pages: list[httpx.Response] = []
    # An unreadable sheet: its message, on the check page, the annotated download's error and the plan's.
    r = c.post("/imports", data={"csrf": csrf_of(c)}, files={"file": ("deals.xlsx", b"no workbook")})
    bad = r.headers["location"].rsplit("/", 1)[0]
    pages += [
        c.get(bad + "/check"),
        c.get(bad + "/annotated.xlsx"),
        planned(c, bad),
    ]
    assert "deals.xlsx" in pages[0].text and "deals.xlsx" in pages[1].text
    # A mapping with a mistake, and a CSV export through a mapping (the CSV's sheet is its file's name).
    legacy = Path(__file__).parent.parent / "examples" / "legacy"
    export = (legacy / "hubspot-deals.csv").read_bytes()
    for mapping in (b"[fields]\nX = 1\n", (legacy / "hubspot-deals.mapping.toml").read_bytes()):
        files = {"file": ("hubspot.csv", export), "mapping": ("hubspot.mapping.toml", mapping)}
        r = c.post("/imports", data={"csrf": csrf_of(c)}, files=files)
        pages.append(c.get(r.headers["location"]))
        assert "hubspot.mapping.toml" in pages[-1].text
    assert "Sheet <strong>hubspot.csv</strong>" in pages[-1].text
    mapped = r.headers["location"].rsplit("/", 1)[0]
    plan_fingerprint(c, mapped)
    pages += [c.get(mapped + "/review"), c.get(mapped + "/plan.html")]
    assert "bulkref plan: hubspot.csv" in pages[-1].text and "sandbox.db" in pages[-1].text
    # A sheet through every step.
    base = upload(c, EXAMPLES, name="q3.xlsx")
    approve(c, base)
    assert c.post(base + "/apply", data={"csrf": csrf_of(c)}).status_code == 303
    server.app.web.jobs.wait(60)
    for path in ("/check", "/review", "/plan.html", "/apply", "/results", "/progress.json"):
        pages.append(c.get(base + path))
    pages += [c.get("/"), c.get("/export"), c.get("/imports/20260101-000000-deadbeef/check")]
    for page in pages:
        text = urllib.parse.unquote(page.text)
        for where in {str(home), str(home.resolve()), str(tmp_path)}:
            assert where not in text, (page.url, where)
        assert re.search(r"(input|mapping)-[0-9a-f]{12}", text) is None, page.url


# -- approval and apply -----------------------------------------------------------------------


def test_apply_needs_an_approval_of_the_current_plan(serve: Callable[..., WebServer], tmp_path: Path) -> None:
    server = serve()
    c = client(server)
    base = upload(c, EXAMPLES)
    csrf = csrf_of(c)
    assert c.post(base + "/apply", data={"csrf": csrf}).status_code == 409  # no plan
    fp = plan_fingerprint(c, base)
    assert c.post(base + "/apply", data={"csrf": csrf}).status_code == 409  # not approved
    assert c.post(base + "/approve", data={"csrf": csrf, "name": " ", "plan": fp}).status_code == 422
    assert c.post(base + "/approve", data={"csrf": csrf, "name": "Ada", "plan": "0" * 64}).status_code == 409
    assert c.post(base + "/approve", data={"csrf": csrf, "name": "Ada", "plan": fp}).status_code == 303
    imp = server.app.web.store.get(base.rsplit("/", 1)[1])
    approval = imp.approval()
    assert approval["name"] == "Ada" and approval["planFingerprint"] == bulkref.fingerprint(imp.plan_path)
    assert approval["inputFingerprint"] == bulkref.fingerprint(imp.input) and approval["at"]

    # A new plan (Partner Center may have changed) needs its own approval.
    assert c.post(base + "/plan", data={"csrf": csrf, "confirm_withdraw": "yes"}).status_code == 303
    assert c.post(base + "/apply", data={"csrf": csrf}).status_code == 409
    approve(c, base)
    # A corrected sheet makes the approved plan stale.
    fixed = write_xlsx(tmp_path / "fixed.xlsx", [row(External_Reference_ID="NEW-1")])
    with fixed.open("rb") as f:
        files = {"file": ("fixed.xlsx", f.read())}
    assert c.post(base + "/input", data={"csrf": csrf}, files=files).status_code == 409  # said first
    form = {"csrf": csrf, "confirm_withdraw": "yes"}
    assert c.post(base + "/input", data=form, files=files).status_code == 303
    r = c.post(base + "/apply", data={"csrf": csrf})
    assert r.status_code == 409
    assert not imp.journal_path.exists()  # nothing ran


def test_two_applies_of_one_import_cannot_run_at_once(
    serve: Callable[..., WebServer], sandbox_factory: Callable[..., Any], tmp_path: Path
) -> None:
    slow = sandbox_factory(faults="latency=150ms")
    server = serve(api_url=slow.url)
    c = client(server)
    sheet = write_xlsx(tmp_path / "ten.xlsx", [row(External_Reference_ID=f"T-{i}") for i in range(10)])
    base = upload(c, sheet)
    approve(c, base)
    csrf = csrf_of(c)
    assert c.post(base + "/apply", data={"csrf": csrf, "concurrency": "1"}).status_code == 303
    second = c.post(base + "/apply", data={"csrf": csrf, "concurrency": "1"})
    assert second.status_code == 409 and "being applied already" in second.text
    assert c.post(base + "/stop", data={"csrf": csrf}).status_code == 303
    server.app.web.jobs.wait(30)
    progress = c.get(base + "/progress.json").json()
    assert progress["state"] == "interrupted"
    assert progress["total"] == 10 and 1 <= progress["done"] < 10


def test_rows_in_doubt_are_said_and_resuming_settles_them(
    serve: Callable[..., WebServer], sandbox_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """Every create's answer lost, listings 4 s behind, no replay (nothing documents either):
    the run ends with its rows in doubt, the page says so and offers Resume, and resuming
    once the listing shows them finds them: nothing is sent twice."""
    lossy = sandbox_factory(
        profile="documented", replay_request_ids=False, list_lag=4, faults="commit-then-reset=1"
    )
    server = serve(api_url=lossy.url, wait_in_doubt=0)
    c = client(server)
    sheet = write_xlsx(tmp_path / "two.xlsx", [row(External_Reference_ID=f"D-{i}") for i in range(2)])
    base = upload(c, sheet)
    approve(c, base)
    assert c.post(base + "/apply", data={"csrf": csrf_of(c)}).status_code == 303
    server.app.web.jobs.wait(30)
    results = c.get(base + "/results").text
    assert 'id="in-doubt"' in results and "none was sent twice" in results
    page = c.get(base + "/apply").text
    assert 'id="in-doubt"' in page and 'id="resume"' in page
    lossy.admin.set_faults("")
    time.sleep(4.5)
    assert c.post(base + "/apply", data={"csrf": csrf_of(c)}).status_code == 303
    server.app.web.jobs.wait(30)
    assert ">Applied<" in c.get(base + "/apply").text
    assert lossy.admin.stats()["methods"]["POST"] == 2  # found, never sent again


def test_the_plan_step_shows_rows_read_pages_listed_and_rows_planned(
    serve: Callable[..., WebServer], sandbox_factory: Callable[..., Any], tmp_path: Path
) -> None:
    slow = sandbox_factory(faults="latency=300ms")  # each call a while: the plan takes seconds
    server = serve(api_url=slow.url)
    c = client(server)
    sheet = write_xlsx(tmp_path / "six.xlsx", [row(External_Reference_ID=f"P-{i}") for i in range(6)])
    base = upload(c, sheet)
    assert c.post(base + "/plan", data={"csrf": csrf_of(c)}).status_code == 303
    page = c.get(base + "/review").text  # while it plans: its progress, not a busy button
    assert (
        'data-progress="/imports/' in page
        and "Rows read" in page
        and "pages of Partner Center listed" in page
    )
    seen = []
    while (progress := c.get(base + "/plan-progress.json").json())["state"] in ("starting", "running"):
        seen.append(progress)
        time.sleep(0.05)
    assert progress["state"] == "done", progress
    assert progress["counts"] == {"rows": 6, "pages": progress["counts"]["pages"]}
    assert progress["counts"]["pages"] >= 1 and progress["done"] == progress["total"] == 6
    # Counted as they came: pages listed before the rows were planned.
    assert any(p["counts"]["pages"] >= 1 and p["done"] == 0 for p in seen), seen
    assert 'id="plan-rows"' in c.get(base + "/review").text


def test_a_restart_loses_nothing(serve: Callable[..., WebServer]) -> None:
    first = serve()
    c = client(first)
    base = upload(c, EXAMPLES)
    approve(c, base, name="Grace")
    first.stop()

    second = serve()
    c2 = client(second)
    start = c2.get("/").text
    assert "referrals.xlsx" in start and ">approved<" in start
    assert "Grace" in c2.get(base + "/apply").text
    imp = second.app.web.store.get(base.rsplit("/", 1)[1])
    write_json(imp.run_path, {"state": "running", "started": "then"})  # a server killed mid-apply
    assert c2.get(base + "/progress.json").json()["state"] == "interrupted"
    assert 'id="resume"' in c2.get(base + "/apply").text


def test_each_server_start_has_its_own_csrf_token(serve: Callable[..., WebServer], tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "web").mkdir(parents=True)
    (home / "web" / "csrf-token").write_text("x" * 43)  # as earlier versions kept it, for good
    first = serve()
    c = client(first)
    base = upload(c, EXAMPLES)
    old = csrf_of(c)
    assert old != "x" * 43 and csrf_of(c) == old  # one token for the server's run
    first.stop()
    assert not (home / "web" / "csrf-token").exists()
    assert all(old not in p.read_text(errors="replace") for p in home.rglob("*") if p.is_file())

    second = serve()
    c2 = client(second)
    # A page loaded before the restart: its form is refused, with what to do.
    r = c2.post(base + "/plan", data={"csrf": old})
    assert r.status_code == 403 and "reload the page" in r.text
    new = csrf_of(c2)  # the reload
    assert new != old
    assert "Review the plan" in planned(c2, base, new).text


def test_results_and_export_through_the_pages(serve: Callable[..., WebServer], target: Any) -> None:
    server = serve()
    c = client(server)
    base = upload(c, EXAMPLES)
    approve(c, base)
    assert c.post(base + "/apply", data={"csrf": csrf_of(c)}).status_code == 303
    server.app.web.jobs.wait(60)
    assert c.get(base + "/progress.json").json()["counts"]["created"] == 5
    results = c.get(base + "/results").text
    stored = {r["id"] for r in target.client().get(target.url).json()["value"]}
    imp = server.app.web.store.get(base.rsplit("/", 1)[1])
    ids = [r["referral_id"] for r in imp.results()] + [r["linked_referral_id"] for r in imp.results()]
    ids = [i for i in ids if i]
    assert len(ids) >= 5 and set(ids) <= stored
    assert all(f'<td class="mono">{i}</td>' in results for i in ids)
    assert c.get(base + "/results.xlsx").headers["content-type"].startswith("application/vnd.openxmlformats")

    r = c.post("/export", data={"csrf": csrf_of(c), "since": "not a date"})
    assert r.status_code == 200 and "is not a date" in r.text
    r = c.post("/export", data={"csrf": csrf_of(c), "status": ["New", "Active"], "format": "csv"})
    assert r.status_code == 303
    export = r.headers["location"]
    server.app.web.jobs.wait(60)
    assert c.get(export + "/progress.json").json()["state"] == "done"
    text = c.get(export + "/file").text
    assert "CRM-000101" in text

    # Planning again starts a new round: now every row is unchanged, and the old run is kept
    # whole (its results, journal, plan and approval), listed and downloadable.
    assert ">applied<" in c.get("/").text
    refused = c.post(base + "/plan", data={"csrf": csrf_of(c)})
    assert refused.status_code == 409 and "withdraws that approval" in refused.text  # said before
    assert "I understand" in c.get(base + "/review").text
    created = [r["referral_id"] for r in imp.results() if r["outcome"] == "created"]
    r = c.post(base + "/plan", data={"csrf": csrf_of(c), "confirm_withdraw": "yes"})
    assert r.status_code == 303
    server.app.web.jobs.wait(60)  # planned in the background
    assert ">planned<" in c.get("/").text
    assert imp.results() == [] and not imp.results_path.exists()
    kept = imp.folder / "runs" / "1"
    assert {"run.json", "results.json", "results.xlsx", "plan.json", "approval.json"} <= {
        p.name for p in kept.iterdir()
    }
    assert any(p.name.startswith("journal.sqlite") for p in kept.iterdir())
    assert [
        x["referral_id"] for x in json.loads((kept / "results.json").read_text()) if x["outcome"] == "created"
    ] == created
    page = c.get(base + "/results").text
    assert 'data-run="1"' in page and "approved by Ada" in page
    old = c.get(base + "/runs/1/results.xlsx")
    assert old.status_code == 200 and old.headers["content-type"].startswith("application/vnd.openxml")
    assert c.get(base + "/runs/2/results.xlsx").status_code == 404
    withdrawn = server.app.web.store.get(imp.id).meta["withdrawn"]
    assert [(w["approvedBy"], w["why"]) for w in withdrawn] == [("Ada", "the plan was made again")]
    assert "Nothing to apply" in c.get(base + "/review").text


# -- the command ------------------------------------------------------------------------------


def test_serve_refuses_two_targets_and_a_port_in_use() -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["serve", "--sandbox", "--api-url", "http://127.0.0.1:1", "--no-browser"])
    assert r.exit_code == 2 and "two different targets" in r.output
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        r = runner.invoke(cli, ["serve", "--sandbox", "--port", str(port), "--no-browser"])
        assert r.exit_code == 2 and f"port {port} on 127.0.0.1 is in use" in r.output
    finally:
        sock.close()


SERVE = ("serve", "--sandbox", "--port", "0", "--no-browser")


@contextlib.contextmanager
def serve_command(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """``bulkref serve --sandbox`` in a process of its own: (the URL it prints and
    serves, its first lines). Its log goes to a file, which no pipe can stall."""
    env = {"BULKREF_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from bulkref.cli import main; main()", *SERVE],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline(), proc.stdout.readline()]
            url = re.fullmatch(r"Open (http://127\.0\.0\.1:\d+/)\n", lines[1])
            assert url is not None, lines
            deadline = time.monotonic() + 20
            while True:
                try:
                    httpx.get(url.group(1), timeout=5)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            yield url.group(1).rstrip("/"), lines
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:  # a server stuck in one call may not heed SIGTERM
                proc.kill()
                proc.wait(timeout=20)


@pytest.mark.slow
def test_serve_prints_the_url_and_serves_it(tmp_path: Path) -> None:
    with serve_command(tmp_path) as (url, lines):
        assert lines[0].startswith("bulkref serve: the local sandbox")
        page = httpx.get(url + "/", timeout=5)
        assert page.status_code == 200 and "SANDBOX" in page.text


def test_a_crm_export_with_its_mapping_file(serve: Callable[..., WebServer]) -> None:
    legacy = Path(__file__).parent.parent / "examples" / "legacy"
    server = serve()
    c = client(server)
    with (
        (legacy / "hubspot-deals.csv").open("rb") as sheet,
        (legacy / "hubspot-deals.mapping.toml").open("rb") as m,
    ):
        r = c.post(
            "/imports",
            data={"csrf": csrf_of(c)},
            files={"file": ("hubspot-deals.csv", sheet), "mapping": ("hubspot-deals.mapping.toml", m)},
        )
    assert r.status_code == 303
    base = r.headers["location"].rsplit("/", 1)[0]
    page = c.get(base + "/check").text
    assert "through hubspot-deals.mapping.toml" in page
    assert re.search(r'class="big">8</span> rows', page) and 'id="error-count">0<' in page
    plan_fingerprint(c, base)
    imp = server.app.web.store.get(base.rsplit("/", 1)[1])
    plan = bulkref.Plan.from_json(json.loads(imp.plan_path.read_text()))
    assert plan.summary["create"] == 8 and plan.mapping_fingerprint == bulkref.fingerprint(imp.mapping)


@pytest.mark.slow
def test_a_pathological_pattern_stalls_no_other_request(tmp_path: Path) -> None:
    """'^(a+)+$' against thirty a's and a b: minutes for Python's re, holding the GIL,
    so that no other request was answered meanwhile; RE2 runs it in time linear in the
    cell. A long pattern on long cells still takes seconds (linear, but in the pattern's
    size too): RE2 lets go of the GIL meanwhile, and other requests are answered. The
    server runs in a process of its own: a stalled one cannot stall the test."""
    import threading

    header = "Deal,Name,Account,Street,City,Country,Amount,Currency,Close,Email,Notes\n"
    line = (
        "D-{i},Contoso ERP,{account},1 Main St,Seattle,US,50000,USD,2027-03-31,sue@contoso.example,{notes}\n"
    )
    export = header + "".join(
        line.format(i=i, account="a" * 30 + "b" * (i % 2), notes="n" * (5000 if i < 20 else 10))
        for i in range(2000)
    )
    columns = {
        "External Reference ID": "Deal",
        "Referral Name": "Name",
        "Customer Name": "Account",
        "Address Line 1": "Street",
        "City": "City",
        "Country": "Country",
        "Deal Value": "Amount",
        "Currency": "Currency",
        "Closing Date": "Close",
        "Customer Contact {n} Email": "Email",
    }
    mapping = "[[skip]]\ncolumn = \"Account\"\npattern = '^(a+)+$'\n\n"
    mapping += "[[skip]]\ncolumn = \"Notes\"\npattern = '.{1000}.{1000}.{1000}x'\n\n[fields]\n"
    mapping += "".join(f'"{field}" = "{column}"\n' for field, column in columns.items())
    mapping += '"Deal Type" = { value = "Partner-led" }\n'
    with serve_command(tmp_path) as (url, _):
        c = httpx.Client(base_url=url, timeout=60)
        files = {"file": ("deals.csv", export.encode()), "mapping": ("deals.mapping.toml", mapping.encode())}
        r = c.post("/imports", data={"csrf": csrf_of(c)}, files=files)
        base = r.headers["location"].rsplit("/", 1)[0]
        checked: list[httpx.Response | Exception] = []

        def check() -> None:
            try:
                checked.append(httpx.get(url + base + "/check", timeout=60))
            except Exception as e:  # the assertion below says it
                checked.append(e)

        worker = threading.Thread(target=check, daemon=True)
        started = time.monotonic()
        worker.start()
        other = httpx.Client(base_url=url, timeout=1.0)
        answered = 0
        while worker.is_alive() or answered == 0:
            asked = time.monotonic()
            assert other.get("/export").status_code == 200  # a stalled server: ReadTimeout
            assert time.monotonic() - asked < 1
            answered += 1
            assert time.monotonic() - started < 60
        worker.join()
    assert answered >= 2  # some while the check ran (seconds of RE2 on the long cells)
    page = checked[0]
    assert isinstance(page, httpx.Response) and page.status_code == 200, page
    assert re.search(r'class="big">1000</span> rows', page.text), page.text[-800:]  # the others skipped


def test_an_unreadable_sheet_is_one_sentence_on_the_check_page(serve: Callable[..., WebServer]) -> None:
    c = client(serve())
    r = c.post("/imports", data={"csrf": csrf_of(c)}, files={"file": ("deals.xlsx", b"this is no workbook")})
    page = c.get(r.headers["location"])
    assert page.status_code == 200
    found = re.search(r'<div class="alert error" id="unusable">([^<]+)</div>', page.text)
    assert found is not None and "Traceback" not in page.text
    assert found.group(1).strip().endswith(".")


def test_a_mapping_too_deep_or_too_large_is_one_sentence_on_the_check_page(
    serve: Callable[..., WebServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    c = client(serve())
    export = (Path(__file__).parent.parent / "examples" / "legacy" / "hubspot-deals.csv").read_bytes()
    for mapping, said in (
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "deep.mapping.toml line 1 nests"),
        (b"#" * (2**20 + 1), "The mapping file &#39;deep.mapping.toml&#39; is over 1 MB"),
    ):
        files = {"file": ("deals.csv", export), "mapping": ("deep.mapping.toml", mapping)}
        r = c.post("/imports", data={"csrf": csrf_of(c)}, files=files)
        assert r.status_code == 303
        base = r.headers["location"].rsplit("/", 1)[0]
        for page in (c.get(base + "/check"), planned(c, base)):
            assert page.status_code == 200 and said in page.text, page.text[-600:]
            assert "Traceback" not in page.text
        assert c.get(base + "/annotated.xlsx").status_code == 422
    assert not any(r.exc_info or "Traceback" in r.getMessage() for r in caplog.records)
    assert not any(r.levelname == "ERROR" for r in caplog.records)


def test_serve_beyond_loopback_prints_a_url_with_an_access_token(monkeypatch: pytest.MonkeyPatch) -> None:
    import bulkref.web.server as server

    served: list[Settings] = []
    monkeypatch.setattr(server, "bind", lambda host, port: bind("127.0.0.1", 0))  # not another address
    monkeypatch.setattr(
        server, "serve", lambda settings, host, sock, **tls: (served.append(settings), sock.close())
    )
    r = CliRunner().invoke(cli, ["serve", "--sandbox", "--host", "0.0.0.0", "--no-browser"])
    assert r.exit_code == 0, r.output
    url = re.search(r"Open (http://\S+:\d+/\?token=(\S+))", r.output)
    assert url is not None, r.output
    assert served[0].access_token == url.group(2) and len(url.group(2)) >= 32
    assert "carries the access token" in r.output

    served.clear()
    r = CliRunner().invoke(cli, ["serve", "--sandbox", "--no-browser"])
    assert "token" not in r.output and served[0].access_token is None
    assert served[0].host == "127.0.0.1"

    # A name that only starts like loopback is a name on the network: it gets the token.
    for host in ("127.0.0.1.nip.io", "127.attacker.example"):
        served.clear()
        r = CliRunner().invoke(cli, ["serve", "--sandbox", "--host", host, "--no-browser"])
        assert r.exit_code == 0, r.output
        assert served[0].access_token is not None and served[0].host == host
        assert f"Open http://{host}:" in r.output and "?token=" in r.output
    for host in ("localhost", "::1", "127.0.0.2"):
        served.clear()
        r = CliRunner().invoke(cli, ["serve", "--sandbox", "--host", host, "--no-browser"])
        assert r.exit_code == 0 and served[0].access_token is None, (host, r.output)


def test_error_pages_carry_the_policy_too(serve: Callable[..., WebServer]) -> None:
    c = client(serve())
    for path in ("/nowhere/plan.html", "/imports/20260101-000000-deadbeef/plan.html"):
        r = c.get(path)
        assert r.status_code == 404
        assert r.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")


def test_describe_target_names_the_service_and_the_account(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path))
    monkeypatch.delenv("BULKREF_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("BULKREF_API_URL", raising=False)
    sandbox = bulkref.describe_target(None, True)
    assert sandbox.is_sandbox and sandbox.state == str(tmp_path / "sandbox.db")
    live = bulkref.describe_target(None, False)
    assert (live.kind, live.name, live.account) == ("service", "Partner Center", None)  # not signed in
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", "secret-value")
    given = bulkref.describe_target("https://api.example.com", False)
    assert given.url == "https://api.example.com/v1.0/engagements/referrals"
    assert given.account == "the token in BULKREF_ACCESS_TOKEN" and "secret-value" not in repr(given)
    with pytest.raises(bulkref.BadTarget):
        bulkref.describe_target("http://example.com", False)


def test_the_live_banner_says_when_nobody_is_signed_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path))
    monkeypatch.delenv("BULKREF_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("BULKREF_API_URL", raising=False)
    with WebServer(Settings(port=0, home=tmp_path)) as server:
        banner = re.search(
            r'<div class="target target-live" id="target".*?</div>', httpx.get(server.url).text, re.S
        )
    assert banner is not None
    assert (
        "LIVE" in banner.group(0)
        and "Partner Center" in banner.group(0)
        and "not signed in" in banner.group(0)
    )


def test_download_names_come_from_the_upload_made_harmless(serve: Callable[..., WebServer]) -> None:
    c = client(serve())
    base = upload(c, EXAMPLES, name='Q3 "deals"; x=1.xlsx')
    plan_fingerprint(c, base)
    disposition = c.get(base + "/plan.json").headers["content-disposition"]
    name = urllib.parse.unquote(re.split(r"filename\*?=(?:utf-8'')?", disposition)[1]).strip('"')
    assert re.fullmatch(r"Q3 [\w .-]+\.plan\.json", name) and ";" not in name and '"' not in name, disposition
    annotated = c.get(base + "/annotated.xlsx")
    assert annotated.status_code == 200 and ".annotated.xlsx" in annotated.headers["content-disposition"]


def test_apply_input_stops_when_its_stop_event_is_set(target: Any, tmp_path: Path) -> None:
    import threading

    sheet = write_xlsx(tmp_path / "six.xlsx", [row(External_Reference_ID=f"EV-{i}") for i in range(6)])
    stop = threading.Event()
    seen: list[Any] = []

    def on_result(result: Any) -> None:
        seen.append(result)
        stop.set()  # from the run's own thread here; the web app sets it from a request's

    run = bulkref.apply_input(
        sheet, api_url=target.url, concurrency=1, state=tmp_path / "j.sqlite", on_result=on_result, stop=stop
    )
    assert run.interrupted and len(seen) == 1
    assert [r.outcome for r in run.results].count(bulkref.Outcome.CREATED) == 1
    assert sum(r.error_code == "notReached" for r in run.results) == 5
    again = bulkref.apply_input(sheet, api_url=target.url, concurrency=1, state=tmp_path / "j.sqlite")
    assert again.resumed and not again.interrupted and again.summary["created"] == 6
