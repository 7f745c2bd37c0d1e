"""Creates in doubt: no duplicate when Partner Center neither replays a request id nor lists a
new referral promptly (neither is documented: shared/docs/referrals-api.md, last section).

Against the sandbox's documented profile with request-id replay off, listings that lag,
and answers lost after the write was stored."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from helpers import HOSTILE_TOKEN as TOKEN
from helpers import Hostile, assert_exactly_once, everything, sheet

from bulkref.api.client import RetryPolicy
from bulkref.apply.executor import _rediff
from bulkref.apply.outcome import Outcome
from bulkref.apply.run import apply_input
from bulkref.plan.doubts import WINDOW_FLOOR, Lag, Window, ledger_of

LOST = "commit-then-reset=0.3,commit-then-500=0.1"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", TOKEN)
    return tmp_path


def _settle_listing(sandbox: Any, lag: float) -> None:
    """Wait out the listing's lag, then count on a quiet sandbox."""
    httpx.post(sandbox.root + "/_sandbox/faults", json={"faults": ""})
    time.sleep(lag + 0.5)


def test_lost_answers_and_a_lagging_listing_store_every_referral_once(
    sandbox_factory: Any, env: Path
) -> None:
    """The issue's case, smaller: 30 rows (a third co-sell), 30% of creates stored then their
    connection reset, 10% stored then 500, listings 4 s behind, no replay of MS-RequestId."""
    server = sandbox_factory(profile="documented", replay_request_ids=False, list_lag=4, faults=LOST, seed=3)
    n = 30
    run = apply_input(sheet(env / "lost.xlsx", n), api_url=server.url, concurrency=8, wait_in_doubt=60)
    outcomes = Counter(r.outcome for r in run.results)
    assert outcomes == {Outcome.CREATED: n}, [
        (r.row, r.outcome, r.error_message) for r in run.results if r.outcome is not Outcome.CREATED
    ][:5]
    stats = server.admin.stats()
    assert stats["faults"]["commit-then-reset"] > 0 and stats["faults"]["commit-then-500"] > 0
    assert stats["replayed"] == 0
    # The lag was measured on the run's own creates, and the window is above it.
    assert run.consistency["measured"] is not None and run.consistency["measured"] >= 4
    assert run.consistency["window"] > run.consistency["measured"]
    _settle_listing(server, 4)
    assert_exactly_once(server.url, server.token, n)
    # Every create went out once: a lost answer was found, never sent again.
    assert stats["methods"]["POST"] == len(everything(server.url, server.token))


