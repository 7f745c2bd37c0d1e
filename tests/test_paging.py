"""Paging is same-origin: a next link's query, on the configured collection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from helpers import FAST, Recorder, RunningSandbox, referral_body

from bulkref.api.client import ApiError, ReferralsClient, _peeked_link, same_origin

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


def test_the_next_page_is_asked_for_while_this_one_is_read(sandbox_factory: Factory) -> None:
    running = sandbox_factory(page_size=3)
    seeded = running.admin.seed(
        [referral_body(name=f"Deal {i}", externalReferenceId=f"CRM-{i}") for i in range(7)]
    )
    wire = Recorder()

    async def go() -> tuple[int, list[str]]:
        async with ReferralsClient(running.url, running.token, transport=wire, retry=FAST) as api:
            pages = api.list()
            first = await anext(pages)
            await asyncio.sleep(0.3)  # the caller is busy with the first referral
            asked = len(wire.requests)
            return asked, [first["id"]] + [r["id"] async for r in pages]

    asked, ids = asyncio.run(go())
    assert asked == 2  # page 2 was asked for before page 1 was consumed
    assert ids == [r["id"] for r in seeded]
    assert len(wire.requests) == 3  # and no page twice, none past the last


class _MisleadingTail(Recorder):
    """Page 1 ends with a nested "@odata.nextLink" that is not the page's own link: the
    link read off the raw tail is a wrong guess, the parsed one is right."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if len(self.requests) != 1:
            return response
        body = (await response.aread()).rstrip()
        assert body.endswith(b"}")
        body = body[:-1] + b',"extra":{"@odata.nextLink":"?$skiptoken=not-a-token"}}'
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=body, request=request)


def test_a_wrong_guess_at_the_next_link_is_dropped_and_the_parsed_link_followed(
    sandbox_factory: Factory,
) -> None:
    running = sandbox_factory(page_size=3)
    seeded = running.admin.seed(
        [referral_body(name=f"Deal {i}", externalReferenceId=f"CRM-{i}") for i in range(7)]
    )
    wire = _MisleadingTail()

    async def go() -> list[str]:
        async with ReferralsClient(running.url, running.token, transport=wire, retry=FAST) as api:
            return [r["id"] async for r in api.list()]

    assert asyncio.run(go()) == [r["id"] for r in seeded]
    tokens = [r.url.params.get("$skiptoken") for r in wire.requests]
    assert "not-a-token" in tokens  # guessed, asked for, then dropped without a word
    assert len([t for t in tokens if t not in (None, "not-a-token")]) == 2  # the real pages 2 and 3


def test_the_link_is_read_off_the_tail_or_the_head_of_a_page() -> None:
    tail = b'{"value":[' + b'{"a":1},' * 2000 + b'{"a":1}],"@odata.nextLink":"https://x/r?$skiptoken=2"}'
    assert _peeked_link(tail) == "https://x/r?$skiptoken=2"
    head = b'{"@odata.nextLink":"?$skiptoken=3","value":[' + b'{"a":1},' * 2000 + b'{"a":1}]}'
    assert _peeked_link(head) == "?$skiptoken=3"
    assert _peeked_link(b'{"value":[]}') is None
    # An escaped character: no guess (the parsed link decides, one page later).
    assert _peeked_link(b'{"value":[],"@odata.nextLink":"https:\\/\\/x\\/r?$skiptoken=4"}') is None
