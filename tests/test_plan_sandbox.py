"""bulkref plan against the local sandbox, over real HTTP: remote state read, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import VALID_ROW, row

from bulkref.plan.make import make_plan
from bulkref.plan.model import Action
from bulkref.plan.payload import referral_doc, row_of
from bulkref.sheets.template import build_workbook, save_workbook
from bulkref.validation.check import check_file

Make = Callable[..., Path]


def post(sandbox: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(sandbox.url, json=body, headers=sandbox.headers, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def patch(sandbox: Any, doc: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    response = httpx.patch(f"{sandbox.url}/{doc['id']}", json=ops, headers=sandbox.headers, timeout=10)
    assert response.status_code in (200, 204), response.text


def writes(sandbox: Any) -> int:
    methods = sandbox.admin.stats()["methods"]
    return sum(methods.get(m, 0) for m in ("POST", "PUT", "PATCH", "DELETE"))


def typed(path: Path) -> dict[str, Any]:
    return dict(check_file(path).values.iloc[0].items())


@pytest.fixture
def api(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", sandbox.token)
    return sandbox


@pytest.fixture
def api_as_sent(sandbox_as_sent: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """For plans of rows created through the API that must read back New/Pending as sent
    (not Active/Accepted, as a documented create answers)."""
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", sandbox_as_sent.token)
    return sandbox_as_sent


def test_a_mixed_sheet_plans_the_right_action_for_each_row(api_as_sent: Any, xlsx: Make) -> None:
    api = api_as_sent
    unchanged = row(External_Reference_ID="SAME")
    changed = row(External_Reference_ID="CHANGED")
    active = row(External_Reference_ID="ACTIVE")
    closed = row(External_Reference_ID="CLOSED")
    upgrade = row(External_Reference_ID="UPGRADE")
    for r in (unchanged, changed, active, closed, upgrade):
        post(api, referral_doc(typed(xlsx([r]))))
    by_ext = {d["externalReferenceId"]: d for d in httpx.get(api.url, headers=api.headers).json()["value"]}
    patch(
        api,
        by_ext["ACTIVE"],
        [
            {"op": "replace", "path": "/status", "value": "Active"},
            {"op": "replace", "path": "/substatus", "value": "Accepted"},
        ],
    )
    patch(
        api,
        by_ext["CLOSED"],
        [
            {"op": "replace", "path": "/status", "value": "Closed"},
            {"op": "replace", "path": "/substatus", "value": "Won"},
        ],
    )
    sheet = xlsx(
        [
            unchanged,
            {**changed, "Deal Value": 75000, "City": "Tacoma"},
            active,  # says New, Pending: the referral is Active already
            {**closed, "Status": "Closed", "Substatus": "Won", "Deal Value": 1},
            {**upgrade, "Deal Type": "Co-sell", "Help Needed": "ProofOfConceptOrDemo"},
            row(External_Reference_ID="NEW-COSELL", Deal_Type="Co-sell", Help_Needed="GeneralOrOther"),
            row(
                External_Reference_ID="NEW-SHARED",
                Deal_Type="Private",
                Share_With_Microsoft_Sellers="No",
                Referral_Type="Shared",
                **{"Target 1 Type": "SolutionProfile", "Target 1 ID": "SOL-1"},
            ),
            row(External_Reference_ID="BAD", Country="Atlantis"),
        ]
    )
    before = writes(api)
    p = make_plan(sheet, api_url=api.url)
    assert writes(api) == before, "plan must never write to Partner Center"
    got = {r.external_id: r for r in p.rows}
    assert {k: str(r.action) for k, r in got.items()} == {
        "SAME": "unchanged",
        "CHANGED": "update",
        "ACTIVE": "blocked",
        "CLOSED": "update",  # planned with a note: Partner Center decides
        "UPGRADE": "update",
        "NEW-COSELL": "create",
        "NEW-SHARED": "create",
        "BAD": "invalid",
    }
    assert {(c.field, c.old, c.new) for c in got["CHANGED"].changes} == {
        ("Deal Value", 50000.0, 75000.0),
        ("City", "Seattle", "Tacoma"),
    }
    (step,) = got["CHANGED"].steps
    assert step.if_match == by_ext["CHANGED"]["eTag"]
    assert "Active can only move to Closed" in (got["ACTIVE"].reason or "")
    assert "Closed" in (got["CLOSED"].reason or "")
    assert [s.key for s in got["UPGRADE"].steps] == ["connected"]
    assert [s.depends_on for s in got["NEW-COSELL"].steps] == [None, "referral"]
    assert [s.depends_on for s in got["NEW-SHARED"].steps] == [None, "referral"]
    assert p.summary == {"create": 2, "update": 3, "unchanged": 1, "blocked": 1, "invalid": 1}


def test_the_plan_can_be_applied_by_hand_and_then_is_unchanged(api_as_sent: Any, xlsx: Make) -> None:
    """The planned bodies are what the service accepts: send them, plan again, nothing left to do."""
    api = api_as_sent
    sheet = xlsx(
        [
            row(
                External_Reference_ID="C1",
                Deal_Type="Co-sell",
                Help_Needed="GeneralOrOther",
                **{"Invite Notes": "Demo please"},
            ),
            row(External_Reference_ID="P1", Deal_Type="Private", Share_With_Microsoft_Sellers="No"),
        ]
    )
    for r in make_plan(sheet, api_url=api.url).rows:
        answers: dict[str, dict[str, Any]] = {}
        for step in r.steps:
            body = json.loads(json.dumps(step.body))
            for ptr, source in step.fill.items():
                node = body
                *parents, leaf = ptr.strip("/").split("/")
                for part in parents:
                    node = node[part]
                node[leaf] = answers[step.depends_on or ""][source]
            answers[step.key] = post(api, body)
    again = make_plan(sheet, api_url=api.url)
    assert [r.action for r in again.rows] == [Action.UNCHANGED, Action.UNCHANGED], [
        (r.external_id, r.reason, r.changes) for r in again.rows
    ]


def test_exported_referrals_plan_back_as_unchanged(api: Any, tmp_path: Path) -> None:
    from bulkref.sheets.examples import EXAMPLES

    source = tmp_path / "examples.xlsx"
    save_workbook(build_workbook(EXAMPLES), source)
    values = check_file(source).values
    for excel_row in values.index:
        v = dict(values.loc[excel_row].items())
        created = post(api, referral_doc(v))
        if v["deal_type"] == "Co-sell":
            post(
                api,
                {
                    "engagementId": created["engagementId"],
                    "organizationId": "msft",
                    "type": "Shared",
                    "name": v["name"],
                    "customerProfile": created["customerProfile"],
                    "consent": created["consent"],
                    "details": created["details"],
                    "inviteContext": {"notes": v["invite_notes"], "assistanceRequestCode": v["help_needed"]},
                },
            )
    everything = httpx.get(api.url, headers=api.headers, params={"$top": 1000}).json()["value"]
    engagements: dict[str, list[dict[str, Any]]] = {}
    for d in everything:
        engagements.setdefault(d["engagementId"], []).append(d)
    exported = tmp_path / "exported.xlsx"
    rows = [row_of(d, engagements[d["engagementId"]]) for d in everything if d["organizationId"] != "msft"]
    save_workbook(build_workbook([{k: x for k, x in r.items() if x is not None} for r in rows]), exported)
    p = make_plan(exported, api_url=api.url)
    assert [str(r.action) for r in p.rows] == ["unchanged"] * len(EXAMPLES), [
        (r.external_id, r.reason, r.changes) for r in p.rows
    ]


def run(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkref", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.slow
def test_plan_command_with_the_embedded_sandbox(tmp_path: Path, xlsx: Make) -> None:
    import os

    env = {**os.environ, "BULKREF_HOME": str(tmp_path / "home")}
    sheet = xlsx(
        [VALID_ROW, row(External_Reference_ID="CRM-2", Deal_Type="Co-sell", Help_Needed="GeneralOrOther")]
    )
    text = run("plan", sheet, "--sandbox", env=env)
    assert text.returncode == 0, text.stderr
    assert "Plan: 2 to create" in text.stdout and "\x1b[" not in text.stdout
    out = tmp_path / "plan.json"
    doc = run("plan", sheet, "--sandbox", "--format", "json", "--out", out, env=env)
    assert doc.returncode == 0, doc.stderr
    printed = json.loads(doc.stdout)
    assert printed["summary"] == {"create": 2, "update": 0, "unchanged": 0, "blocked": 0, "invalid": 0}
    assert [len(r["steps"]) for r in printed["rows"]] == [1, 2]
    saved = json.loads(out.read_text())
    assert saved["fingerprint"] and saved["rows"] == printed["rows"]
    html = run("plan", sheet, "--sandbox", "--format", "html", env=env)
    assert html.returncode == 0 and html.stdout.lstrip().lower().startswith("<!doctype html")
    bad = xlsx([row(Currency="Euros")])
    assert run("plan", bad, "--sandbox", env=env).returncode == 1
    both = run("plan", sheet, "--sandbox", "--api-url", "http://127.0.0.1:9", env=env)
    assert both.returncode == 2 and "Traceback" not in both.stderr


@pytest.mark.slow
def test_plan_against_a_dead_server_is_exit_2_in_one_sentence(tmp_path: Path, xlsx: Make) -> None:
    import os

    env = {**os.environ, "BULKREF_ACCESS_TOKEN": "t", "BULKREF_HOME": str(tmp_path)}
    done = run(
        "plan", xlsx([VALID_ROW]), "--api-url", "http://127.0.0.1:9/v1.0/engagements/referrals", env=env
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
