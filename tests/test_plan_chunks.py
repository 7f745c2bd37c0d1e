"""Planning a sheet a chunk at a time (bulkref.plan.chunks) plans it as the whole-sheet
planner does: duplicates across chunks, two rows of different chunks claiming one referral."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bulkref.api.client import ReferralsClient
from bulkref.apply.run import apply_input
from bulkref.plan.chunks import plan_chunks
from bulkref.plan.make import plan_file
from bulkref.plan.model import Action, RowPlan
from bulkref.sheets.examples import EXAMPLES
from bulkref.sheets.template import build_workbook, save_workbook


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", "sandbox-test-token")
    return tmp_path


def _rows(n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        r = dict(EXAMPLES[i % len(EXAMPLES)])
        r["external_id"] = f"C-{i:05d}"
        rows.append(r)
    return rows


def _both(path: Path, url: str, token: str, at_once: int) -> tuple[list[RowPlan], list[RowPlan]]:
    async def go() -> tuple[list[RowPlan], list[RowPlan]]:
        async with ReferralsClient(url, token) as client:
            whole = await plan_file(path, client, api_url=url)
            got: dict[int, RowPlan] = {}
            order: list[int] = []

            def add(rows: Any) -> None:
                for rp in rows:
                    order.append(rp.row)
                    got[rp.row] = rp

            def again(rows: Any) -> None:
                for rp in rows:
                    assert rp.row in got
                    got[rp.row] = rp

            header = await plan_chunks(
                path, client, api_url=url, on_rows=add, on_replace=again, rows_at_once=at_once
            )
            assert header.rows == () and header.fingerprint == whole.fingerprint
            return list(whole.rows), [got[r] for r in order]

    return asyncio.run(go())


def _plain(rows: list[RowPlan]) -> list[dict[str, Any]]:
    return [r.as_json() for r in rows]


def test_duplicates_across_chunks_are_invalid_as_in_the_whole_sheet(sandbox: Any, env: Path) -> None:
    rows = _rows(7)
    rows[6]["external_id"] = rows[0]["external_id"]  # row 8 repeats row 2, three chunks away
    path = env / "dups.xlsx"
    save_workbook(build_workbook(rows), path)
    whole, chunked = _both(path, sandbox.url, sandbox.token, at_once=2)
    assert _plain(chunked) == _plain(whole)
    invalid = [r for r in chunked if r.action is Action.INVALID]
    assert [r.row for r in invalid] == [2, 8] and "also on row 8" in (invalid[0].reason or "")


def test_rows_found_in_partner_center_plan_as_in_the_whole_sheet(sandbox: Any, env: Path) -> None:
    first = env / "first.xlsx"
    save_workbook(build_workbook(_rows(2)), first)
    run = apply_input(first, api_url=sandbox.url)
    referral = next(r.referral_id for r in run.results if r.external_id == "C-00000")
    rows = _rows(6)
    # Row 7 names C-00000's referral by id without its External Reference ID; row 2 by ext.
    rows[5] = {**rows[0], "referral_id": referral}
    rows[5].pop("external_id")
    path = env / "claims.xlsx"
    save_workbook(build_workbook(rows), path)
    whole, chunked = _both(path, sandbox.url, sandbox.token, at_once=2)
    assert _plain(chunked) == _plain(whole)
    blocked = {r.row: r for r in chunked if r.action is Action.BLOCKED}
    assert set(blocked) == {7} and "C-00000" in (blocked[7].reason or "")
    assert {r.row: r.action for r in chunked}[2] in (Action.UNCHANGED, Action.UPDATE)


def test_a_plan_of_one_chunk_or_many_is_the_same(sandbox: Any, env: Path) -> None:
    path = env / "many.xlsx"
    save_workbook(build_workbook(_rows(9)), path)
    whole, chunked = _both(path, sandbox.url, sandbox.token, at_once=4)
    assert _plain(chunked) == _plain(whole) and len(chunked) == 9
