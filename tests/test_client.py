"""The API client's read side, over real loopback HTTP against the sandbox.

Only the answers the sandbox cannot give (a proxy's HTML error page) use
httpx.MockTransport. Every retry policy here is fast (waits of a few
milliseconds) unless the service asks for a wait, as the rate limit does.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from helpers import FAST, Recorder, RunningSandbox, http, referral_body

from bulkref.api.client import (
    MAX_URL_LENGTH,
    ApiError,
    InvalidRequest,
    NotFound,
    ReferralsClient,
    RetryPolicy,
    ServerError,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
    Unreachable,
    filter_batches,
    odata_string,
    retry_after_seconds,
)
from bulkref.errors import BulkrefError

Factory = Callable[..., RunningSandbox]
SECRET = "s3cret-token-value"


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def client(
    sandbox: RunningSandbox,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy = FAST,
    **kw: Any,
) -> ReferralsClient:
    return ReferralsClient(sandbox.url, sandbox.token, transport=transport, retry=retry, **kw)


def seed(sandbox: RunningSandbox, count: int, **fields: Any) -> list[dict[str, Any]]:
    docs = [referral_body(name=f"Deal {i}", externalReferenceId=f"CRM-{i}", **fields) for i in range(count)]
    return sandbox.admin.seed(docs)  # type: ignore[no-any-return]


def create(sandbox: RunningSandbox, **changes: Any) -> dict[str, Any]:
    response = http.post(sandbox.url, json=referral_body(**changes), headers=sandbox.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def collect(client: ReferralsClient, **query: Any) -> list[dict[str, Any]]:
    async with client:
        return [r async for r in client.list(**query)]


def one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message.rstrip(".") and "\n" not in message


# -- reads ---------------------------------------------------------------------------------


def test_get_returns_the_referral_and_a_missing_one_is_not_found(sandbox: RunningSandbox) -> None:
    made = create(sandbox, externalReferenceId="CRM-7")

    async def go() -> tuple[dict[str, Any], NotFound]:
        async with client(sandbox) as api:
            found = await api.get(made["id"])
            with pytest.raises(NotFound) as missing:
                await api.get("no-such-referral")
            return found, missing.value

    found, missing = run(go())
    assert found["id"] == made["id"] and found["externalReferenceId"] == "CRM-7"
    assert (missing.status, missing.code, missing.exit_code) == (404, "itemNotFound", 2)
    assert missing.request_id and one_sentence(str(missing))


def test_list_follows_every_next_link_and_returns_each_referral_once(sandbox_factory: Factory) -> None:
    running = sandbox_factory(page_size=3)
    seeded = seed(running, 10)
    wire = Recorder()
    listed = run(collect(client(running, wire)))
    assert [r["id"] for r in listed] == [r["id"] for r in seeded]
    assert len(wire.requests) == 4  # 3 + 3 + 3 + 1
    assert all("$skiptoken=" in str(r.url) for r in wire.requests[1:])


def test_list_passes_filter_orderby_select_and_top_through(sandbox_factory: Factory) -> None:
    running = sandbox_factory(page_size=3)
    seeded = seed(running, 4, status="New") + seed(running, 5, status="Active", substatus="Accepted")
    wire = Recorder()
    active = run(collect(client(running, wire), filter="status eq 'Active'"))
    assert [r["id"] for r in active] == [r["id"] for r in seeded[4:]]
    newest_first = run(collect(client(running), orderby="createdDateTime desc"))
    assert [r["id"] for r in newest_first] == [r["id"] for r in reversed(seeded)]
    slim = run(collect(client(running), select="id,status"))
    assert len(slim) == 9 and all(set(r) <= {"id", "status"} and "id" in r for r in slim)
    first_four = run(collect(client(running, wire), top=4))
    assert [r["id"] for r in first_four] == [r["id"] for r in seeded[:4]]
    sent = httpx.URL(str(wire.requests[0].url)).params
    assert sent["$filter"] == "status eq 'Active'"
    assert httpx.URL(str(wire.requests[-2].url)).params["$top"] == "4"


def test_by_external_ids_splits_long_look_ups_under_the_url_limit(sandbox_factory: Factory) -> None:
    running = sandbox_factory(page_size=3)
    # 400 long ids, some with quotes; every tenth has a referral, every fiftieth two.
    ids = [f"CRM-{i:04d}-{'x' * 30}" + ("-O'Brien's" if i % 7 == 0 else "") for i in range(400)]
    docs = [referral_body(externalReferenceId=ids[i], name=f"d{i}") for i in range(0, 400, 10)]
    docs += [referral_body(externalReferenceId=ids[i], name=f"again {i}") for i in range(0, 400, 50)]
    stored = running.admin.seed(docs)
    wire = Recorder()

    async def go() -> dict[str, list[dict[str, Any]]]:
        async with client(running, wire, max_connections=4) as api:
            return await api.by_external_ids(ids + ids[:5])  # repeats are looked up once

    groups = run(go())
    first_pages = [r for r in wire.requests if "$skiptoken" not in str(r.url)]
    assert len(first_pages) > 5
    assert all(len(str(r.url)) <= MAX_URL_LENGTH for r in first_pages)
    assert any("$skiptoken" in str(r.url) for r in wire.requests)  # batches with > 3 matches paged
    assert list(groups) == ids
    expected: dict[str, set[str]] = {key: set() for key in ids}
    for doc in stored:
        expected[doc["externalReferenceId"]].add(doc["id"])
    assert {key: {r["id"] for r in found} for key, found in groups.items()} == expected
    assert len(groups[ids[0]]) == 2 and groups[ids[1]] == []
    assert "'" in ids[350] and len(groups[ids[350]]) == 2


def test_by_engagement_ids_groups_a_co_sells_two_referrals(sandbox: RunningSandbox) -> None:
    partner = create(sandbox, externalReferenceId="CRM-CS")
    microsoft = create(
        sandbox,
        externalReferenceId="CRM-CS",
        engagementId=partner["engagementId"],
        organizationId="msft",
        inviteContext={"notes": "help", "assistanceRequestCode": "ProofOfConceptOrDemo"},
    )
    create(sandbox, externalReferenceId="CRM-OTHER")

    async def go() -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
        async with client(sandbox) as api:
            return (
                await api.by_engagement_ids([partner["engagementId"], "unknown-engagement"]),
                await api.by_ids([partner["id"], microsoft["id"], "nope"]),
            )

    by_engagement, by_id = run(go())
    pair = by_engagement[partner["engagementId"]]
    assert {r["id"] for r in pair} == {partner["id"], microsoft["id"]}
    assert {r["organizationId"] for r in pair} == {partner["organizationId"], "msft"}
    assert by_engagement["unknown-engagement"] == []
    assert set(by_id) == {partner["id"], microsoft["id"]}


def test_filter_batches_cover_every_value_once_within_the_limit() -> None:
    url = "https://api.partner.microsoft.com/v1.0/engagements/referrals"
    values = [f"id-{i}-{'é' * (i % 9)}&+ '" for i in range(300)] + ["z" * 3000]
    batches = filter_batches(url, "externalReferenceId", values + values[:10], limit=1000)
    assert all(len(b) <= 1000 for b in batches[:-1]) and len(batches[-1]) > 1000  # the giant alone
    clauses = [c for b in batches for c in httpx.URL(b).params["$filter"].split(" or ")]
    assert clauses == [f"externalReferenceId eq {odata_string(v)}" for v in values]
    assert odata_string("O'Brien''s") == "'O''Brien''''s'"
    assert filter_batches(url, "id", []) == []


# -- errors --------------------------------------------------------------------------------


def test_no_token_is_unauthenticated_with_advice(sandbox: RunningSandbox) -> None:
    async def go() -> None:
        async with ReferralsClient(sandbox.url, "", retry=FAST) as api:
            await api.get("anything")

    with pytest.raises(Unauthenticated) as caught:
        run(go())

    async def look_up() -> None:
        async with ReferralsClient(sandbox.url, "", retry=FAST) as api:
            await api.by_engagement_ids(["a", "b"])

    with pytest.raises(Unauthenticated):
        run(look_up())
    error = caught.value
    assert (error.status, error.code, error.exit_code) == (401, "unauthenticated", 2)
    assert isinstance(error, ApiError) and isinstance(error, BulkrefError)
    assert "--sandbox" in str(error) and "expired" in str(error) and one_sentence(str(error))


def test_a_malformed_filter_is_an_invalid_request_with_code_target_and_request_id(
    sandbox: RunningSandbox,
) -> None:
    wire = Recorder()
    api = ReferralsClient(sandbox.url, SECRET, transport=wire, retry=FAST)

    async def go() -> InvalidRequest:
        async with api:
            with pytest.raises(InvalidRequest) as caught:
                [r async for r in api.list(filter="status eq 'New' and")]
            return caught.value

    error = run(go())
    assert (error.status, error.code, error.target) == (400, "invalidRequest", "$filter")
    assert error.request_id and error.request_id == api.last_request_id
    assert error.client_request_id == wire.requests[0].headers["client-request-id"]
    assert len(wire.requests) == 1  # a 4xx other than 429 is not retried
    assert SECRET not in str(error) and "status eq" not in str(error)  # no token, no query (customer data)
    assert one_sentence(str(error))


def test_non_json_error_pages_still_map_to_the_hierarchy() -> None:
    calls = Counter[int]()

    def proxy(request: httpx.Request) -> httpx.Response:
        status = 502 if "referrals/" in request.url.path else 200
        calls[status] += 1
        return httpx.Response(status, text="<html>Bad gateway</html>", headers={"content-type": "text/html"})

    async def go() -> tuple[ServerError, ApiError]:
        async with ReferralsClient(
            "https://pc.example/v1.0/engagements/referrals",
            "t",
            transport=httpx.MockTransport(proxy),
            retry=RetryPolicy(attempts=2, base=0.001, cap=0.001),
        ) as api:
            with pytest.raises(ServerError) as gateway:
                await api.get("abc")
            with pytest.raises(ApiError) as not_json:
                [r async for r in api.list()]
            return gateway.value, not_json.value

    gateway, not_json = run(go())
    assert (gateway.status, gateway.code) == (502, None) and calls[502] == 2  # 5xx is retried
    assert "not JSON" in str(gateway) and one_sentence(str(gateway))
    assert not_json.status == 200 and "--api-url" in str(not_json)


# -- retries -------------------------------------------------------------------------------


def test_a_full_listing_survives_throttling_outages_and_resets(sandbox_factory: Factory) -> None:
    # retry-after=0: the faults still send Retry-After, but the test need not wait seconds. The
    # seed fixes the faults (no call here needs more than 4 attempts), so this is not luck.
    running = sandbox_factory(page_size=3, faults="429=0.3,503=0.2,reset=0.1,retry-after=0", seed=4)
    seeded = seed(running, 30)
    listed = run(collect(client(running, retry=RetryPolicy(attempts=10, base=0.01, cap=0.05))))
    assert [r["id"] for r in listed] == [r["id"] for r in seeded]
    faults = running.admin.stats()["faults"]
    assert faults["429"] and faults["503"] and faults["reset"]


def test_a_rate_limited_service_is_read_by_honouring_retry_after(sandbox_factory: Factory) -> None:
    running = sandbox_factory(page_size=2, rate_limit=5)
    seeded = seed(running, 18)  # 9 pages: 5 in the burst, then one per 200 ms
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    wire = Recorder()
    listed = run(collect(client(running, wire, retry=RetryPolicy(base=0.01, cap=0.05, sleep=sleep))))
    assert [r["id"] for r in listed] == [r["id"] for r in seeded]
    hints = [int(r.headers["x-ms-retry-after-ms"]) / 1000 for r in wire.responses if r.status_code == 429]
    assert running.admin.stats()["rateLimited"] == len(hints) == len(waits) >= 1
    # At least as long as asked, although the policy's own back-off would stop at 0.05 s.
    assert all(wait >= hint for wait, hint in zip(waits, hints, strict=True))
    # Waiting as long as asked gets through: no call was refused twice.
    tries = Counter(r.headers["client-request-id"] for r in wire.requests)
    assert len(tries) == 9 and max(tries.values()) == 2


def test_retries_keep_the_client_request_id_and_give_up_after_the_attempts(sandbox_factory: Factory) -> None:
    running = sandbox_factory(faults="503=1,retry-after=0")
    wire = Recorder()

    async def go() -> None:
        async with client(running, wire, retry=RetryPolicy(attempts=3, base=0.01, cap=0.02)) as api:
            await api.get("any")

    with pytest.raises(ServiceUnavailable) as caught:
        run(go())
    assert len(wire.requests) == 3
    assert len({r.headers["client-request-id"] for r in wire.requests}) == 1
    assert caught.value.code == "serviceNotAvailable" and caught.value.retry_after == 0
    assert caught.value.client_request_id == wire.requests[0].headers["client-request-id"]


def test_a_retry_after_beyond_the_policys_limit_is_not_waited_for(sandbox_factory: Factory) -> None:
    running = sandbox_factory(faults="429=1,retry-after=500")
    wire = Recorder()

    async def go() -> None:
        async with client(running, wire) as api:
            await api.get("any")

    with pytest.raises(Throttled) as caught:
        run(go())
    assert caught.value.retry_after == 500 and len(wire.requests) == 1


def test_retry_after_headers_are_read_in_seconds() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "2", "x-ms-retry-after-ms": "1250"})) == 1.25
    assert retry_after_seconds(httpx.Headers({"Retry-After": "3"})) == 3
    assert retry_after_seconds(httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Headers()) is None
    policy = RetryPolicy(base=0.5, cap=4)
    assert all(0 <= policy.delay(n) <= min(4, 0.5 * 2 ** (n - 1)) for n in range(1, 12) for _ in range(20))
    hinted = Throttled("x", retry_after=2.0)
    assert all(2.0 <= policy.delay(1, hinted) <= 2.5 for _ in range(20))


def test_a_closed_port_is_unreachable_after_quick_retries() -> None:
    with socket.socket() as probe:  # a port nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1.0/engagements/referrals"

    async def go() -> None:
        async with ReferralsClient(url, SECRET, retry=RetryPolicy(attempts=3, base=0.01, cap=0.02)) as api:
            await api.get("x")

    with pytest.raises(Unreachable) as caught:
        run(go())
    error = caught.value
    assert error.exit_code == 2 and error.attempts == 3 and error.maybe_delivered is False
    assert url in str(error) and "--sandbox" in str(error) and SECRET not in str(error)
    assert one_sentence(str(error))

    async def look_up() -> None:
        async with ReferralsClient(url, SECRET, retry=RetryPolicy(attempts=1)) as api:
            await api.by_external_ids([f"CRM-{i}-{'x' * 100}" for i in range(100)])

    with pytest.raises(Unreachable):  # one error from concurrent batches, not an ExceptionGroup
        run(look_up())


# -- headers -------------------------------------------------------------------------------


def test_each_call_has_its_own_request_id_and_the_client_one_correlation_id(sandbox: RunningSandbox) -> None:
    made = create(sandbox)
    wire = Recorder()
    asked: list[int] = []

    def token() -> str:
        asked.append(1)
        return SECRET

    api = ReferralsClient(sandbox.url, token, transport=wire, retry=FAST)
    other = ReferralsClient(sandbox.url, token, retry=FAST)

    async def go() -> None:
        async with api, other:
            await api.get(made["id"])
            [r async for r in api.list()]
            await api.by_ids([made["id"]])
            with pytest.raises(NotFound):
                await api.get("missing")

    run(go())
    headers = [r.headers for r in wire.requests]
    call_ids = [h["client-request-id"] for h in headers]
    assert len(headers) == 4 and len(set(call_ids)) == 4
    assert all(uuid.UUID(c) for c in call_ids)
    assert {h["MS-CorrelationId"] for h in headers} == {api.correlation_id}
    assert other.correlation_id != api.correlation_id
    assert all(
        h["Authorization"] == f"Bearer {SECRET}" and h["Accept"] == "application/json" for h in headers
    )
    assert len(asked) == 4  # the token source is asked per call, so a refreshed token is used
    assert api.last_request_id is not None


def test_writes_post_and_patch_with_etags(sandbox: Any) -> None:
    from bulkref.api.client import PreconditionFailed

    async def run() -> None:
        async with ReferralsClient(sandbox.url, sandbox.token) as client:
            created = await client.request(
                "POST", client.base_url, json=referral_body(externalReferenceId="W-1")
            )
            doc = created.body
            assert created.status == 201 and created.request_id and doc["eTag"]
            patched = await client.update(
                doc["id"], [{"op": "replace", "path": "/name", "value": "Renamed"}], if_match=doc["eTag"]
            )
            assert patched.status in (200, 204) and patched.etag and patched.etag != doc["eTag"]
            with pytest.raises(PreconditionFailed):  # the eTag read before the PATCH is stale now
                await client.update(
                    doc["id"], [{"op": "replace", "path": "/name", "value": "x"}], if_match=doc["eTag"]
                )
            current = await client.get(doc["id"])
            assert current["name"] == "Renamed"

    asyncio.run(run())
