"""State that survives a restart (--db), and concurrent requests that do not trample each other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from helpers import RunningSandbox, http, referral_body

# The fixtures (sandbox, sandbox_factory); harmless once tests/conftest.py imports them too.

Factory = Callable[..., RunningSandbox]


def _create(sandbox: RunningSandbox, **changes: Any) -> dict[str, Any]:
    response = http.post(sandbox.url, json=referral_body(**changes), headers=sandbox.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _read_all(sandbox: RunningSandbox, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    response = http.get(sandbox.url, params=params or {}, headers=sandbox.headers)
    while True:
        assert response.status_code == 200, response.text
        out += response.json()["value"]
        link = response.json().get("@odata.nextLink")
        if not link:
            return out
        response = http.get(link, headers=sandbox.headers)


def _strip_links(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Links name the host:port that answers, which a restart changes.
    return [{k: v for k, v in d.items() if k != "links"} for d in docs]


def test_state_survives_a_restart_with_db(sandbox_factory: Factory, tmp_path: Path) -> None:
    running = sandbox_factory(db=tmp_path / "state" / "sandbox.db", page_size=2)
    partner = _create(running, name="one")
    microsoft = _create(running, name="two", engagementId=partner["engagementId"], organizationId="msft")
    _create(running, name="three")
    patched = http.patch(
        partner["links"]["self"]["uri"],
        headers=running.headers,
        json=[
            {"op": "replace", "path": "/status", "value": "Active"},
            {"op": "replace", "path": "/substatus", "value": "Accepted"},
        ],
    )
    assert patched.status_code == 204
    incoming = running.admin.seed(referral_body(name="four"))
    before = _read_all(running)
    first_page = http.get(running.url, headers=running.headers).json()

    running.restart()
    after = _read_all(running)
    assert _strip_links(after) == _strip_links(before)
    assert [d["name"] for d in after] == ["one", "two", "three", "four"]
    assert after[0]["eTag"] == patched.headers["etag"] and after[0]["status"] == "Active"
    assert after[3]["direction"] == "Incoming" and after[3]["id"] == incoming["id"]
    # A paging token handed out before the restart still reads the rest.
    token = first_page["@odata.nextLink"].split("$skiptoken=")[1]
    rest = http.get(running.url, params={"$skiptoken": token}, headers=running.headers).json()
    assert [d["name"] for d in rest["value"]] == ["three", "four"]
    # Engagements are remembered: joining one still works, and writes go on after the old ones.
    joined = _create(running, name="five", engagementId=microsoft["engagementId"])
    assert joined["createdDateTime"] > max(d["updatedDateTime"] for d in before)
    # And If-Match still knows the stored eTags.
    rename = [{"op": "replace", "path": "/name", "value": "x"}]
    url = after[1]["links"]["self"]["uri"]
    stale = http.patch(url, headers={**running.headers, "If-Match": partner["eTag"]}, json=rename)
    assert stale.status_code == 412
    ok = http.patch(url, headers={**running.headers, "If-Match": after[1]["eTag"]}, json=rename)
    assert ok.status_code == 204


def test_memory_state_does_not_survive_a_restart(sandbox_factory: Factory) -> None:
    running = sandbox_factory()
    _create(running)
    running.restart()
    assert _read_all(running) == []


def test_reset_wipes_the_database_too(sandbox_factory: Factory, tmp_path: Path) -> None:
    running = sandbox_factory(db=tmp_path / "s.db")
    _create(running)
    running.admin.reset()
    running.restart()
    assert _read_all(running) == []


def test_two_sandboxes_on_one_database_see_each_others_writes(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    # As two bulkref commands with --sandbox would, each with its own sandbox on the same file.
    first = sandbox_factory(db=tmp_path / "shared.db")
    second = sandbox_factory(db=tmp_path / "shared.db")
    made = _create(first, name="from first")
    assert [d["id"] for d in _read_all(second)] == [made["id"]]
    joined = _create(second, name="from second", engagementId=made["engagementId"])
    assert {d["id"] for d in _read_all(first)} == {made["id"], joined["id"]}
    # A write through one is checked against what the other wrote.
    http.patch(
        made["links"]["self"]["uri"].replace(first.root, second.root),
        headers=second.headers,
        json=[{"op": "replace", "path": "/name", "value": "renamed"}],
    )
    stale = http.patch(
        made["links"]["self"]["uri"],
        headers={**first.headers, "If-Match": made["eTag"]},
        json=[{"op": "replace", "path": "/name", "value": "lost update"}],
    )
    assert stale.status_code == 412


async def _concurrently(
    sandbox: RunningSandbox, count: int, request: Callable[[httpx.AsyncClient, int], Any]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(headers=sandbox.headers, limits=limits, timeout=20) as client:
        return list(await asyncio.gather(*(request(client, i) for i in range(count))))


def test_concurrent_creates_are_all_stored_once(sandbox_factory: Factory, tmp_path: Path) -> None:
    for running in (sandbox_factory(), sandbox_factory(db=tmp_path / "c.db")):
        url = running.url
        responses = asyncio.run(
            _concurrently(
                running, 40, lambda client, i, url=url: client.post(url, json=referral_body(name=f"c{i}"))
            )
        )
        assert [r.status_code for r in responses] == [201] * 40
        ids = {r.json()["id"] for r in responses}
        assert len(ids) == 40
        assert {d["id"] for d in _read_all(running)} == ids


def test_concurrent_writes_with_one_etag_let_exactly_one_win(sandbox: RunningSandbox) -> None:
    made = _create(sandbox)
    url, etag = made["links"]["self"]["uri"], made["eTag"]
    responses = asyncio.run(
        _concurrently(
            sandbox,
            20,
            lambda client, i: client.patch(
                url,
                headers={"If-Match": etag},
                json=[{"op": "replace", "path": "/name", "value": f"writer {i}"}],
            ),
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [204] + [412] * 19
    winner = next(i for i, r in enumerate(responses) if r.status_code == 204)
    assert http.get(url, headers=sandbox.headers).json()["name"] == f"writer {winner}"
