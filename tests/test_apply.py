"""bulkref apply against the local sandbox over real HTTP: every row exactly once, every row a result."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from helpers import FAULTS, assert_exactly_once, everything, sheet

from bulkref.api.client import ReferralsClient, RetryPolicy
from bulkref.apply.executor import Executor
from bulkref.apply.journal import Journal
from bulkref.apply.outcome import Outcome
from bulkref.apply.run import apply_input
from bulkref.plan.make import plan_file


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", "sandbox-test-token")
    return tmp_path


# as-sent: the re-run below is about a sheet that still says New (which a documented
# create turns into Active/Accepted), not about what a create answers.
def test_the_examples_are_created_once_with_every_id_in_the_results(sandbox_as_sent: Any, env: Path) -> None:
    sandbox = sandbox_as_sent
    path = sheet(env / "deals.xlsx", 5)
    run = apply_input(path, api_url=sandbox.url)
    assert [r.outcome for r in run.results] == [Outcome.CREATED] * 5
    assert run.results_path == env / "deals.results.xlsx" and run.results_path.exists()
    ws = openpyxl.load_workbook(run.results_path)["Results"]
    header = [c.value for c in ws[1]]
    rows = [dict(zip(header, (c.value for c in r), strict=True)) for r in ws.iter_rows(min_row=2)]
    assert [r["Row"] for r in rows] == [2, 3, 4, 5, 6]
    assert all(r["Referral ID"] and r["Engagement ID"] and r["Request ID"] for r in rows)
    assert [bool(r["Linked Referral ID"]) for r in rows] == [False, False, True, True, True]
    assert {r["HTTP Status"] for r in rows} == {201}
    assert_exactly_once(sandbox.url, sandbox.token, 5)
    again = apply_input(path, api_url=sandbox.url)  # the same file again: nothing to do
    assert [r.outcome for r in again.results] == [Outcome.UNCHANGED] * 5
    assert_exactly_once(sandbox.url, sandbox.token, 5)


def test_faults_never_duplicate_and_never_lose_a_row(sandbox_factory: Any, env: Path) -> None:
    server = sandbox_factory(faults=FAULTS, seed=11)
    n = 150
    # The sandbox shows a write in its listings at once: a short consistency window will do.
    run = apply_input(sheet(env / "many.xlsx", n), api_url=server.url, concurrency=8, consistency_window=0.5)
    assert len(run.results) == n
    assert Counter(r.outcome for r in run.results) == {Outcome.CREATED: n}, [
        (r.row, r.outcome, r.error_message) for r in run.results if r.outcome is not Outcome.CREATED
    ][:5]
    stats = httpx.get(server.root + "/_sandbox/stats").json()
    assert stats["faults"]["commit-then-500"] > 0 and stats["faults"]["commit-then-reset"] > 0
    httpx.post(server.root + "/_sandbox/faults", json={"faults": ""})  # count on a quiet sandbox
    assert_exactly_once(server.url, "t", n)


def test_a_stopped_chain_is_partial_and_a_rerun_sends_only_step_two(sandbox: Any, env: Path) -> None:
    path = sheet(env / "cosell.xlsx", 3)  # row 4 is a co-sell
    journal = Journal(env / "j.sqlite")

    async def go(break_step_two: bool) -> dict[int, Any]:
        async with ReferralsClient(sandbox.url, sandbox.token, retry=RetryPolicy(base=0.01)) as client:
            plan = journal.plan()
            if plan is None:
                plan = await plan_file(path, client, api_url=sandbox.url)
                journal.start(plan)
            if break_step_two:  # the service refuses step 2 this time
                row = next(r for r in plan.rows if r.row == 4)
                bad = row.steps[1].body | {"inviteContext": {"assistanceRequestCode": "Nonsense"}}
                steps = (row.steps[0], row.steps[1].__class__(**{**row.steps[1].__dict__, "body": bad}))
                plan = plan.__class__(
                    **{
                        **plan.__dict__,
                        "rows": tuple(
                            r if r.row != 4 else r.__class__(**{**r.__dict__, "steps": steps})
                            for r in plan.rows
                        ),
                    }
                )
            return await Executor(plan, client, journal).run()

    first = asyncio.run(go(break_step_two=True))
    assert first[4].outcome is Outcome.PARTIAL and first[4].referral_id and first[4].http_status == 400
    posts = httpx.get(sandbox.root + "/_sandbox/stats").json()["methods"]["POST"]
    second = asyncio.run(go(break_step_two=False))
    assert second[4].outcome is Outcome.CREATED and second[4].linked_referral_id
    assert second[4].referral_id == first[4].referral_id
    assert httpx.get(sandbox.root + "/_sandbox/stats").json()["methods"]["POST"] == posts + 1
    journal.close()


# as-sent: the race is about eTags; a documented create's Active/Accepted would block the edit.
def test_a_stale_etag_is_rediffed_and_a_real_conflict_reported(sandbox_as_sent: Any, env: Path) -> None:
    sandbox = sandbox_as_sent
    path = sheet(env / "u.xlsx", 2)
    apply_input(path, api_url=sandbox.url)
    wb = openpyxl.load_workbook(path)
    ws = wb["Referrals"]
    header = {c.value: c.column for c in ws[1]}
    ws.cell(2, header["Deal Value *"]).value = 1111
    ws.cell(3, header["Deal Value *"]).value = 2222
    edited = env / "u2.xlsx"
    wb.save(edited)

    async def plan_then_race() -> dict[int, Any]:
        async with ReferralsClient(sandbox.url, sandbox.token) as client:
            plan = await plan_file(edited, client, api_url=sandbox.url)
            docs = {d["externalReferenceId"]: d for d in everything(sandbox.url, sandbox.token)}
            h = {"Authorization": f"Bearer {sandbox.token}"}
            # Someone edits row 2's notes (not ours) and row 3's deal value (ours) meanwhile.
            httpx.patch(
                f"{sandbox.url}/{docs['R-00000']['id']}",
                headers=h,
                json=[{"op": "replace", "path": "/details/notes", "value": "edited elsewhere"}],
            )
            httpx.patch(
                f"{sandbox.url}/{docs['R-00001']['id']}",
                headers=h,
                json=[{"op": "replace", "path": "/details/dealValue", "value": 999}],
            )
            with Journal(env / "race.sqlite") as journal:
                journal.start(plan)
                return await Executor(plan, client, journal).run()

    done = asyncio.run(plan_then_race())
    assert done[2].outcome is Outcome.UPDATED
    assert done[3].outcome is Outcome.CONFLICT and "dealValue" in (done[3].error_message or "")
    values = {d["externalReferenceId"]: d["details"] for d in everything(sandbox.url, sandbox.token)}
    assert values["R-00000"]["dealValue"] == 1111 and values["R-00000"]["notes"] == "edited elsewhere"
    assert values["R-00001"]["dealValue"] == 999  # not overwritten


def _cli(*args: str | Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bulkref", *map(str, args)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def _count(url: str, token: str) -> int:
    return len(everything(url, token))


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_killed_or_interrupted_halfway_then_rerun_gives_the_same(
    sandbox_factory: Any, env: Path, how: signal.Signals
) -> None:
    server = sandbox_factory(faults="latency=25ms")
    n = 120
    path = sheet(env / "big.xlsx", n)
    environ = {**os.environ, "BULKREF_HOME": str(env / "home"), "BULKREF_ACCESS_TOKEN": "t"}
    first = _cli("apply", path, "--api-url", server.url, "--yes", "--concurrency", "4", env=environ)
    deadline = time.monotonic() + 60
    while _count(server.url, "t") < n // 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(how)
    _, err = first.communicate(timeout=60)
    if how is signal.SIGINT:
        assert first.returncode == 1, err
        assert "Traceback" not in err
        results = openpyxl.load_workbook(env / "big.results.xlsx")["Results"]
        outcomes = Counter(r[3].value for r in results.iter_rows(min_row=2))
        assert sum(outcomes.values()) == n and outcomes["skipped"] > 0 and outcomes["created"] > 0
    assert _count(server.url, "t") < n * 8 // 5  # stopped before the end
    second = _cli("apply", path, "--api-url", server.url, "--yes", "--format", "json", env=environ)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    doc = json.loads(out)
    assert doc["summary"]["created"] + doc["summary"]["unchanged"] == n and doc["summary"]["failed"] == 0
    assert doc["results"].endswith("big.results.xlsx")
    assert_exactly_once(server.url, "t", n)


@pytest.mark.slow
def test_apply_command_asks_or_needs_yes_and_keeps_secrets_out(sandbox: Any, env: Path) -> None:
    environ = {**os.environ, "BULKREF_HOME": str(env / "home"), "BULKREF_ACCESS_TOKEN": "s3cr3t-t0ken"}
    path = sheet(env / "s.xlsx", 2)
    no = _cli("apply", path, "--api-url", sandbox.url, env=environ)
    _, err = no.communicate(timeout=60)
    assert no.returncode == 2 and "--yes" in err and "Traceback" not in err
    yes = _cli("apply", path, "--api-url", sandbox.url, "--yes", env=environ)
    out, err = yes.communicate(timeout=60)
    assert yes.returncode == 0, err
    assert f"Results: {env / 's.results.xlsx'}" in out
    for f in [*(env / "home").rglob("*"), env / "s.results.xlsx"]:
        if f.is_file():
            assert b"s3cr3t-t0ken" not in f.read_bytes(), f
    assert "s3cr3t-t0ken" not in out + err
