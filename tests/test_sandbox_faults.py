"""Injected faults and the rate limit, observed by a client over real HTTP."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from helpers import RunningSandbox, http, referral_body

from bulkref.sandbox.faults import parse_faults

# The fixtures (sandbox, sandbox_factory); harmless once tests/conftest.py imports them too.

Factory = Callable[..., RunningSandbox]
SPEC = "429=0.1,503=0.05,500=0.05,reset=0.05,commit-then-500=0.1,commit-then-reset=0.1"


def outcome(send: Callable[[], httpx.Response]) -> str:
    try:
        return str(send().status_code)
    except httpx.TransportError:
        # What a dropped connection looks like to a client: no status at all.
        return "reset"


def run(sandbox: RunningSandbox, count: int) -> list[str]:
    """``count`` requests in a fixed order: creates, with a list every fourth request."""
    outcomes = []
    with sandbox.client() as client:
        for i in range(count):
            if i % 4 == 3:
                outcomes.append(outcome(lambda: client.get(sandbox.url, params={"$top": "1"})))
            else:
                body = referral_body(name=f"n{i}")
                outcomes.append(outcome(lambda body=body: client.post(sandbox.url, json=body)))
    return outcomes


def test_each_fault_happens_at_its_rate(sandbox_factory: Factory) -> None:
    running = sandbox_factory(faults=SPEC, seed=20240601)
    seen = Counter(run(running, 600))
    stats = running.admin.stats()
    rates = parse_faults(SPEC).rates
    for kind, rate in rates.items():
        eligible, happened = stats["eligible"][kind], stats["faults"][kind]
        assert eligible > 150, kind
        # Binomial: 4 standard deviations (the seed is fixed, so this is not a
        # matter of luck from run to run, only of a fair generator).
        slack = 4 * math.sqrt(rate * (1 - rate) / eligible)
        assert abs(happened / eligible - rate) <= slack, (kind, happened, eligible)
    # What the client saw agrees with what the sandbox counted.
    assert seen["429"] == stats["faults"]["429"]
    assert seen["503"] == stats["faults"]["503"]
    assert seen["500"] == stats["faults"]["500"] + stats["faults"]["commit-then-500"]
    assert seen["reset"] == stats["faults"]["reset"] + stats["faults"]["commit-then-reset"]
    # commit-then-* stored the referral although the client got no 201 for it.
    created = seen["201"] + stats["faults"]["commit-then-500"] + stats["faults"]["commit-then-reset"]
    listing = http.get(running.url, params={"$count": "true", "$top": "0"}, headers=running.headers)
    while listing.status_code != 200:  # the listing itself may draw a fault
        listing = http.get(running.url, params={"$count": "true", "$top": "0"}, headers=running.headers)
    assert listing.json()["@odata.count"] == created == stats["referrals"]


def test_the_same_seed_gives_the_same_faults(sandbox_factory: Factory) -> None:
    first = sandbox_factory(faults=SPEC, seed=7)
    second = sandbox_factory(faults=SPEC, seed=7)
    other = sandbox_factory(faults=SPEC, seed=8)
    a, b, c = run(first, 80), run(second, 80), run(other, 80)
    assert a == b
    assert a != c
    first.admin.reset()  # a reset rolls the dice from the seed again
    assert run(first, 80) == a


def test_reset_drops_the_connection_without_an_answer(sandbox_factory: Factory) -> None:
    running = sandbox_factory(faults="reset=1")
    with running.client() as client:
        for send in (lambda: client.get(running.url), lambda: client.post(running.url, json=referral_body())):
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                send()
    assert running.admin.stats()["referrals"] == 0
    assert running.admin.stats()["requests"] == {"reset": 2}


@pytest.mark.parametrize("kind", ["commit-then-500", "commit-then-reset"])
def test_commit_then_fault_stores_the_write_but_loses_the_answer(sandbox_factory: Factory, kind: str) -> None:
    running = sandbox_factory(faults=f"{kind}=1")
    with running.client() as client:
        if kind == "commit-then-500":
            response = client.post(running.url, json=referral_body(name="lost answer"))
            assert response.status_code == 500
            assert response.json()["error"]["code"] == "generalException"
        else:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                client.post(running.url, json=referral_body(name="lost answer"))
        # Reads are not writes: they are answered, and show the referral stored.
        stored = client.get(running.url).json()["value"]
        assert [r["name"] for r in stored] == ["lost answer"]
        # The same holds for a PATCH: changed, though the answer is lost.
        outcome(
            lambda: client.patch(
                stored[0]["links"]["self"]["uri"],
                json=[{"op": "replace", "path": "/name", "value": "patched"}],
            )
        )
        assert client.get(stored[0]["links"]["self"]["uri"]).json()["name"] == "patched"
        # A write the rules refuse stores nothing and gets its real answer.
        refused = client.post(running.url, json=referral_body(type="Both"))
        assert refused.status_code == 400
    assert running.admin.stats()["faults"][kind] == 2


@pytest.mark.parametrize(
    ("kind", "code"),
    [("429", "tooManyRequests"), ("503", "serviceNotAvailable"), ("500", "generalException")],
)
def test_status_faults_answer_with_an_error_body_and_retry_after(
    sandbox_factory: Factory, kind: str, code: str
) -> None:
    running = sandbox_factory(faults=f"{kind}=1,retry-after=3")
    response = http.post(running.url, json=referral_body(), headers=running.headers)
    assert response.status_code == int(kind)
    assert response.json()["error"]["code"] == code
    assert response.headers["request-id"]
    if kind in ("429", "503"):
        assert response.headers["retry-after"] == "3"
    assert running.admin.stats()["referrals"] == 0


def test_admin_routes_are_never_faulted_and_faults_can_change_at_runtime(sandbox_factory: Factory) -> None:
    running = sandbox_factory(faults="500=1")
    for _ in range(5):
        assert running.admin.stats()["faults"]["500"] == 0
    running.admin.set_faults("")
    assert http.get(running.url, headers=running.headers).status_code == 200
    response = http.post(running.root + "/_sandbox/faults", json={"faults": "500=2"})
    assert response.status_code == 400 and response.json()["error"]["target"] == "faults"


def test_latency_delays_every_api_request(sandbox_factory: Factory) -> None:
    running = sandbox_factory(faults="latency=80ms")
    started = time.perf_counter()
    assert http.get(running.url, headers=running.headers).status_code == 200
    assert time.perf_counter() - started >= 0.08  # a lower bound only: never flaky


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("429=2", "between 0 and 1"),
        ("teapot=0.1", "unknown fault"),
        ("latency=fast", "duration"),
        ("500=0.6,503=0.6", "add up"),
        ("commit-then-500=0.7,commit-then-reset=0.4", "add up"),
        ("429", "kind=value"),
    ],
)
def test_bad_fault_specs_are_refused(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_faults(spec)


def test_rate_limit_answers_429_with_an_honest_retry_after(sandbox_factory: Factory) -> None:
    running = sandbox_factory(rate_limit=2)  # a burst of 2, then one every 0.5 s
    with running.client() as client:
        statuses = [client.get(running.url).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        throttled = client.get(running.url)
        assert throttled.status_code == 429
        assert throttled.json()["error"]["code"] == "tooManyRequests"
        assert throttled.headers["retry-after"] == "1"  # whole seconds, rounded up
        wait_ms = int(throttled.headers["x-ms-retry-after-ms"])
        assert 0 < wait_ms <= 500
        # Another tenant has its own bucket.
        assert client.get(running.url, headers={"Authorization": "Bearer someone-else"}).status_code == 200
        # Waiting what it said is enough.
        time.sleep(wait_ms / 1000)
        assert client.get(running.url).status_code == 200
    assert running.admin.stats()["rateLimited"] == 2


def test_rate_limit_tenant_is_the_tokens_tid_claim(sandbox_factory: Factory) -> None:
    import base64
    import json

    def jwt(tid: str, user: str) -> str:
        claims = base64.urlsafe_b64encode(json.dumps({"tid": tid, "upn": user}).encode()).decode().rstrip("=")
        return f"eyJhbGciOiJub25lIn0.{claims}.sig"

    running = sandbox_factory(rate_limit=1)
    a = {"Authorization": f"Bearer {jwt('tenant-a', 'ann')}"}
    also_a = {"Authorization": f"Bearer {jwt('tenant-a', 'bob')}"}
    b = {"Authorization": f"Bearer {jwt('tenant-b', 'ann')}"}
    assert http.get(running.url, headers=a).status_code == 200
    assert http.get(running.url, headers=also_a).status_code == 429
    assert http.get(running.url, headers=b).status_code == 200
