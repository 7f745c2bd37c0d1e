"""Apply never duplicates, whatever journal, plan copy or file name a person uses, and keeps
its record safe: against the local sandbox over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from helpers import assert_exactly_once, everything, sheet

from bulkref.api.client import ReferralsClient
from bulkref.apply.executor import Executor
from bulkref.apply.journal import Journal
from bulkref.apply.outcome import Outcome
from bulkref.apply.record import STALE_TMP_SECONDS, rebuild_results
from bulkref.apply.run import apply_input
from bulkref.errors import BulkrefError, JournalError
from bulkref.plan.make import plan_file

N = 10  # two of each example: partner-led, co-sell (two referrals) and shared chains


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", "sandbox-test-token")
    return tmp_path


def environ(env: Path) -> dict[str, str]:
    return {**os.environ, "BULKREF_HOME": str(env / "home"), "BULKREF_ACCESS_TOKEN": "t"}


def cli(*args: str | Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bulkref", *map(str, args)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def posts(root: str) -> int:
    return int(httpx.get(root + "/_sandbox/stats").json()["methods"].get("POST", 0))


def save_plan(path: Path, url: str, out: Path) -> Path:
    async def go() -> None:
        async with ReferralsClient(url, "t") as client:
            plan = await plan_file(path, client, api_url=url)
        out.write_text(json.dumps(plan.as_json()), encoding="utf-8")

    asyncio.run(go())
    return out


# -- 1. the remote is the truth -----------------------------------------------------------------


def test_a_copied_plan_a_fresh_state_and_the_same_plan_twice_create_nothing_again(
    sandbox: Any, env: Path
) -> None:
    path = sheet(env / "deals.xlsx", N)
    plan = save_plan(path, sandbox.url, env / "plan.json")
    copy = env / "reviewed-plan.json"
    shutil.copy(plan, copy)
    first = apply_input(plan, api_url=sandbox.url)
    assert Counter(r.outcome for r in first.results) == {Outcome.CREATED: N}
    created = posts(sandbox.root)
    # The copy has its own journal: it knows nothing, Partner Center does.
    second = apply_input(copy, api_url=sandbox.url)
    assert Counter(r.outcome for r in second.results) == {Outcome.ADOPTED: N}
    # Read now: a later run keeps this file under a dated name and takes the plain one.
    ws = openpyxl.load_workbook(second.results_path)["Results"]
    assert {r[3].value for r in ws.iter_rows(min_row=2)} == {"adopted"}
    assert second.summary["unchanged"] == N and second.summary["adopted"] == N
    by_row = {r.row: r for r in first.results}
    for r in second.results:  # adopted with the ids of what the first run created
        assert (r.referral_id, r.engagement_id, r.linked_referral_id) == (
            by_row[r.row].referral_id,
            by_row[r.row].engagement_id,
            by_row[r.row].linked_referral_id,
        )
    third = apply_input(plan, api_url=sandbox.url, state=env / "fresh.sqlite")  # a fresh journal
    fourth = apply_input(plan, api_url=sandbox.url)  # the same plan, the same journal
    assert {r.outcome for r in third.results} == {Outcome.ADOPTED}
    assert {r.outcome for r in fourth.results} <= {Outcome.ADOPTED, Outcome.CREATED}
    assert posts(sandbox.root) == created
    assert_exactly_once(sandbox.url, sandbox.token, N)


def test_a_renamed_sheet_and_a_fresh_state_plan_what_is_there(sandbox: Any, env: Path) -> None:
    path = sheet(env / "deals.xlsx", N)
    apply_input(path, api_url=sandbox.url)
    created = posts(sandbox.root)
    renamed = env / "deals (copy).xlsx"
    shutil.copy(path, renamed)
    again = apply_input(renamed, api_url=sandbox.url, state=env / "other.sqlite")
    assert {r.outcome for r in again.results} == {Outcome.UNCHANGED}
    assert posts(sandbox.root) == created
    assert_exactly_once(sandbox.url, sandbox.token, N)


def test_half_a_chain_found_in_partner_center_is_adopted_and_only_step_two_sent(
    sandbox: Any, env: Path
) -> None:
    path = sheet(env / "cosell.xlsx", 5)
    plan = save_plan(path, sandbox.url, env / "plan.json")
    doc = json.loads(plan.read_text())
    cosell = next(r for r in doc["rows"] if len(r["steps"]) == 2)
    # Someone made step 1 of that co-sell by hand since the plan was made.
    made = httpx.post(sandbox.url, json=cosell["steps"][0]["body"], headers=sandbox.headers).json()
    before = posts(sandbox.root)
    run = apply_input(plan, api_url=sandbox.url)
    row = next(r for r in run.results if r.row == cosell["row"])
    assert row.outcome is Outcome.CREATED and row.referral_id == made["id"] and row.linked_referral_id
    # The other rows: two of one step, two of two; this row: step 2 only.
    assert posts(sandbox.root) == before + 2 + 2 * 2 + 1
    assert_exactly_once(sandbox.url, sandbox.token, 5)


@pytest.mark.slow
def test_two_applies_at_the_same_time_create_each_referral_once(sandbox: Any, env: Path) -> None:
    path = sheet(env / "deals.xlsx", 40)
    plan = save_plan(path, sandbox.url, env / "plan.json")
    copy = env / "copy.json"
    shutil.copy(plan, copy)
    sheet_copy = env / "deals-2.xlsx"
    shutil.copy(path, sheet_copy)
    e = environ(env)
    runs = [
        cli("apply", f, "--api-url", sandbox.url, "--yes", "--format", "json", env=e)
        for f in (plan, copy, sheet_copy)
    ]
    outs = [p.communicate(timeout=120) for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0], [err for _, err in outs]
    summaries = [json.loads(out)["summary"] for out, _ in outs]
    assert sum(s["created"] for s in summaries) == 40
    assert all(s["created"] + s["unchanged"] == 40 for s in summaries)
    assert_exactly_once(sandbox.url, sandbox.token, 40)


# -- 2. a damaged journal is never trusted -------------------------------------------------------


def _stopped_run(sandbox: Any, env: Path, n: int) -> tuple[Path, Path]:
    """A saved plan whose run created every referral, and a journal that forgot all of it."""
    path = sheet(env / "deals.xlsx", n)
    plan = save_plan(path, sandbox.url, env / "plan.json")
    state = env / "journal.sqlite"
    apply_input(plan, api_url=sandbox.url, state=state)
    return plan, state


def test_a_journal_that_is_not_a_database_is_set_aside_and_nothing_duplicated(
    sandbox: Any, env: Path
) -> None:
    plan, state = _stopped_run(sandbox, env, N)
    created = posts(sandbox.root)
    state.write_bytes(b"garbage, not SQLite" * 100)
    notes: list[str] = []
    run = apply_input(plan, api_url=sandbox.url, state=state, on_note=notes.append)
    assert {r.outcome for r in run.results} == {Outcome.ADOPTED}
    assert posts(sandbox.root) == created
    assert any("in doubt" in n and str(state) in n for n in notes), notes
    assert list(env.glob("journal.sqlite.damaged-*")), "the damaged journal is kept for a post-mortem"


def test_garbage_in_the_write_ahead_log_makes_the_journal_in_doubt(env: Path) -> None:
    state = env / "j.sqlite"
    j = Journal(state)
    for i in range(50):
        j.sent(i, "referral")
    wal = Path(f"{state}-wal")
    # Leave the log as a killed run would (no checkpoint), with garbage appended.
    copy = env / "copy-wal"
    shutil.copy(wal, copy)
    j.close()
    shutil.copy(copy, wal)
    with wal.open("ab") as f:
        f.write(os.urandom(1000))
    again = Journal(state)
    assert again.in_doubt and "write-ahead log" in again.in_doubt and str(state) in again.in_doubt
    assert again.steps() == {}  # a new journal: nothing it says is trusted
    again.close()


def test_a_full_disk_is_one_sentence_naming_the_journal(sandbox: Any, env: Path) -> None:
    path = sheet(env / "deals.xlsx", 30)
    opened: list[sqlite3.Connection] = []
    connect = sqlite3.connect

    def keep(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    # The journal's own connection, kept as it opens: a page limit is per connection.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", keep)
        journal = Journal(env / "full.sqlite")
    (db,) = opened

    async def go() -> None:
        async with ReferralsClient(sandbox.url, "t") as client:
            plan = await plan_file(path, client, api_url=sandbox.url)
            journal.start(plan)
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own "disk is full"
            await Executor(plan, client, journal, concurrency=4).run()

    with pytest.raises(JournalError) as caught:
        asyncio.run(go())
    message = str(caught.value)
    assert str(env / "full.sqlite") in message and "disk is full" in message and "--state" in message
    journal.close()


@pytest.mark.slow
def test_a_journal_that_cannot_be_written_is_exit_2_with_its_path_before_any_call(
    sandbox: Any, env: Path
) -> None:
    (env / "file").write_text("x")
    bad = env / "file" / "j.sqlite"  # its folder is a file: it can be neither created nor replaced
    path = sheet(env / "d.xlsx", 2)
    p = cli("apply", path, "--api-url", sandbox.url, "--yes", "--state", bad, env=environ(env))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 2, err
    assert "Traceback" not in err and "unexpected error" not in err and "client has been closed" not in err
    assert f"The journal {bad}" in err and "--state" in err
    assert posts(sandbox.root) == 0


# -- 3. the record is safe before anything is written ----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("results", ["out.txt", "missing/out.xlsx", "folder-is-a-file/out.csv"])
def test_a_bad_results_path_is_refused_before_any_call(sandbox: Any, env: Path, results: str) -> None:
    (env / "folder-is-a-file").write_text("x")
    path = sheet(env / "deals.xlsx", 3)
    p = cli("apply", path, "--api-url", sandbox.url, "--yes", "--results", env / results, env=environ(env))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "Traceback" not in err and "results file" in err, err
    assert httpx.get(sandbox.root + "/_sandbox/stats").json()["requestsTotal"] == 0


@pytest.mark.slow
def test_results_are_rebuilt_from_the_journal(sandbox: Any, env: Path) -> None:
    path = sheet(env / "deals.xlsx", 5)
    run = apply_input(path, api_url=sandbox.url)
    run.results_path.unlink()  # lost, or never written
    out, counts = rebuild_results(run.journal_path)
    assert out == run.results_path and counts["created"] == 5
    ws = openpyxl.load_workbook(out)["Results"]
    ids = {r[1].value: r[4].value for r in ws.iter_rows(min_row=2)}
    assert ids == {r.external_id: r.referral_id for r in run.results}
    p = cli(
        "results",
        "--state",
        run.journal_path,
        "--out",
        env / "again.csv",
        "--format",
        "json",
        env=environ(env),
    )
    stdout, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert json.loads(stdout)["summary"]["created"] == 5 and (env / "again.csv").exists()
    p = cli("results", "--state", env / "nope.sqlite", env=environ(env))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "nope.sqlite" in err and "Traceback" not in err


def test_a_failed_results_write_keeps_the_previous_file_and_leaves_no_temporary_files(
    sandbox: Any, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulkref.apply import results as results_module

    path = sheet(env / "deals.xlsx", 3)
    run = apply_input(path, api_url=sandbox.url)
    before = run.results_path.read_bytes()
    stale = env / f".{run.results_path.name}.deadbeef.tmp"  # a kill -9 left it
    stale.write_bytes(b"")
    old = time.time() - STALE_TMP_SECONDS - 5
    os.utime(stale, (old, old))

    def broken(*args: Any, **kw: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(results_module, "_write_xlsx", broken)
    with pytest.raises(BulkrefError, match="No space left"):
        apply_input(path, api_url=sandbox.url)
    assert run.results_path.read_bytes() == before
    assert list(env.glob("*.tmp")) == [] and list(env.glob(".*.tmp")) == []


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_with_results_written(sandbox_factory: Any, env: Path) -> None:
    server = sandbox_factory(faults="latency=25ms")
    n = 80
    path = sheet(env / "big.xlsx", n)
    e = environ(env)
    first = cli("apply", path, "--api-url", server.url, "--yes", "--concurrency", "4", env=e)
    deadline = time.monotonic() + 60
    while len(everything(server.url, "t")) < n // 4 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 1, err
    assert "Stopping" in err and "Traceback" not in err
    outcomes = Counter(
        r[3].value for r in openpyxl.load_workbook(env / "big.results.xlsx")["Results"].iter_rows(min_row=2)
    )
    assert sum(outcomes.values()) == n and outcomes["skipped"] > 0 and outcomes["created"] > 0
    second = cli("apply", path, "--api-url", server.url, "--yes", env=e)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert_exactly_once(server.url, "t", n)


def test_a_journal_in_use_is_still_refused(env: Path) -> None:
    state = env / "j.sqlite"
    with Journal(state), pytest.raises(BulkrefError, match="Another bulkref apply"):
        Journal(state)
    assert sqlite3.connect(state).execute("PRAGMA quick_check").fetchone()[0] == "ok"