def _cli(*args: str | Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BULKREF_HOME": str(home / "home"), "BULKREF_ACCESS_TOKEN": "t"}
    return subprocess.run(
        [sys.executable, "-m", "bulkref", *map(str, args)],
        env=env,
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=150,
    )


@pytest.mark.slow
def test_rows_still_in_doubt_end_the_run_with_exit_3_and_a_fresh_journal_looks_them_up_first(
    sandbox_factory: Any, env: Path
) -> None:
    server = sandbox_factory(
        profile="documented", replay_request_ids=False, list_lag=15, faults="commit-then-reset=1", seed=1
    )
    path = sheet(env / "doubt.xlsx", 4)  # rows 4 and 5 (R-00002, R-00003) are co-sells
    first = _cli(
        "apply", path, "--api-url", server.url, "--yes", "--wait-in-doubt", "0", "--format", "json",
        "--state", env / "one.sqlite", home=env,
    )  # fmt: skip
    assert first.returncode == 3, first.stderr
    report = json.loads(first.stdout)
    assert report["summary"]["in_doubt"] == 4 and report["summary"]["created"] == 0
    ws = openpyxl.load_workbook(report["results"])["Results"]
    header = [c.value for c in ws[1]]
    rows = [dict(zip(header, (c.value for c in r), strict=True)) for r in ws.iter_rows(min_row=2)]
    assert {r["Outcome"] for r in rows} == {"in_doubt"}
    assert all("--resend-in-doubt" in r["Error Message"] and "UTC" in r["Error Message"] for r in rows)
    # Kept for the target, whatever journal the next run uses.
    doubts = ledger_of(server.url, env / "home").doubts()
    assert set(doubts) == {f"ext:r-0000{i}" for i in range(4)}
    assert all(d.request_ids and d.failed_at >= d.sent_at for d in doubts.values())
    assert server.admin.stats()["methods"]["POST"] == 4  # each create once, each answer lost
    # A plan says so, and doctor too.
    planned = _cli("plan", path, "--api-url", server.url, "--format", "json", home=env)
    in_doubt = json.loads(planned.stdout)["inDoubt"]
    assert sorted(d["externalId"] for d in in_doubt) == [f"R-0000{i}" for i in range(4)]
    # No create was ever shown (all answers lost): how long the listing lags is not known yet.
    assert all(d["sentAt"] and d["decidableAfter"] is None for d in in_doubt)
    doctor = _cli("doctor", "--api-url", server.url, "--format", "json", home=env)
    assert json.loads(doctor.stdout)["consistency"]["inDoubt"] == 4
    # The next run, with another journal: looked up first.
    server.admin.set_faults("")
    second = _cli(
        "apply", path, "--api-url", server.url, "--yes", "--format", "json",
        "--state", env / "two.sqlite", home=env,
    )  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    summary = json.loads(second.stdout)["summary"]
    # Planned as new (the listing lags 15 s), each looked up first and found: never sent again.
    assert summary["failed"] == summary["in_doubt"] == 0 and summary["created"] == 4
    assert ledger_of(server.url, env / "home").doubts() == {}
    time.sleep(15.5)
    assert_exactly_once(server.url, server.token, 4)
    # The four creates of the first run were found; only the co-sells' second steps were sent.
    assert server.admin.stats()["methods"]["POST"] == 4 + 2
    assert len(everything(server.url, server.token)) == 6


def test_a_create_shown_absent_after_the_window_is_sent_again_with_no_wall_clock_wait(
    hostile: Hostile,
    env: Path,
) -> None:
    """A create whose connection drops before anything is stored: it is in doubt until a
    listing read a window after the loss leaves it out, then sent again with the same
    MS-RequestId. The clock and the waits are injected: the 10 s window passes in a few
    passes of the watcher, not in 10 s of the wall clock."""
    now = [time.time()]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    def lose_the_first(state: Hostile, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        if body["externalReferenceId"] == "R-00000" and len(state.posts) == 1:
            return 0, None  # nothing stored, the connection dropped
        return 201, state.store(body)

    hostile.on_post = lose_the_first
    started = time.monotonic()
    run = apply_input(
        sheet(env / "absent.xlsx", 2),  # row 3's create, confirmed and listed, measures the lag
        api_url=hostile.url,
        concurrency=1,
        clock=lambda: now[0],
        retry=RetryPolicy(sleep=sleep),
    )
    assert [r.outcome for r in run.results] == [Outcome.CREATED] * 2, [r.error_message for r in run.results]
    # The window (10 s at least) passed on the injected clock, ahead of the wall clock by about
    # that much: the decision followed the clock the run was given, not the machine's.
    assert now[0] - time.time() >= WINDOW_FLOOR - 1
    assert time.monotonic() - started < 60  # and no wait of the wall clock
    ids = [h["ms-requestid"] for h in hostile.posts if h["ms-requestid"] == hostile.posts[0]["ms-requestid"]]
    assert len(hostile.posts) == 3 and len(ids) == 2 and len(hostile.referrals) == 2


def test_with_no_lag_ever_measured_nothing_is_told_absent(hostile: Hostile, env: Path) -> None:
    """A listing that lags longer than any guess: with no create shown yet, a floor is a guess,
    so a lost create stays in doubt (the run ends exit 3) instead of being sent again."""
    now = [time.time()]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    hostile.on_post = lambda state, body, headers: (0, None)  # lost, nothing stored
    run = apply_input(
        sheet(env / "unknown.xlsx", 1),
        api_url=hostile.url,
        wait_in_doubt=600,
        clock=lambda: now[0],
        retry=RetryPolicy(sleep=sleep),
    )
    assert [r.outcome for r in run.results] == [Outcome.IN_DOUBT]
    assert "not known" in (run.results[0].error_message or "")
    assert len(hostile.posts) == 1 and run.consistency["window"] is None


def test_resend_in_doubt_sends_what_a_person_checked(hostile: Hostile, env: Path) -> None:
    hostile.on_post = lambda state, body, headers: (0, None)  # every answer lost, nothing stored
    path = sheet(env / "resend.xlsx", 1)
    run = apply_input(path, api_url=hostile.url, wait_in_doubt=0)
    assert [r.outcome for r in run.results] == [Outcome.IN_DOUBT]
    assert len(hostile.posts) == 1  # never sent twice on a guess
    assert set(ledger_of(hostile.url, env / "home").doubts()) == {"ext:r-00000"}
    hostile.on_post = None
    again = apply_input(path, api_url=hostile.url, resend_in_doubt=True, wait_in_doubt=0)
    assert [r.outcome for r in again.results] == [Outcome.CREATED]
    assert len(hostile.referrals) == 1
    assert ledger_of(hostile.url, env / "home").doubts() == {}


def test_an_update_whose_answer_was_lost_is_read_back_not_sent_again(sandbox_factory: Any, env: Path) -> None:
    server = sandbox_factory(create_status="as-sent")
    path = sheet(env / "u.xlsx", 3, prefix="U")
    apply_input(path, api_url=server.url)
    wb = openpyxl.load_workbook(path)
    ws = wb["Referrals"]
    col = {c.value: c.column for c in ws[1]}["Deal Value *"]
    for r in range(2, 5):
        ws.cell(r, col).value = 4321
    wb.save(path)
    server.admin.set_faults("commit-then-reset=1")  # each PATCH is stored, its answer lost
    before = server.admin.stats()["methods"].get("PATCH", 0)
    run = apply_input(path, api_url=server.url)
    assert [r.outcome for r in run.results] == [Outcome.UPDATED] * 3, [r.error_message for r in run.results]
    assert server.admin.stats()["methods"]["PATCH"] - before == 3  # one each: read back, not resent
    server.admin.set_faults("")
    partner = [d for d in everything(server.url, server.token) if d["organizationId"] != "msft"]
    assert {d["details"]["dealValue"] for d in partner} == {4321}


def test_an_append_already_in_the_list_is_not_sent_again() -> None:
    doc = {"id": "a", "team": [{"email": "x@example.com"}]}
    ops = [
        {"op": "add", "path": "/team/-", "value": {"email": "x@example.com"}},
        {"op": "add", "path": "/team/-", "value": {"email": "y@example.com"}},
    ]
    assert _rediff(doc, ops, {}) == [ops[1]]


def test_the_window_is_learned_never_under_the_floor_and_unseen_creates_hold_it_open() -> None:
    window = Window()
    assert window.seconds() == math.inf  # nothing measured: not known, so nothing is told absent
    window.observe(0)
    assert window.seconds() == WINDOW_FLOOR
    window.observe(20)
    assert window.seconds() == 1.5 * 20 + 2
    # A create not shown after 60 s: the lag is at least that, whatever was measured before.
    assert window.seconds([60]) == 1.5 * 60 + 2
    assert Window(override=3).seconds([60]) == 3  # --consistency-window, as given
    remembered = Window(remembered=[Lag(at=0, seconds=30, seen=True)])
    assert remembered.seconds() == 1.5 * 30 + 2
