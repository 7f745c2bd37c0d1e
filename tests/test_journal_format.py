"""The journal's layout: the plan a row at a time; a journal of the earlier layout (the
whole plan as one JSON value) is read and carried on; one that cannot be is in doubt."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import sheet

from bulkref.api.client import ReferralsClient
from bulkref.apply.journal import FORMAT, ROWS_AT_ONCE, Journal
from bulkref.apply.lanes import Lanes
from bulkref.apply.outcome import Outcome
from bulkref.apply.record import rebuild_results
from bulkref.apply.run import apply_input
from bulkref.errors import JournalError
from bulkref.plan.make import plan_file
from bulkref.plan.model import Plan

OLD_SCHEMA = """
CREATE TABLE run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE step (row INTEGER NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL, answer TEXT,
    PRIMARY KEY (row, key));
CREATE TABLE result (row INTEGER PRIMARY KEY, value TEXT NOT NULL);
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", "sandbox-test-token")
    return tmp_path


def _plan(path: Path, url: str) -> Plan:
    async def go() -> Plan:
        async with ReferralsClient(url, "sandbox-test-token") as client:
            return await plan_file(path, client, api_url=url)

    return asyncio.run(go())


def _old_journal(state: Path, plan: Plan, done: dict[int, dict[str, Any]]) -> None:
    db = sqlite3.connect(state)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO run VALUES ('plan', ?)", (json.dumps(plan.as_json()),))
    for row, answer in done.items():
        db.execute("INSERT INTO step VALUES (?, 'referral', 'done', ?)", (row, json.dumps(answer)))
    db.commit()
    db.close()


def test_the_plan_is_kept_a_row_at_a_time_and_read_back_equal(sandbox: Any, env: Path) -> None:
    plan = _plan(sheet(env / "s.xlsx", ROWS_AT_ONCE + 7), sandbox.url)
    with Journal(env / "j.sqlite") as journal:
        journal.start(plan)
        back = journal.plan()
        assert back is not None and len(back.rows) == len(plan.rows)
        assert [r.as_json() for r in back.rows] == [r.as_json() for r in plan.rows]
        assert back.summary == plan.summary and back.rows[-1] == plan.rows[-1]
    # The journal holds its file exclusively while open: read it once it is closed.
    db = sqlite3.connect(env / "j.sqlite")
    try:
        assert db.execute("SELECT count(*) FROM plan_row").fetchone()[0] == len(plan.rows)
        assert db.execute("PRAGMA user_version").fetchone()[0] == FORMAT
    finally:
        db.close()


def test_a_journal_of_the_earlier_layout_is_read_and_its_run_continued(sandbox: Any, env: Path) -> None:
    path = sheet(env / "old.xlsx", 3)
    plan = _plan(path, sandbox.url)
    state = env / "old.sqlite"
    first = plan.rows[0]
    _old_journal(state, plan, {first.row: {"id": "kept-id", "engagementId": "kept-engagement"}})
    with Journal(state) as journal:
        assert journal.in_doubt is None
        back = journal.plan()
        assert back is not None and [r.as_json() for r in back.rows] == [r.as_json() for r in plan.rows]
        assert journal.steps_of(first.row)["referral"][0] == "done"
    out, counts = rebuild_results(state, env / "old.results.csv")
    text = out.read_text(encoding="utf-8-sig")
    assert "kept-id" in text and counts["created"] == 1


def test_an_unreadable_journal_of_the_earlier_layout_is_in_doubt_and_kept(env: Path) -> None:
    state = env / "bad.sqlite"
    db = sqlite3.connect(state)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO run VALUES ('plan', '{not json')")
    db.commit()
    db.close()
    with Journal(state) as journal:
        assert journal.in_doubt and "earlier bulkref" in journal.in_doubt
        assert journal.plan() is None
    assert list(env.glob("bad.sqlite.damaged-*"))


def test_a_journal_of_a_newer_layout_is_one_sentence(env: Path) -> None:
    state = env / "new.sqlite"
    db = sqlite3.connect(state)
    db.execute(f"PRAGMA user_version={FORMAT + 1}")
    db.close()
    with pytest.raises(JournalError, match="newer bulkref"):
        Journal(state)


def test_results_are_read_from_the_journal_after_the_run(sandbox: Any, env: Path) -> None:
    run = apply_input(sheet(env / "r.xlsx", 5), api_url=sandbox.url)
    got = list(run.results)
    assert [r.row for r in got] == sorted(r.row for r in got) and len(run.results) == 5
    assert all(r.outcome is Outcome.CREATED and r.referral_id and r.engagement_id for r in got)
    assert run.summary["created"] == 5


def test_lanes_carry_concurrent_calls_and_free_a_lane_whatever_happens(sandbox: Any) -> None:
    async def go() -> tuple[list[int], int]:
        lanes = Lanes(2)
        async with httpx.AsyncClient(transport=lanes, headers={"Authorization": "Bearer t"}) as client:
            answers = await asyncio.gather(*(client.get(sandbox.url) for _ in range(12)))
            with pytest.raises(httpx.ConnectError):
                await client.get("http://127.0.0.1:9/nothing")
            return [a.status_code for a in answers], lanes.free

    statuses, free = asyncio.run(go())
    assert statuses == [200] * 12 and free == 2
