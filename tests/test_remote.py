"""How remote state is read: the look-up strategy, its fall-back, and the issue's
"done when" against a sandbox as strict as the documentation (filters, list lag,
creates that come back Active/Accepted, faults)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import FAULTS, RunningSandbox, everything, referral_body

from bulkref.api.client import ReferralsClient, RetryPolicy
from bulkref.apply.outcome import Outcome
from bulkref.apply.run import apply_input
from bulkref.export.referrals import export_referrals
from bulkref.plan.make import make_plan
from bulkref.plan.model import Action
from bulkref.plan.remote import Lookup, find_existing, probe
from bulkref.sheets.examples import EXAMPLES
from bulkref.sheets.template import build_workbook, save_workbook

Factory = Callable[..., RunningSandbox]
OK = {Outcome.UNCHANGED, Outcome.ADOPTED}
FAST = RetryPolicy(base=0.01, cap=0.05)


def third_co_sell(path: Path, n: int, prefix: str = "D") -> Path:
    """``n`` deals cycling Private, Partner-led, Co-sell: a third of them two-step chains."""
    rows = []
    for i in range(n):
        r = dict(EXAMPLES[i % 3])
        r["external_id"] = f"{prefix}-{i:05d}"
        rows.append(r)
    save_workbook(build_workbook(rows), path)
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", "sandbox-test-token")
    return tmp_path


def seeded(running: RunningSandbox, n: int) -> list[dict[str, Any]]:
    docs = [referral_body(name=f"Deal {i}", externalReferenceId=f"CRM-{i}") for i in range(n)]
    return running.admin.seed(docs)  # type: ignore[no-any-return]


# -- the strategy ----------------------------------------------------------------------------


def test_auto_filters_a_small_sheet_and_scans_a_large_one(sandbox_factory: Factory) -> None:
    # 200 referrals in 4 pages: 5 ids are one filtered query, 200 ids five (more than the pages).
    running = sandbox_factory(page_size=50)
    docs = seeded(running, 200)

    async def go(keys: int) -> tuple[str, dict[str, Any]]:
        async with ReferralsClient(running.url, running.token, retry=FAST) as client:
            lookup = Lookup()
            found = await find_existing(client, lookup, external_ids=[f"CRM-{i}" for i in range(keys)])
            try:
                groups = {k: [d["id"] for d in found.by_external_id.get(k, [])] for k in found.by_external_id}
            finally:
                found.close()
            return lookup.strategy or "", groups

    small, groups = asyncio.run(go(5))
    assert small == "filtered" and groups == {f"CRM-{i}": [docs[i]["id"]] for i in range(5)}
    large, groups = asyncio.run(go(200))
    assert large == "scan" and groups == {f"CRM-{i}": [docs[i]["id"]] for i in range(200)}


def test_a_refused_filter_falls_back_to_a_scan_and_says_so_once(sandbox_factory: Factory) -> None:
    running = sandbox_factory(filters="documented", page_size=7)
    docs = seeded(running, 20)
    notes: list[str] = []

    async def go() -> tuple[str | None, dict[str, list[str]], dict[str, str]]:
        async with ReferralsClient(running.url, running.token, retry=FAST) as client:
            lookup = Lookup("filtered", notes.append)  # told to filter: finds out
            first = await find_existing(client, lookup, external_ids=["CRM-3", "CRM-9", "nope"])
            second = await find_existing(client, lookup, ids=[docs[4]["id"], "missing"])
            try:
                by_ext = {k: [d["id"] for d in v] for k, v in first.by_external_id.items()}
                by_id = {k: v["id"] for k, v in second.by_id.items()}
            finally:
                first.close()
                second.close()
            return lookup.strategy, by_ext, by_id

    strategy, by_ext, by_id = asyncio.run(go())
    assert strategy == "scan"
    assert by_ext == {"CRM-3": [docs[3]["id"]], "CRM-9": [docs[9]["id"]], "nope": []}
    assert by_id == {docs[4]["id"]: docs[4]["id"]}
    assert len(notes) == 1 and "one paged listing" in notes[0]


def test_the_probe_tells_refused_from_ignored_filters() -> None:
    # The sandbox refuses or obeys; only a server written here can ignore a filter.
    def ignoring(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"value": [{"id": "anything", "externalReferenceId": "X"}]})

    async def go() -> dict[str, str]:
        transport = httpx.MockTransport(ignoring)
        async with ReferralsClient("http://127.0.0.1:9/v1.0/r", "t", transport=transport, retry=FAST) as c:
            return (await probe(c)).filters

    assert set(asyncio.run(go()).values()) == {"ignored"}


def test_ids_a_lagging_scan_misses_are_read_by_id(sandbox_factory: Factory) -> None:
    running = sandbox_factory(profile="documented", list_lag=30)
    made = httpx.post(running.url, json=referral_body(externalReferenceId="NEW-1"), headers=running.headers)
    assert made.status_code == 201

    async def go() -> tuple[list[str], list[str]]:
        async with ReferralsClient(running.url, running.token, retry=FAST) as client:
            found = await find_existing(
                client, Lookup("scan"), external_ids=["NEW-1"], ids=[made.json()["id"]]
            )
            try:
                return list(found.by_id), [d["id"] for d in found.by_external_id["NEW-1"]]
            finally:
                found.close()

    by_id, by_ext = asyncio.run(go())
    # The listing does not show it yet; GET by id does, and it answers for its External Reference ID too.
    assert by_id == [made.json()["id"]] and by_ext == [made.json()["id"]]


# -- done when ------------------------------------------------------------------------------


def test_documented_service_with_lag_and_faults_creates_each_referral_once(
    sandbox_factory: Factory, env: Path
) -> None:
    server = sandbox_factory(profile="documented", list_lag=3, faults=FAULTS, seed=7)
    n = 200
    path = third_co_sell(env / "deals.xlsx", n)
    notes: list[str] = []
    # A window a little over the lag: a lost create shows within it (a shorter one would
    # resend what is stored; the replayed MS-RequestId would still save it).
    run = apply_input(path, api_url=server.url, concurrency=8, on_note=notes.append, consistency_window=4)
    assert Counter(r.outcome for r in run.results) == {Outcome.CREATED: n}, [
        (r.row, r.outcome, r.error_message) for r in run.results if r.outcome is not Outcome.CREATED
    ][:5]
    assert any("one paged listing" in note for note in notes)  # documented filters: it scanned
    stats = httpx.get(server.root + "/_sandbox/stats").json()
    assert stats["faults"]["commit-then-500"] > 0 and stats["faults"]["commit-then-reset"] > 0

    again = apply_input(path, api_url=server.url, concurrency=8)  # at once: within the lag
    outcomes = Counter(r.outcome for r in again.results)
    # Nothing sent: what the listing does not show yet is read by id from the last run's results.
    odd = [(r.row, r.action, r.outcome, r.error_message) for r in again.results if r.outcome not in OK]
    assert set(outcomes) <= OK and sum(outcomes.values()) == n, (
        outcomes,
        odd[:3],
        [
            (p.row, p.action, p.reason, [c.field for c in p.changes], [st.key for st in p.steps])
            for p in again.plan.rows
            if p.action not in (Action.UNCHANGED,)
        ][:5],
    )

    httpx.post(server.root + "/_sandbox/faults", json={"faults": ""})
    time.sleep(3.2)  # past the lag: count what the listing holds
    docs = everything(server.url, "t")
    partner = Counter(d.get("externalReferenceId") for d in docs if d["organizationId"] != "msft")
    assert set(partner) == {f"D-{i:05d}" for i in range(n)} and set(partner.values()) == {1}
    microsoft = [d for d in docs if d["organizationId"] == "msft"]
    assert len(microsoft) == len(range(2, n, 3))  # each co-sell's second referral, once
    assert len({d["engagementId"] for d in microsoft}) == len(microsoft)

    # Created through the API, they are Active/Accepted now: an export plans back unchanged.
    assert {(d["status"], d["substatus"]) for d in docs if d["organizationId"] != "msft"} == {
        ("Active", "Accepted")
    }
    exported = export_referrals(env / "export.xlsx", api_url=server.url).path
    planned = make_plan(exported, api_url=server.url)
    assert planned.lookup == "scan"
    assert {r.action for r in planned.rows} == {Action.UNCHANGED}, [
        (r.row, r.action, r.reason) for r in planned.rows if r.action is not Action.UNCHANGED
    ][:3]
    # The sheet that made them still says New/Pending: unchanged too, with the reason said.
    original = make_plan(path, api_url=server.url)
    assert {r.action for r in original.rows} == {Action.UNCHANGED}, [
        (r.row, r.action, r.reason, r.deal_type) for r in original.rows if r.action is not Action.UNCHANGED
    ][:3]
    said_new = [r for r in original.rows if EXAMPLES[(r.row - 2) % 3]["status"] == "New"]
    assert len(said_new) == len(original.rows) - len(range(1, n, 3))
    assert all("accepted this outgoing referral" in (r.reason or "") for r in said_new)


def test_the_scan_index_finds_ids_and_engagements_whatever_their_case() -> None:
    """Nothing says Partner Center keeps the case of the GUIDs and External Reference IDs it
    was sent: a look-up that misses a referral over case would have it created again."""
    from bulkref.plan.index import ReferralIndex

    index = ReferralIndex()
    try:
        index.add({"id": "ab12cd", "externalReferenceId": "crm-7", "engagementId": "e5f6aa"})
        index.finish()
        assert [d["id"] for d in index.by("id", "AB12CD")] == ["ab12cd"]
        assert [d["id"] for d in index.by("ext", "CRM-7")] == ["ab12cd"]
        assert [d["id"] for d in index.by("engagement", "E5F6AA")] == ["ab12cd"]
        assert index.has("id", ["AB12CD", "other"]) == {"AB12CD"}  # as asked
    finally:
        index.close()
