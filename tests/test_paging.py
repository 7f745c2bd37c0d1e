"""Paging is same-origin: a next link's query, on the configured collection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from sandbox_fixture import RunningSandbox, referral_body
from test_client import FAST, Recorder

from bulkref.api.client import ApiError, ReferralsClient, same_origin

Factory = Callable[..., RunningSandbox]


def test_a_documented_next_link_is_rebased_onto_the_collection(sandbox_factory: Factory) -> None:
    running = sandbox_factory(page_size=3, next_link="documented")
    seeded = running.admin.seed(
        [referral_body(name=f"Deal {i}", externalReferenceId=f"CRM-{i}") for i in range(7)]
    )
    wire = Recorder()

    async def go() -> list[str]:
        async with ReferralsClient(running.url, running.token, transport=wire, retry=FAST) as api:
            return [r["id"] async for r in api.list()]

    assert asyncio.run(go()) == [r["id"] for r in seeded]
    collection = httpx.URL(running.url)
    assert len(wire.requests) == 3
    # The sandbox's links name http and /v1.0/referrals, as the documented example does...
    link = httpx.URL(wire.responses[0].json()["@odata.nextLink"])
    assert (link.scheme, link.path) == ("http", "/v1.0/referrals") and link.path != collection.path
    # ...and every page was still asked of the collection, with the $skiptoken kept.
    for request in wire.requests[1:]:
        assert (request.url.scheme, request.url.host, request.url.port) == (
            collection.scheme,
            collection.host,
            collection.port,
        )
        assert request.url.path == collection.path and "$skiptoken" in request.url.params


def test_same_origin_keeps_the_query_and_nothing_else() -> None:
    base = "https://api.partner.microsoft.com/v1.0/engagements/referrals"
    link = "http://evil.example:81/v1.0/referrals?$skiptoken=abc%3D&x=1#frag"
    rebased = httpx.URL(same_origin(base, link))
    assert (rebased.scheme, rebased.host, rebased.port, rebased.path) == (
        "https",
        "api.partner.microsoft.com",
        None,
        "/v1.0/engagements/referrals",
    )
    assert rebased.params["$skiptoken"] == "abc=" and rebased.params["x"] == "1" and not rebased.fragment
    assert same_origin(base, "?$skiptoken=2") == base + "?$skiptoken=2"


def test_no_token_goes_over_plain_http_to_another_machine() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"value": []})

    async def go() -> None:
        async with ReferralsClient(
            "http://api.example.net/v1.0/engagements/referrals",
            "secret-token",
            transport=httpx.MockTransport(handler),
            retry=FAST,
        ) as api:
            await api.get("x")

    with pytest.raises(ApiError) as refused:
        asyncio.run(go())
    assert sent == [] and "plain http" in str(refused.value) and "secret-token" not in str(refused.value)
