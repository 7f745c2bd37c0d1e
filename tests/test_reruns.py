"""Re-runs and reviews a person can trust, through the command line against the sandbox over loopback:
the target named, results that keep the record, newer edits protected, one row per deal in an export,
progress that counts resumed rows."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helpers
import httpx
import openpyxl
import pytest
from click.testing import CliRunner, Result

from bulkref.api import signin
from bulkref.api.destination import destination
from bulkref.api.target import PARTNER_CENTER_URL, Target
from bulkref.cli.main import cli
from bulkref.sandbox.options import SANDBOX_CLIENT_ID, SANDBOX_PASSWORD, SANDBOX_TENANT_ID, SANDBOX_USER
from bulkref.sheets.examples import EXAMPLES

TOKEN = "sandbox-test-token"
ID_COLUMNS = ("Referral ID", "Engagement ID", "Linked Referral ID")


def sheet(path: Path, n: int = 5, prefix: str = "T") -> Path:
    """``n`` deals cycling through the examples: private, partner-led, two co-sells, shared with a partner."""
    return helpers.sheet(path, n, prefix)


def invoke(*args: str | Path, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, input=stdin, catch_exceptions=False)


def bulkref(*args: str | Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkref", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def results_rows(path: Path) -> list[dict[str, Any]]:
    ws = openpyxl.load_workbook(path)["Results"]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def everything(url: str) -> list[dict[str, Any]]:
    out, next_url = [], f"{url}?$top=1000"
    while next_url:
        page = httpx.get(next_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
        out += page["value"]
        next_url = page.get("@odata.nextLink")
    return out


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    for name in ("BULKREF_API_URL", "BULKREF_AUTHORITY", "BULKREF_USERNAME", "BULKREF_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", TOKEN)
    return {**os.environ}


# --- 1. the target, named ---------------------------------------------------------------------------


def _on_a_terminal(args: list[str], env: dict[str, str], answer: str) -> tuple[int, str, str]:
    """Run bulkref with a pseudo-terminal as its standard input, ``answer`` typed ahead."""
    import pty  # the prompt needs a terminal; pty is what gives a child one here

    main, child = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "bulkref", *args],
            stdin=child,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        os.write(main, answer.encode())
        out, err = process.communicate(timeout=120)
    finally:
        os.close(child)
        os.close(main)
    return process.returncode, out, err


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal (pty) is POSIX's")
def test_plan_and_apply_name_the_embedded_sandbox_and_its_state(env: dict[str, str], tmp_path: Path) -> None:
    state = str(tmp_path / "home" / "sandbox.db")
    path = sheet(tmp_path / "deals.xlsx", 2)

    text = bulkref("plan", path, "--sandbox", env=env)
    assert text.returncode == 0, text.stderr
    assert f"Target: the local sandbox (state in {state})" in text.stdout
    doc = json.loads(bulkref("plan", path, "--sandbox", "--format", "json", env=env).stdout)
    assert doc["target"]["kind"] == "sandbox" and doc["target"]["state"] == state
    assert doc["target"]["url"].startswith("http://127.0.0.1:")
    html = bulkref("plan", path, "--sandbox", "--format", "html", env=env).stdout
    assert 'class="target sandbox" data-kind="sandbox"' in html and state in html

    code, _, err = _on_a_terminal(["apply", str(path), "--sandbox"], env, "n\n")
    assert code == 1 and f"Apply it to the local sandbox (state in {state})? [y/N]" in err, err
    assert "Nothing was sent." in err
    code, out, err = _on_a_terminal(["apply", str(path), "--sandbox"], env, "y\n")
    assert code == 0, err
    assert f"Applied to the local sandbox (state in {state}): 2 created" in out

    no_terminal = bulkref("apply", path, "--sandbox", env=env)
    assert no_terminal.returncode == 2
    assert f"apply writes to the local sandbox (state in {state}) and there is no terminal" in (
        no_terminal.stderr
    )


def test_apply_json_names_a_sandbox_url(sandbox: Any, env: dict[str, str], tmp_path: Path) -> None:
    done = invoke(
        "apply", sheet(tmp_path / "d.xlsx", 2), "--api-url", sandbox.url, "--yes", "--format", "json"
    )
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["target"] == {
        "kind": "sandbox-url",
        "url": sandbox.url,
        "account": None,
        "tenant": None,
        "state": None,
        "credentials": "BULKREF_ACCESS_TOKEN",
    }
    assert TOKEN not in done.output
    text = invoke("apply", tmp_path / "d.xlsx", "--api-url", sandbox.url, "--yes")
    assert f"Applied to the sandbox at {sandbox.url} with the token in BULKREF_ACCESS_TOKEN: 0 created" in (
        text.stdout
    )


@pytest.mark.slow
def test_a_signed_in_service_is_named_with_account_and_tenant_and_never_the_token(
    sandbox_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Signed in with bulkref login (the sandbox as identity provider, over https on loopback),
    --yes without a terminal applies, and the summary and JSON say as whom and in which tenant."""
    server = sandbox_factory(tls=True, require_issued_tokens=True)
    for name in ("BULKREF_ACCESS_TOKEN", "BULKREF_API_URL", "BULKREF_USERNAME", "BULKREF_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    environ = {
        **os.environ,
        "BULKREF_HOME": str(tmp_path / "home"),
        "SSL_CERT_FILE": str(server.server.ca_file),
        "BULKREF_AUTHORITY": f"{server.root}/common",
        "BULKREF_CLIENT_ID": SANDBOX_CLIENT_ID,
        "BULKREF_PASSWORD": SANDBOX_PASSWORD,
    }
    signed_in = bulkref("login", "--username", SANDBOX_USER, env=environ)
    assert signed_in.returncode == 0, signed_in.stderr
    path = sheet(tmp_path / "deals.xlsx", 2)
    done = bulkref("apply", path, "--api-url", server.url, "--yes", env=environ)
    assert done.returncode == 0, done.stderr
    assert (
        f"Applied to the sandbox at {server.url} as {SANDBOX_USER}, tenant {SANDBOX_TENANT_ID}: 2 created"
        in (done.stdout)
    )
    doc = json.loads(bulkref("plan", path, "--api-url", server.url, "--format", "json", env=environ).stdout)
    assert doc["target"]["account"] == SANDBOX_USER and doc["target"]["tenant"] == SANDBOX_TENANT_ID
    assert doc["target"]["credentials"] == "bulkref login"
    token = signin.stored_token_source({**environ})()
    for out in (done.stdout, done.stderr, json.dumps(doc)):
        assert token not in out and SANDBOX_PASSWORD not in out


