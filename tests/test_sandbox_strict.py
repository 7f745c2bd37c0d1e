"""The sandbox as strict as the documentation: each switch over loopback HTTP, and all
of them together under ``profile="documented"``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from helpers import RunningSandbox, http, referral_body

from bulkref.sandbox import command
from bulkref.sandbox import server as sandbox_server
from bulkref.sandbox.options import SandboxOptions
from bulkref.sandbox.replay import Replays

Factory = Callable[..., RunningSandbox]


def create(running: RunningSandbox, headers: dict[str, str] | None = None, **changes: Any) -> httpx.Response:
    return http.post(
        running.url, json=referral_body(**changes), headers={**running.headers, **(headers or {})}
    )


def listed(running: RunningSandbox, filter_text: str | None = None, **params: str) -> httpx.Response:
    if filter_text is not None:
        params["$filter"] = filter_text
    return http.get(running.url, params=params, headers=running.headers)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["value"]]


def assert_invalid_filter(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalidRequest" and error["target"] == "$filter" and error["message"]


# -- --filters documented ----------------------------------------------------------------

DOCUMENTED_FILTERS = [
    "engagementId eq '{engagement}'",
    "status eq 'Active' and qualification eq 'SalesQualified'",
    "customerProfile/address/country eq 'US' and direction eq 'Outgoing'",
    "(type eq 'Shared' and direction eq 'Outgoing')",
    "(direction eq 'Outgoing' and substatus eq 'Accepted')",
    "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared'"
    " and team/any(t:t/email eq 'john@partner.example')",
    "updatedDateTime eq {updated}",
]

UNDOCUMENTED_FILTERS = [
    "externalReferenceId eq 'CRM-1'",
    "id eq '{id}'",
    "status eq 'Active' or status eq 'New'",
    "status ne 'Closed'",
    "createdDateTime ge 2020-01-01T00:00:00Z",
    "status in ('Active', 'New')",
    "not (status eq 'Closed')",
    "name eq 'Contoso ERP'",
    "team/all(t:t/email eq 'john@partner.example')",
    "team/any(t:t/firstName eq 'John')",
    "'Active' eq status",
]


@pytest.mark.parametrize("template", DOCUMENTED_FILTERS)
def test_documented_filters_take_what_the_listing_page_shows(sandbox_factory: Factory, template: str) -> None:
    strict = sandbox_factory(filters="documented")
    made = create(strict).json()
    # Another referral that differs in every property the filters name.
    customer = {"name": "Fabrikam", "address": {"country": "CA"}}
    other = strict.admin.seed(
        referral_body(type="Independent", qualification="Direct", customerProfile=customer, team=[])
    )
    text = template.format(engagement=made["engagementId"], updated=made["updatedDateTime"])
    found = ids(listed(strict, text))
    assert made["id"] in found
    assert other["id"] not in found  # the filter narrows


@pytest.mark.parametrize("template", UNDOCUMENTED_FILTERS)
def test_documented_filters_refuse_everything_else(sandbox_factory: Factory, template: str) -> None:
    strict = sandbox_factory(filters="documented")
    made = create(strict).json()
    assert_invalid_filter(listed(strict, template.format(id=made["id"])))


def test_filters_stay_permissive_by_default(sandbox: RunningSandbox) -> None:
    made = create(sandbox).json()
    assert sandbox.options.filters == "any"
    assert ids(listed(sandbox, f"externalReferenceId eq 'CRM-1' or id eq '{made['id']}'")) == [made["id"]]
    assert ids(listed(sandbox, "status ne 'Closed' and createdDateTime ge 2020-01-01")) == [made["id"]]


def test_a_paging_token_of_a_documented_filter_keeps_working(sandbox_factory: Factory) -> None:
    strict = sandbox_factory(filters="documented", page_size=2)
    made = [create(strict, externalReferenceId=f"CRM-{n}").json()["id"] for n in range(5)]
    seen: list[str] = []
    link: str | None = f"{strict.url}?$filter=status eq 'Active'"
    while link:
        page = http.get(link, headers=strict.headers).json()
        seen += [r["id"] for r in page["value"]]
        link = page.get("@odata.nextLink")
    assert seen == made


# -- --list-lag ------------------------------------------------------------------------------

LAG = 0.8


def test_with_a_list_lag_a_create_is_read_by_id_at_once_but_listed_only_later(
    sandbox_factory: Factory,
) -> None:
    lagging = sandbox_factory(list_lag=LAG)
    started = time.monotonic()
    made = create(lagging).json()
    assert http.get(f"{lagging.url}/{made['id']}", headers=lagging.headers).status_code == 200
    queries = [None, "externalReferenceId eq 'CRM-1'", f"engagementId eq '{made['engagementId']}'"]
    if time.monotonic() - started < LAG * 0.75:  # a slow machine could pass the lag already
        for query in queries:
            assert ids(listed(lagging, query)) == [], query
        counted = listed(lagging, "status eq 'Active'", **{"$count": "true"}).json()
        assert counted["@odata.count"] == 0
    time.sleep(LAG + 0.1)
    for query in queries:
        assert ids(listed(lagging, query)) == [made["id"]], query


def test_with_a_list_lag_a_change_shows_its_old_version_in_listings_until_the_lag(
    sandbox_factory: Factory,
) -> None:
    lagging = sandbox_factory(list_lag=LAG)
    made = create(lagging).json()
    time.sleep(LAG + 0.1)
    started = time.monotonic()
    patch = [{"op": "replace", "path": "/externalReferenceId", "value": "CRM-NEW"}]
    headers = {**lagging.headers, "Content-Type": "application/json-patch+json"}
    assert http.patch(f"{lagging.url}/{made['id']}", json=patch, headers=headers).status_code == 204
    now = http.get(f"{lagging.url}/{made['id']}", headers=lagging.headers).json()
    assert now["externalReferenceId"] == "CRM-NEW"
    if time.monotonic() - started < LAG * 0.75:
        old = listed(lagging).json()["value"]
        assert [(r["id"], r["externalReferenceId"], r["eTag"]) for r in old] == [
            (made["id"], "CRM-1", made["eTag"])
        ]
        assert ids(listed(lagging, "externalReferenceId eq 'CRM-1'")) == [made["id"]]
        assert ids(listed(lagging, "externalReferenceId eq 'CRM-NEW'")) == []
    time.sleep(LAG + 0.1)
    assert ids(listed(lagging, "externalReferenceId eq 'CRM-1'")) == []
    assert ids(listed(lagging, "externalReferenceId eq 'CRM-NEW'")) == [made["id"]]
    assert listed(lagging).json()["value"][0]["eTag"] == now["eTag"]


def test_without_a_list_lag_a_create_is_listed_at_once(sandbox: RunningSandbox) -> None:
    made = create(sandbox).json()
    assert ids(listed(sandbox, "externalReferenceId eq 'CRM-1'")) == [made["id"]]


# -- --create-status ----------------------------------------------------------------------------


def test_a_create_comes_back_active_accepted_by_default(sandbox: RunningSandbox) -> None:
    response = create(sandbox, status="New", substatus="Pending")
    got = response.json()
    assert response.status_code == 201
    assert (got["status"], got["substatus"]) == ("Active", "Accepted")
    assert got["acceptedDateTime"] == got["createdDateTime"]
    assert http.get(f"{sandbox.url}/{got['id']}", headers=sandbox.headers).json()["status"] == "Active"
    # A deal created already lost stays lost; Microsoft's referral of a co-sell is Microsoft's to accept.
    lost = create(sandbox, status="Closed", substatus="Lost").json()
    assert (lost["status"], lost["substatus"]) == ("Closed", "Lost")
    microsoft = create(sandbox, organizationId="msft", engagementId=got["engagementId"]).json()
    assert (microsoft["status"], microsoft["substatus"], microsoft["acceptedDateTime"]) == (
        "New",
        "Pending",
        None,
    )
    # The sent pair is still checked.
    assert create(sandbox, status="New", substatus="Accepted").status_code == 400


def test_create_status_as_sent_keeps_new_pending(sandbox_factory: Factory) -> None:
    as_sent = sandbox_factory(create_status="as-sent")
    got = create(as_sent).json()
    assert (got["status"], got["substatus"], got["acceptedDateTime"]) == ("New", "Pending", None)


# -- --throttle-shape ----------------------------------------------------------------------------


def test_the_documented_throttle_shape(sandbox_factory: Factory) -> None:
    documented = sandbox_factory(throttle_shape="documented", faults="429=1,retry-after=3", seed=1)
    response = http.get(documented.url, headers=documented.headers)
    assert response.status_code == 429
    assert response.json() == {
        "statusCode": 429,
        "message": "Rate limit is exceeded. Try again in 3 seconds.",
    }
    assert response.headers["retry-after"] == "3" and "x-ms-retry-after-ms" not in response.headers

    limited = sandbox_factory(throttle_shape="documented", rate_limit=1)
    answers = [http.get(limited.url, headers=limited.headers) for _ in range(3)]
    throttled = [a for a in answers if a.status_code == 429]
    assert throttled, [a.status_code for a in answers]
    wait = int(throttled[0].headers["retry-after"])
    assert throttled[0].json() == {
        "statusCode": 429,
        "message": f"Rate limit is exceeded. Try again in {wait} seconds.",
    }
    assert "x-ms-retry-after-ms" not in throttled[0].headers


def test_the_sandbox_throttle_shape_is_the_default(sandbox_factory: Factory) -> None:
    running = sandbox_factory(rate_limit=1)
    answers = [http.get(running.url, headers=running.headers) for _ in range(3)]
    throttled = next(a for a in answers if a.status_code == 429)
    assert throttled.json()["error"]["code"] == "tooManyRequests"
    assert "x-ms-retry-after-ms" in throttled.headers


# -- --next-link ------------------------------------------------------------------------------


def test_the_documented_next_link_has_another_path_and_is_served(sandbox_factory: Factory) -> None:
    documented = sandbox_factory(next_link="documented", page_size=2)
    made = [create(documented, externalReferenceId=f"CRM-{n}").json()["id"] for n in range(5)]
    seen: list[str] = []
    links: list[str] = []
    page = listed(documented).json()
    while True:
        seen += [r["id"] for r in page["value"]]
        link = page.get("@odata.nextLink")
        if link is None:
            break
        links.append(link)
        page = http.get(link, headers=documented.headers).json()
    assert seen == made and len(links) == 2
    host = httpx.URL(documented.url).netloc.decode()
    for link in links:
        assert link.startswith(f"http://{host}/v1.0/referrals?$skiptoken=")


def test_the_next_link_is_the_collection_by_default(sandbox_factory: Factory) -> None:
    running = sandbox_factory(page_size=1)
    create(running)
    create(running, externalReferenceId="CRM-2")
    assert listed(running).json()["@odata.nextLink"].startswith(running.url + "?$skiptoken=")


# -- values the service sends -------------------------------------------------------------------------------

REAL_SHAPED: dict[str, Any] = {
    "status": "None",
    "substatus": "None",
    "direction": "Incoming",
    "inviteContext": {"notes": "", "assistanceRequestCode": "Unknown"},
    "details": {
        "notes": "",
        "dealValue": 0,
        "currency": "USD",
        "closingDateTime": "2027-03-31T00:00:00Z",
        "requirements": {
            "solutions": [{"id": "SOL-1", "name": "Thing", "type": "None"}],
            "salesPlays": [{"id": "play-1", "name": "Whatever the service says"}],
        },
    },
    "phoneValidationStatus": "None",
}


def test_values_the_service_sends_are_accepted_in_a_create(sandbox: RunningSandbox) -> None:
    body = {k: v for k, v in REAL_SHAPED.items() if k not in ("direction", "status", "substatus")}
    got = create(sandbox, **body).json()
    assert got["inviteContext"]["assistanceRequestCode"] == "Unknown"
    assert got["details"]["requirements"]["solutions"][0]["type"] == "None"
    assert (
        got["details"]["requirements"]["salesPlays"] == REAL_SHAPED["details"]["requirements"]["salesPlays"]
    )


def test_a_real_shaped_referral_can_be_patched(sandbox: RunningSandbox) -> None:
    # As the service answers it: status None, no customer address, values the client never sends.
    doc = {**referral_body(), **REAL_SHAPED}
    doc["customerProfile"] = {"name": "Contoso Ltd", "size": "Unknown size"}
    seeded = sandbox.admin.seed(doc)
    url = f"{sandbox.url}/{seeded['id']}"
    headers = {**sandbox.headers, "Content-Type": "application/json-patch+json"}
    patch = [{"op": "replace", "path": "/name", "value": "Renamed"}]
    assert http.patch(url, json=patch, headers=headers).status_code == 204
    got = http.get(url, headers=sandbox.headers).json()
    assert got["name"] == "Renamed" and got["customerProfile"]["size"] == "Unknown size"
    assert (got["status"], got["substatus"]) == ("None", "None")
    # What a patch changes is still checked, at its path...
    bad = [{"op": "replace", "path": "/details/currency", "value": "Dollars"}]
    refused = http.patch(url, json=bad, headers=headers)
    assert refused.status_code == 400 and refused.json()["error"]["target"] == "details.currency"
    required = [{"op": "replace", "path": "/details/dealValue", "value": None}]
    refused = http.patch(url, json=required, headers=headers)
    assert refused.status_code == 400 and refused.json()["error"]["target"] == "details.dealValue"
    pair = [{"op": "replace", "path": "/status", "value": "Active"}]
    refused = http.patch(url, json=pair, headers=headers)
    assert refused.status_code == 400 and refused.json()["error"]["target"] == "substatus"
    # ...and spelled as documented; a status move out of None is allowed.
    move = [
        {"op": "replace", "path": "/status", "value": "active"},
        {"op": "replace", "path": "/substatus", "value": "Accepted"},
        {"op": "add", "path": "/details/requirements/solutions/-", "value": {"id": "S2", "type": "category"}},
    ]
    assert http.patch(url, json=move, headers=headers).status_code == 204
    got = http.get(url, headers=sandbox.headers).json()
    assert (got["status"], got["substatus"]) == ("Active", "Accepted") and got["acceptedDateTime"]
    assert got["details"]["requirements"]["solutions"][-1] == {"id": "S2", "type": "Category"}


# -- MS-RequestId -----------------------------------------------------------------------------------------


def test_a_repeated_ms_request_id_gets_the_first_answer(sandbox: RunningSandbox) -> None:
    # The default profile rehearses a service that replays (another body: test_sandbox_documented).
    first = create(sandbox, headers={"MS-RequestId": "retry-me"})
    again = create(sandbox, headers={"MS-RequestId": "retry-me"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["etag"] == first.headers["etag"]
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["request-id"] != first.headers["request-id"]  # a new request all the same
    other = create(sandbox, headers={"MS-RequestId": "another"})
    assert other.json()["id"] != first.json()["id"]
    assert sandbox.admin.stats()["referrals"] == 2 and sandbox.admin.stats()["replayed"] == 1
    # A refused create is not kept: the same id may succeed once the body is fixed.
    assert create(sandbox, headers={"MS-RequestId": "fix-me"}, type="Nonsense").status_code == 400
    assert create(sandbox, headers={"MS-RequestId": "fix-me"}).status_code == 201
    assert sandbox.admin.stats()["referrals"] == 3


def test_a_create_whose_answer_was_lost_is_answered_on_retry_with_the_same_request_id(
    sandbox_factory: Factory,
) -> None:
    lossy = sandbox_factory(faults="commit-then-500=1", seed=1)
    lost = create(lossy, headers={"MS-RequestId": "lost-answer"})
    assert lost.status_code == 500
    lossy.admin.set_faults("")
    retried = create(lossy, headers={"MS-RequestId": "lost-answer"})
    assert retried.status_code == 201
    assert ids(listed(lossy)) == [retried.json()["id"]]  # stored once, by the first request


def test_concurrent_posts_with_one_request_id_create_once(sandbox_factory: Factory) -> None:
    slow = sandbox_factory(faults="latency=50ms")

    async def post_many() -> list[httpx.Response]:
        async with httpx.AsyncClient(headers={**slow.headers, "MS-RequestId": "same"}, timeout=10) as client:
            return await asyncio.gather(*(client.post(slow.url, json=referral_body()) for _ in range(6)))

    answers = asyncio.run(post_many())
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert slow.admin.stats()["referrals"] == 1


def test_request_id_replay_can_be_turned_off(sandbox_factory: Factory) -> None:
    running = sandbox_factory(replay_request_ids=False)
    first = create(running, headers={"MS-RequestId": "same"}).json()
    again = create(running, headers={"MS-RequestId": "same"}).json()
    assert first["id"] != again["id"]


def test_replayed_answers_expire_after_the_window() -> None:
    now = [0.0]
    replays = Replays(window=900, clock=lambda: now[0])
    answer = [{"type": "http.response.start", "status": 201, "headers": []}, {"type": "http.response.body"}]

    async def go() -> tuple[Any, Any, Any]:
        assert await replays.first(("t", "id")) is None
        replays.done(("t", "id"), answer)
        now[0] = 899
        kept = await replays.first(("t", "id"))
        other_tenant = await replays.first(("u", "id"))
        replays.done(("u", "id"), None)
        now[0] = 901
        return kept, other_tenant, await replays.first(("t", "id"))

    kept, other_tenant, expired = asyncio.run(go())
    assert kept == answer and kept is not answer
    assert other_tenant is None and expired is None


# -- indexed look-ups ----------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["memory", "sqlite"])
def test_equality_look_ups_cost_their_matches(sandbox_factory: Factory, tmp_path: Path, state: str) -> None:
    running = sandbox_factory(db=tmp_path / "s.db" if state == "sqlite" else None)
    engagement = "0b5f2a9e-7d41-4c1e-9a3b-6f2d8c4e1a70"
    docs = [
        referral_body(externalReferenceId=f"EXT-{n}", engagementId=engagement if n < 3 else None)
        for n in range(300)
    ]
    seeded = running.admin.seed(docs)
    if state == "sqlite":
        running.restart()  # the index is rebuilt from the file
    by_ext = {d["externalReferenceId"]: d["id"] for d in seeded}

    def examined(filter_text: str) -> tuple[list[str], int]:
        before = running.admin.stats()["filterExamined"]
        found = ids(listed(running, filter_text))
        return found, running.admin.stats()["filterExamined"] - before

    assert examined("externalReferenceId eq 'EXT-7'") == ([by_ext["EXT-7"]], 1)
    assert examined(f"id eq '{by_ext['EXT-9']}'") == ([by_ext["EXT-9"]], 1)
    assert examined(f"engagementId eq '{engagement}'") == ([by_ext[f"EXT-{n}"] for n in range(3)], 3)
    either = "externalReferenceId eq 'EXT-20' or externalReferenceId eq 'EXT-10' or id eq 'nope'"
    assert examined(either) == ([by_ext["EXT-10"], by_ext["EXT-20"]], 2)
    assert examined("status eq 'New' and externalReferenceId eq 'EXT-5'") == ([by_ext["EXT-5"]], 1)
    assert examined("externalReferenceId eq 'EXT-5' and status eq 'Closed'") == ([], 1)
    # Not indexed: a scan, with the same answers.
    found, cost = examined("name eq 'Contoso ERP' and externalReferenceId ne 'EXT-1'")
    assert len(found) == 100 and cost == 300  # one page of matches
    # A changed externalReferenceId is found under its new value only.
    url = f"{running.url}/{by_ext['EXT-5']}"
    patch = [{"op": "replace", "path": "/externalReferenceId", "value": "EXT-FIVE"}]
    headers = {**running.headers, "Content-Type": "application/json-patch+json"}
    assert http.patch(url, json=patch, headers=headers).status_code == 204
    assert ids(listed(running, "externalReferenceId eq 'EXT-5'")) == []
    assert ids(listed(running, "externalReferenceId eq 'EXT-FIVE'")) == [by_ext["EXT-5"]]


# -- --profile documented -------------------------------------------------------------------------------


def test_the_documented_profile_sets_every_documented_switch() -> None:
    options = SandboxOptions(profile="documented")
    assert (options.filters, options.create_status, options.throttle_shape, options.next_link) == (
        "documented",
        "documented",
        "documented",
        "documented",
    )
    assert (options.closed, options.solution_areas) == ("frozen", "any")
    # Nothing documents that the service replays an MS-RequestId: off unless asked for.
    assert options.list_lag == 0 and options.replay_request_ids is False
    assert SandboxOptions(profile="documented", replay_request_ids=True).replay_request_ids is True
    assert SandboxOptions().replay_request_ids is True
    assert SandboxOptions().filters == "any" and SandboxOptions().create_status == "documented"
    assert (SandboxOptions().closed, SandboxOptions().solution_areas) == ("frozen", "fy24")
    with pytest.raises(ValueError, match="filters"):
        SandboxOptions(filters="some")


def test_all_documented_switches_together(sandbox_factory: Factory) -> None:
    strict = sandbox_factory(profile="documented", list_lag=0.5, page_size=1, faults="", seed=2)
    first = create(strict, headers={"MS-RequestId": "one"})
    assert first.json()["status"] == "Active"
    # No replay: the same request id creates again.
    assert create(strict, headers={"MS-RequestId": "one"}).json()["id"] != first.json()["id"]
    assert_invalid_filter(listed(strict, "externalReferenceId eq 'CRM-1'"))
    time.sleep(0.6)
    page = listed(strict, "status eq 'Active' and direction eq 'Outgoing'").json()
    assert len(page["value"]) == 1 and "/v1.0/referrals?$skiptoken=" in page["@odata.nextLink"]
    assert len(http.get(page["@odata.nextLink"], headers=strict.headers).json()["value"]) == 1
    strict.admin.set_faults("429=1")
    throttled = http.get(strict.url, headers=strict.headers)
    assert throttled.status_code == 429 and throttled.json()["statusCode"] == 429


def test_the_command_passes_every_switch_on(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[SandboxOptions] = []
    # The command loads its server when it runs: the patch goes where it is loaded from.
    monkeypatch.setattr(sandbox_server, "serve", lambda options, ready, certificate: seen.append(options))
    args = ["--profile", "documented", "--list-lag", "2.5", "--no-replay-request-ids", "--port", "0"]
    result = CliRunner().invoke(command.sandbox, args)
    assert result.exit_code == 0, result.output
    (options,) = seen
    assert (options.filters, options.create_status, options.throttle_shape, options.next_link) == (
        "documented",
        "documented",
        "documented",
        "documented",
    )
    assert options.list_lag == 2.5 and not options.replay_request_ids
    args = ["--filters", "documented", "--create-status", "as-sent", "--throttle-shape", "documented"]
    result = CliRunner().invoke(command.sandbox, [*args, "--next-link", "documented", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert (seen[1].filters, seen[1].create_status, seen[1].next_link) == (
        "documented",
        "as-sent",
        "documented",
    )
    assert seen[1].throttle_shape == "documented" and seen[1].list_lag == 0
    # A flag that contradicts the profile is a usage error, not silently overridden.
    conflict = CliRunner().invoke(command.sandbox, ["--profile", "documented", "--create-status", "as-sent"])
    assert conflict.exit_code == 2 and "--create-status" in conflict.output and len(seen) == 2