@pytest.mark.slow
def test_partner_center_is_named_with_the_signed_in_account_before_anything_is_sent(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The real service, from the sign-in record: no network is needed to refuse a prompt-less run."""
    record = signin.Record(
        signin.Credentials(
            "https://login.microsoftonline.com/contoso.example",
            "app-id",
            signin.Grant.DEVICE_CODE,
            "ann@contoso.example",
        ),
        tenant_id="11111111-2222-3333-4444-555555555555",
    )
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / signin.CONFIG_FILE).write_text(json.dumps(record.as_json()), encoding="utf-8")
    environ = {k: v for k, v in env.items() if k != "BULKREF_ACCESS_TOKEN"}
    refused = bulkref("apply", sheet(tmp_path / "deals.xlsx", 1), env=environ)
    assert refused.returncode == 2
    assert (
        f"apply writes to Partner Center ({PARTNER_CENTER_URL}) as ann@contoso.example, "
        "tenant 11111111-2222-3333-4444-555555555555 and there is no terminal"
    ) in refused.stderr
    named = destination(Target(PARTNER_CENTER_URL, env=environ), environ)
    assert (named.kind, named.account, named.credentials) == (
        "partner-center",
        "ann@contoso.example",
        "bulkref login",
    )
    # The environment's user and tenant sign in over the record's, and so are named.
    other = {**environ, "BULKREF_USERNAME": "bob@contoso.example", "BULKREF_TENANT_ID": "fabrikam.example"}
    named = destination(Target(PARTNER_CENTER_URL, env=other), other)
    assert (named.account, named.tenant) == ("bob@contoso.example", "fabrikam.example")
    with_token = {**environ, "BULKREF_ACCESS_TOKEN": "t0ken"}
    named = destination(Target(PARTNER_CENTER_URL, env=with_token), with_token)
    assert named.credentials == "BULKREF_ACCESS_TOKEN" and "t0ken" not in json.dumps(named.as_json())


# --- 2. results that keep the record --------------------------------------------------------------


def test_a_rerun_keeps_the_first_results_and_every_id(
    sandbox: Any, env: dict[str, str], tmp_path: Path
) -> None:
    path = sheet(tmp_path / "deals.xlsx", 10)
    first = invoke("apply", path, "--api-url", sandbox.url, "--yes", "--format", "json")
    assert first.exit_code == 0, first.output
    results = tmp_path / "deals.results.xlsx"
    created = results_rows(results)
    assert [r["Outcome"] for r in created] == ["created"] * 10
    # Co-sells and shared deals (examples 3, 4, 5) have a second referral.
    assert [bool(r["Linked Referral ID"]) for r in created] == [i % 5 in (2, 3, 4) for i in range(10)]

    time.sleep(1.1)  # the kept file is named after the second it was written
    again = invoke("apply", path, "--api-url", sandbox.url, "--yes", "--format", "json")
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    kept = Path(doc["previousResults"])
    assert kept.parent == tmp_path and kept.name.startswith("deals.results.20") and kept.suffix == ".xlsx"
    assert results_rows(kept) == created  # the record of the first run, as it was
    unchanged = results_rows(results)
    assert [r["Outcome"] for r in unchanged] == ["unchanged"] * 10
    for before, now in zip(created, unchanged, strict=True):
        assert {c: now[c] for c in ID_COLUMNS} == {c: before[c] for c in ID_COLUMNS}, before["Row"]

    text = invoke("apply", path, "--api-url", sandbox.url, "--yes")
    assert "The previous results file is kept as" in text.stdout
    assert len(list(tmp_path.glob("deals.results*.xlsx"))) == 3


def test_apply_of_a_saved_plan_names_the_results_after_its_sheet(
    sandbox: Any, env: dict[str, str], tmp_path: Path
) -> None:
    path = sheet(tmp_path / "deals.xlsx", 3)
    plans = tmp_path / "plans"
    plans.mkdir()
    planned = invoke("plan", path, "--api-url", sandbox.url, "--out", plans / "p.json")
    assert planned.exit_code == 0, planned.output
    done = invoke("apply", plans / "p.json", "--api-url", sandbox.url, "--yes", "--format", "json")
    assert done.exit_code == 0, done.output
    assert Path(json.loads(done.stdout)["results"]) == tmp_path / "deals.results.xlsx"
    assert not list(plans.glob("*.results.*"))
    assert [r["Outcome"] for r in results_rows(tmp_path / "deals.results.xlsx")] == ["created"] * 3


# --- 3. newer edits protected -----------------------------------------------------------------------


def _patch(url: str, doc: dict[str, Any], path: str, value: Any, **more: Any) -> None:
    """Someone else's edit in Partner Center: ``path`` (and ``more``: /name=value) replaced."""
    ops = [
        {"op": "replace", "path": p, "value": v}
        for p, v in {path: value, **{f"/{k}": v for k, v in more.items()}}.items()
    ]
    response = httpx.patch(
        f"{url}/{doc['id']}",
        json=ops,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code in (200, 204), response.text


def _without(path: Path, header: str, out: Path) -> Path:
    wb = openpyxl.load_workbook(path)
    ws = wb["Referrals"]
    column = next(c.column for c in ws[1] if c.value == header)
    ws.delete_cols(column)
    wb.save(out)
    return out


@pytest.fixture
def older_sheet(sandbox: Any, env: dict[str, str], tmp_path: Path) -> Path:
    """An export of 5 deals; then colleagues change two of them in Partner Center."""
    assert (
        invoke("apply", sheet(tmp_path / "import.xlsx", 5), "--api-url", sandbox.url, "--yes").exit_code == 0
    )
    old = tmp_path / "export.xlsx"
    assert invoke("export", "--api-url", sandbox.url, "-o", old).exit_code == 0
    docs = {d.get("externalReferenceId"): d for d in everything(sandbox.url) if d["organizationId"] != "msft"}
    _patch(sandbox.url, docs["T-00000"], "/details/dealValue", 55555)
    _patch(sandbox.url, docs["T-00001"], "/customerProfile/address/city", "Seattle")
    return old


def test_an_older_sheet_blocks_the_rows_changed_since_then_with_both_sides(
    sandbox: Any, older_sheet: Path
) -> None:
    planned = invoke("plan", older_sheet, "--api-url", sandbox.url, "--format", "json")
    assert planned.exit_code == 1, planned.output
    rows = {r["externalReferenceId"]: r for r in json.loads(planned.stdout)["rows"]}
    assert {k: r["action"] for k, r in rows.items()} == {
        "T-00000": "blocked",
        "T-00001": "blocked",
        "T-00002": "unchanged",
        "T-00003": "unchanged",
        "T-00004": "unchanged",
    }
    value, city = rows["T-00000"], rows["T-00001"]
    assert value["changes"] == [{"field": "Deal Value", "old": 55555, "new": 48000}]
    assert city["changes"] == [{"field": "City", "old": "Seattle", "new": "Berlin"}]
    assert "Deal Value is 55555 in Partner Center, 48000 in the sheet" in value["reason"]
    assert "City is Seattle in Partner Center, Berlin in the sheet" in city["reason"]
    assert "--overwrite-newer" in value["reason"] and "since this sheet was made" in value["reason"]
    since = value["changedInPartnerCenter"]
    assert since["sheet"]["eTag"] != since["partnerCenter"]["eTag"]

    text = invoke("plan", older_sheet, "--api-url", sandbox.url)
    assert "~ Deal Value: 55555 -> 48000" in text.stdout and "~ City: Seattle -> Berlin" in text.stdout

    applied = invoke("apply", older_sheet, "--api-url", sandbox.url, "--yes")
    assert applied.exit_code == 1 and "0 updated" in applied.stdout
    assert "2 of the blocked rows changed in Partner Center since the sheet was made" in applied.stdout
    docs = {d.get("externalReferenceId"): d for d in everything(sandbox.url) if d["organizationId"] != "msft"}
    assert docs["T-00000"]["details"]["dealValue"] == 55555  # the colleague's edit stands
    assert docs["T-00001"]["customerProfile"]["address"]["city"] == "Seattle"


def test_overwrite_newer_lets_the_sheet_win(sandbox: Any, older_sheet: Path, tmp_path: Path) -> None:
    planned = invoke("plan", older_sheet, "--api-url", sandbox.url, "--overwrite-newer", "--format", "json")
    assert planned.exit_code == 0, planned.output
    doc = json.loads(planned.stdout)
    assert doc["summary"]["update"] == 2 and doc["overwriteNewer"] is True
    saved = tmp_path / "p.json"
    invoke("plan", older_sheet, "--api-url", sandbox.url, "--out", saved)
    refused = invoke("apply", saved, "--api-url", sandbox.url, "--yes", "--overwrite-newer")
    assert refused.exit_code == 2 and "plan again with --overwrite-newer" in refused.stderr

    applied = invoke("apply", older_sheet, "--api-url", sandbox.url, "--yes", "--overwrite-newer")
    assert applied.exit_code == 0, applied.output
    assert "2 updated" in applied.stdout
    docs = {d.get("externalReferenceId"): d for d in everything(sandbox.url) if d["organizationId"] != "msft"}
    assert docs["T-00000"]["details"]["dealValue"] == 48000
    assert docs["T-00001"]["customerProfile"]["address"]["city"] == "Berlin"


def test_the_updated_time_decides_without_an_etag_and_neither_keeps_todays_behaviour(
    sandbox: Any, older_sheet: Path, tmp_path: Path
) -> None:
    # The export's rows come in the listing's order (by id), not by External Reference ID.
    def actions(rows: list[dict[str, Any]]) -> list[str]:
        return [r["action"] for r in sorted(rows, key=lambda r: r["externalReferenceId"])]

    by_time = _without(older_sheet, "ETag", tmp_path / "no-etag.xlsx")
    rows = json.loads(invoke("plan", by_time, "--api-url", sandbox.url, "--format", "json").stdout)["rows"]
    assert actions(rows) == ["blocked", "blocked", "unchanged", "unchanged", "unchanged"]
    plain = _without(by_time, "Updated", tmp_path / "plain.xlsx")
    rows = json.loads(invoke("plan", plain, "--api-url", sandbox.url, "--format", "json").stdout)["rows"]
    assert actions(rows) == ["update", "update", "unchanged", "unchanged", "unchanged"]
    assert all(r["changedInPartnerCenter"] is None for r in rows)


# --- 4. one deal, one row ----------------------------------------------------------------------------


def test_a_deal_shared_with_another_partner_exports_as_one_row_and_plans_back_unchanged(
    sandbox: Any, env: dict[str, str], tmp_path: Path
) -> None:
    assert (
        invoke("apply", sheet(tmp_path / "import.xlsx", 5), "--api-url", sandbox.url, "--yes").exit_code == 0
    )
    assert len(everything(sandbox.url)) == 8  # two co-sells and a shared deal: two referrals each
    out = tmp_path / "export.xlsx"
    exported = invoke("export", "--api-url", sandbox.url, "-o", out, "--format", "json")
    assert exported.exit_code == 0, exported.output
    doc = json.loads(exported.stdout)
    assert (doc["rows"], doc["referrals"], doc["folded"], doc["foldedConnected"]) == (5, 8, 3, 1)
    ws = openpyxl.load_workbook(out, read_only=True)["Referrals"]
    values = list(ws.iter_rows(values_only=True))
    header = [str(h).rstrip(" *") if h else h for h in values[0]]
    rows = [dict(zip(header, r, strict=False)) for r in values[1:] if any(v is not None for v in r)]
    assert sorted(r["External Reference ID"] for r in rows) == [f"T-{i:05d}" for i in range(5)]
    assert sum(1 for r in rows if r["Referral Name"] == EXAMPLES[4]["name"]) == 1
    text = invoke("export", "--api-url", sandbox.url, "-o", tmp_path / "again.xlsx")
    folded = "2 Microsoft referrals of co-sell deals and 1 other party's referral of shared deals"
    assert f"({folded} in their deal's row)" in text.stdout
    planned = invoke("plan", out, "--api-url", sandbox.url, "--format", "json")
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert plan["summary"]["unchanged"] == 5
    shared = next(r for r in plan["rows"] if r["externalReferenceId"] == "T-00004")
    connected = [d for d in everything(sandbox.url) if d["engagementId"] == shared["engagementId"]]
    assert shared["linkedReferralId"] in {d["id"] for d in connected} - {shared["referralId"]}


# --- 5. readable decisions and progress ------------------------------------------------------------------


def test_a_forbidden_status_move_is_said_in_plain_words(
    sandbox_as_sent: Any, env: dict[str, str], tmp_path: Path
) -> None:
    # Created New (as sent), then moved to Active by someone: not the service's own
    # acceptance on creation, which plans unchanged (tests/test_planner.py).
    sandbox = sandbox_as_sent
    path = sheet(tmp_path / "deals.xlsx", 1)
    assert invoke("apply", path, "--api-url", sandbox.url, "--yes").exit_code == 0
    doc = next(d for d in everything(sandbox.url) if d.get("externalReferenceId") == "T-00000")
    _patch(sandbox.url, doc, "/status", "Active", substatus="Accepted")
    planned = invoke("plan", path, "--api-url", sandbox.url)
    assert planned.exit_code == 1
    assert "Active can only move to Closed" in planned.stdout and "cannot go back to New" in planned.stdout


@pytest.mark.slow
def test_a_resumed_run_counts_the_rows_already_done(
    sandbox_factory: Any, env: dict[str, str], tmp_path: Path
) -> None:
    server = sandbox_factory(faults="latency=25ms")
    n = 120
    path = sheet(tmp_path / "big.xlsx", n)
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bulkref",
            "apply",
            str(path),
            "--api-url",
            server.url,
            "--yes",
            "--concurrency",
            "4",
        ],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while len(everything(server.url)) < n // 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 1, err
    stopped = results_rows(tmp_path / "big.results.xlsx")
    finished = sum(1 for r in stopped if r["Outcome"] == "created")
    assert 0 < finished < n
    second = bulkref("apply", path, "--api-url", server.url, "--yes", env=env)
    assert second.returncode == 0, second.stderr
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith(f"done: {n}/{n} rows"), second.stderr
    assert f"created {n:,}" in last  # the rows of both runs


# --- the HTML review: unchanged rows out of the way ---------------------------------------------------


CHROMIUM = shutil.which("chromium")


@pytest.fixture
def long_review(sandbox: Any, env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    """A review of 12 rows: 10 applied already (unchanged), 2 new."""
    path = sheet(tmp_path / "deals.xlsx", 10)
    assert invoke("apply", path, "--api-url", sandbox.url, "--yes").exit_code == 0
    longer = sheet(tmp_path / "longer.xlsx", 12)
    page = invoke("plan", longer, "--api-url", sandbox.url, "--format", "html")
    assert page.exit_code == 0, page.output
    html = tmp_path / "plan.html"
    html.write_text(page.stdout, encoding="utf-8")
    yield html


def _visible(dom: str) -> dict[str, int]:
    import re

    seen: dict[str, int] = {}
    for tag in re.findall(r"<tbody [^>]*data-action=[^>]*>", dom):
        action = re.search(r'data-action="(\w+)"', tag).group(1)  # type: ignore[union-attr]
        if not re.search(r"\shidden(=|\s|>)", tag):
            seen[action] = seen.get(action, 0) + 1
    return seen


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_a_long_review_starts_with_unchanged_rows_hidden_and_shows_the_target(
    long_review: Path, tmp_path: Path, sandbox: Any
) -> None:
    def dom(address: str = "") -> str:
        assert CHROMIUM is not None
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--dump-dom",
                long_review.as_uri() + address,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout

    first = dom()
    assert _visible(first) == {"create": 2}
    assert "Showing 2 of 12 rows · 10 unchanged hidden" in first
    assert ">Show 10 unchanged</button>" in first
    assert f"the sandbox at {sandbox.url}" in first
    shown = dom("#unchanged=shown")  # what the button's click writes in the address
    assert _visible(shown) == {"create": 2, "unchanged": 10} and ">Hide unchanged</button>" in shown
    assert _visible(dom("#filter=unchanged")) == {"unchanged": 10}  # the chip shows them too


def test_a_csv_export_is_protected_by_its_etag_and_by_its_updated_text(
    sandbox: Any, env: dict[str, str], tmp_path: Path
) -> None:
    import csv

    assert (
        invoke("apply", sheet(tmp_path / "import.xlsx", 2), "--api-url", sandbox.url, "--yes").exit_code == 0
    )
    old = tmp_path / "export.csv"
    assert invoke("export", "--api-url", sandbox.url, "-o", old).exit_code == 0
    docs = {d.get("externalReferenceId"): d for d in everything(sandbox.url) if d["organizationId"] != "msft"}
    _patch(sandbox.url, docs["T-00001"], "/details/dealValue", 55555)
    with old.open(encoding="utf-8-sig", newline="") as f:
        table = list(csv.DictReader(f))
    no_etag = tmp_path / "no-etag.csv"
    with no_etag.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, [k for k in table[0] if k != "ETag"], extrasaction="ignore")
        w.writeheader()
        w.writerows(table)
    for path in (old, no_etag):
        planned = json.loads(invoke("plan", path, "--api-url", sandbox.url, "--format", "json").stdout)
        # The export's rows come in the listing's order, not by External Reference ID.
        rows = sorted(planned["rows"], key=lambda r: r["externalReferenceId"])
        assert [r["action"] for r in rows] == ["unchanged", "blocked"], path.name
        assert rows[1]["changes"] == [{"field": "Deal Value", "old": 55555, "new": 125000}]
