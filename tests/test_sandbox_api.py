"""The sandbox's referrals API over real HTTP: the seeds' examples, the rules, PUT and PATCH."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import RunningSandbox, http, referral_body

# The fixtures (sandbox, sandbox_factory); harmless once tests/conftest.py imports them too.

SEEDS = json.loads((Path(__file__).parent / "data" / "seed_bodies.json").read_text(encoding="utf-8"))
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")


def create(sandbox: RunningSandbox, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(sandbox.url, json=body, headers=sandbox.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def assert_error(
    response: httpx.Response, status: int, code: str, target: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "target"}
    assert error["code"] == code
    assert error["message"]
    if target is not None:
        assert error["target"] == target, error
    return error


def keys_cover(actual: Any, documented: Any, path: str = "") -> None:
    """Every key of the documented example is in the answer, recursively."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), path
        missing = set(documented) - set(actual)
        assert not missing, f"{path or 'body'} lacks {missing}"
        for key, value in documented.items():
            keys_cover(actual[key], value, f"{path}.{key}")
    elif isinstance(documented, list) and documented and actual:
        keys_cover(actual[0], documented[0], f"{path}[0]")


# -- the seeds' examples ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_key", "response_key"),
    [
        ("create_request_000", "create_response_000"),
        ("create_request_001", "create_response_001"),
    ],
)
def test_seed_example_request_gives_the_documented_response_shape(
    sandbox: RunningSandbox, request_key: str, response_key: str
) -> None:
    sent = SEEDS[request_key]
    response = http.post(sandbox.url, json=sent, headers=sandbox.headers)
    assert response.status_code == 201, response.text
    got = response.json()
    keys_cover(got, SEEDS[response_key])
    # Server-set fields, in the service's formats.
    assert GUID.match(got["id"]) and GUID.match(got["engagementId"])
    assert got["organizationId"] == sandbox.options.organization_id
    assert got["organizationName"] == sandbox.options.organization_name
    assert TIME.match(got["createdDateTime"]) and got["updatedDateTime"] == got["createdDateTime"]
    assert re.match(r'^"[^"]+"$', got["eTag"]) and response.headers["etag"] == got["eTag"]
    assert got["direction"] == "Outgoing"
    assert got["externalReferenceId"] is None and got["expirationDateTime"] is None
    assert got["links"] == {
        "relatedReferrals": {
            "uri": f"{sandbox.url}?$filter=engagementId eq '{got['engagementId']}'",
            "method": "GET",
        },
        "self": {"uri": f"{sandbox.url}/{got['id']}", "method": "GET"},
    }
    assert response.headers["location"] == got["links"]["self"]["uri"]
    # The create example posts New/Pending and answers Active/Accepted; an outgoing
    # referral is accepted when created (the resources page).
    assert (sent["status"], sent["substatus"]) == ("New", "Pending")
    documented = SEEDS[response_key]
    assert (got["status"], got["substatus"]) == (documented["status"], documented["substatus"])
    assert got["acceptedDateTime"] == got["createdDateTime"]
    # What the client wrote comes back as written.
    for key in (
        "name",
        "statusReason",
        "qualification",
        "type",
        "target",
        "customerProfile",
        "consent",
        "details",
        "team",
        "inviteContext",
    ):
        assert got[key] == sent[key], key
    # And a GET reads the same document.
    again = http.get(got["links"]["self"]["uri"], headers=sandbox.headers)
    assert again.status_code == 200 and again.json() == got and again.headers["etag"] == got["eTag"]


def test_cosell_two_steps_of_seed_000(sandbox: RunningSandbox) -> None:
    partner = create(sandbox, SEEDS["cosell_step1_000"])
    # Property names are read without regard to case, then stored as documented.
    assert partner["consent"] == {
        "consentToToShareInfoWithOthers": True,
        "consentToContact": True,
        "consentToMicrosoftToContactSpecificPartners": True,
        "consentToShareReferralWithMicrosoftSellers": True,
    }
    assert partner["customerProfile"]["ids"] == [{"profileType": "External", "id": "9-XIPFFGUQI"}]
    # No status sent: the partner's own referral comes back accepted, as documented.
    assert partner["status"] == "Active" and partner["substatus"] == "Accepted"
    assert partner["mpnId"] == "<ENTER PARTNER_MPN_ID>" and partner["trackingInfo"] == {}  # kept as sent

    step2 = copy.deepcopy(SEEDS["cosell_step2_000"])
    step2["engagementId"] = partner["engagementId"]
    microsoft = create(sandbox, step2)
    assert microsoft["engagementId"] == partner["engagementId"]
    assert microsoft["id"] != partner["id"]
    assert (microsoft["organizationId"], microsoft["organizationName"]) == ("msft", "Microsoft")
    assert microsoft["direction"] == "Outgoing"
    assert microsoft["inviteContext"]["assistanceRequestCode"] == "ProofOfConceptOrDemo"
    # Microsoft's referral is Microsoft's to accept: it keeps the default New/Pending.
    assert (microsoft["status"], microsoft["substatus"]) == ("New", "Pending")

    related = http.get(microsoft["links"]["relatedReferrals"]["uri"], headers=sandbox.headers)
    assert related.status_code == 200
    assert {r["id"] for r in related.json()["value"]} == {partner["id"], microsoft["id"]}


def test_joining_an_unknown_engagement_is_refused(sandbox: RunningSandbox) -> None:
    response = http.post(
        sandbox.url,
        json=referral_body(engagementId="00000000-0000-0000-0000-000000000000"),
        headers=sandbox.headers,
    )
    assert_error(response, 400, "invalidRequest", "engagementId")
    assert sandbox.admin.stats()["referrals"] == 0


def test_a_shared_referral_for_another_partner_joins_the_engagement(sandbox: RunningSandbox) -> None:
    mine = create(sandbox, referral_body(target=[{"type": "SolutionProfile", "id": "SOL-ABC-DEF"}]))
    theirs = create(
        sandbox,
        referral_body(
            engagementId=mine["engagementId"],
            organizationId="other-partner",
            organizationName="Fabrikam",
            target=[{"type": "SolutionProfile", "id": "SOL-FABRIKAM"}],
        ),
    )
    assert (theirs["organizationId"], theirs["organizationName"]) == ("other-partner", "Fabrikam")
    assert theirs["engagementId"] == mine["engagementId"]


def test_list_answer_has_the_shape_of_seed_002(sandbox: RunningSandbox) -> None:
    documented = SEEDS["list_response_002"]
    sandbox.admin.seed(documented["value"][0])
    response = http.get(sandbox.url, params={"$count": "true"}, headers=sandbox.headers)
    assert response.status_code == 200
    got = response.json()
    assert set(got) >= {"@odata.context", "@odata.count", "value"}
    assert got["@odata.count"] == 1
    keys_cover(got["value"][0], documented["value"][0])
    assert got["value"][0]["direction"] == "Incoming"


# -- headers, auth, not found, media types ---------------------------------------------


def test_every_answer_carries_request_id_timestamp_and_the_echoed_client_request_id(
    sandbox: RunningSandbox,
) -> None:
    headers = {**sandbox.headers, "client-request-id": "8c4a04b7-3fd6-4f5b-93d6-2b8f4e0e1c55"}
    for response in (
        http.post(sandbox.url, json=referral_body(), headers=headers),
        http.get(sandbox.url + "/nope", headers=headers),
        http.get(sandbox.url, headers={"client-request-id": "x"}),
    ):
        assert GUID.match(response.headers["request-id"])
        assert response.headers["timestamp"].endswith("Z")
        assert response.headers["client-request-id"] in ("x", headers["client-request-id"])
    first = http.get(sandbox.url, headers=sandbox.headers).headers["request-id"]
    assert first != http.get(sandbox.url, headers=sandbox.headers).headers["request-id"]


@pytest.mark.parametrize("authorization", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
def test_a_call_without_a_bearer_token_is_401(sandbox: RunningSandbox, authorization: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    for response in (
        http.get(sandbox.url, headers=headers),
        http.post(sandbox.url, json=referral_body(), headers=headers),
    ):
        assert_error(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert sandbox.admin.stats()["referrals"] == 0


def test_unknown_referral_is_404(sandbox: RunningSandbox) -> None:
    url = sandbox.url + "/4111fffc-f9ee-4d53-bba6-569135228642"
    assert_error(http.get(url, headers=sandbox.headers), 404, "itemNotFound")
    assert_error(
        http.put(url, json=referral_body(), headers={**sandbox.headers, "If-Match": "*"}), 404, "itemNotFound"
    )
    assert_error(
        http.patch(url, json=[{"op": "replace", "path": "/name", "value": "x"}], headers=sandbox.headers),
        404,
        "itemNotFound",
    )
    assert_error(http.get(sandbox.root + "/v1.0/elsewhere", headers=sandbox.headers), 404, "itemNotFound")


def test_wrong_content_type_is_415(sandbox: RunningSandbox) -> None:
    created = create(sandbox, referral_body())
    headers = {**sandbox.headers, "Content-Type": "text/plain"}
    body = json.dumps(referral_body())
    assert_error(http.post(sandbox.url, content=body, headers=headers), 415, "invalidRequest", "Content-Type")
    url = created["links"]["self"]["uri"]
    assert_error(
        http.put(url, content=body, headers={**headers, "If-Match": created["eTag"]}),
        415,
        "invalidRequest",
        "Content-Type",
    )
    patch = json.dumps([{"op": "replace", "path": "/name", "value": "x"}])
    assert_error(http.patch(url, content=patch, headers=headers), 415, "invalidRequest", "Content-Type")
    ok = http.patch(url, content=patch, headers={**headers, "Content-Type": "application/json-patch+json"})
    assert ok.status_code == 204


def test_a_body_that_is_not_a_json_object_is_400(sandbox: RunningSandbox) -> None:
    for response in (
        http.post(sandbox.url, content="{not json", headers=sandbox.headers),
        http.post(sandbox.url, json=[referral_body()], headers=sandbox.headers),
    ):
        assert_error(response, 400, "invalidRequest")


# -- the rules of a body -------------------------------------------------------------


def _without(path: str) -> dict[str, Any]:
    body = referral_body()
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[part]
    del node[last]
    return body


@pytest.mark.parametrize(
    "path",
    [
        "type",
        "customerProfile",
        "consent",
        "details",
        "customerProfile.name",
        "customerProfile.address",
        "customerProfile.address.country",
        "details.dealValue",
        "details.currency",
        "details.closingDateTime",
    ],
)
def test_required_fields(sandbox: RunningSandbox, path: str) -> None:
    response = http.post(sandbox.url, json=_without(path), headers=sandbox.headers)
    error = assert_error(response, 400, "invalidRequest", path)
    assert "required" in error["message"]


def _with(path: str, value: Any) -> dict[str, Any]:
    body = referral_body(target=[{"type": "SolutionProfile", "id": "SOL-1"}])
    node: Any = body
    parts = re.findall(r"[^.\[\]]+", path)
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[parts[-1]] = value
    return body


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("type", "Both"),
        ("qualification", "Hot"),
        ("status", "Open"),
        ("substatus", "Sleeping"),
        ("customerProfile.size", "huge"),
        ("customerProfile.address.country", "USA"),
        ("customerProfile.team[0].email", 42),
        ("customerProfile.ids", [{"profileType": "Tax", "id": "1"}]),
        ("target[0].type", "Person"),
        ("details.currency", "DOLLARS"),
        ("details.dealValue", -1),
        ("details.dealValue", "50000"),
        ("details.closingDateTime", "next spring"),
        ("consent.consentToContact", "yes"),
        ("details.requirements", {"solutions": [{"id": "S", "type": "Product"}]}),
        (
            "details.requirements",
            {
                "additionalRequirements": {
                    "attributes": [{"type": "CustomerMarketplaceIntent", "id": "Maybe"}]
                }
            },
        ),
        ("inviteContext", {"assistanceRequestCode": "PleaseHelp"}),
        ("partnerRole", "Cheerleader"),
        ("team", {"firstName": "not a list"}),
    ],
)
def test_values_outside_the_documented_ones_are_400_with_their_path(
    sandbox: RunningSandbox, path: str, value: Any
) -> None:
    response = http.post(sandbox.url, json=_with(path, value), headers=sandbox.headers)
    error = assert_error(response, 400, "invalidRequest")
    expected = {
        "customerProfile.ids": "customerProfile.ids[0].profileType",
        "details.requirements": error["target"],  # checked below
        "inviteContext": "inviteContext.assistanceRequestCode",
    }.get(path, path)
    assert error["target"] == expected
    if path == "details.requirements":
        assert error["target"] in (
            "details.requirements.solutions[0].type",
            "details.requirements.additionalRequirements.attributes[0].id",
        )


def test_enumerations_are_read_without_regard_to_case(sandbox: RunningSandbox) -> None:
    got = create(
        sandbox,
        referral_body(status="active", substatus="ACCEPTED", type="shared", qualification="salesqualified"),
    )
    assert (got["status"], got["substatus"], got["type"], got["qualification"]) == (
        "Active",
        "Accepted",
        "Shared",
        "SalesQualified",
    )
    assert got["acceptedDateTime"] == got["createdDateTime"]


@pytest.mark.parametrize(
    ("status", "substatus"), [("New", "Won"), ("Active", "Pending"), ("Closed", "Accepted"), ("Closed", None)]
)
def test_status_and_substatus_must_go_together(
    sandbox: RunningSandbox, status: str, substatus: str | None
) -> None:
    body = referral_body(status=status)
    if substatus:
        body["substatus"] = substatus
    response = http.post(sandbox.url, json=body, headers=sandbox.headers)
    assert_error(response, 400, "invalidRequest", "substatus")


def test_a_post_may_not_choose_the_id(sandbox: RunningSandbox) -> None:
    body = referral_body(id="4111fffc-f9ee-4d53-bba6-569135228642")
    assert_error(http.post(sandbox.url, json=body, headers=sandbox.headers), 400, "invalidRequest", "id")


def test_read_only_fields_in_a_post_are_set_by_the_service(sandbox: RunningSandbox) -> None:
    got = create(
        sandbox, referral_body(direction="Incoming", eTag='"mine"', createdDateTime="2001-01-01T00:00:00Z")
    )
    assert got["direction"] == "Outgoing" and got["eTag"] != '"mine"' and got["createdDateTime"] > "2020"


# -- PUT -------------------------------------------------------------------------------


def _put(
    sandbox: RunningSandbox, current: dict[str, Any], if_match: str | None = None, **changes: Any
) -> httpx.Response:
    body = {k: v for k, v in current.items() if k != "links"}
    body.update(changes)
    headers = dict(sandbox.headers)
    if if_match is not None:
        headers["If-Match"] = if_match
    return http.put(current["links"]["self"]["uri"], json=body, headers=headers)


def test_put_needs_if_match(sandbox: RunningSandbox) -> None:
    created = create(sandbox, referral_body())
    assert_error(_put(sandbox, created, name="x"), 400, "invalidRequest", "If-Match")


def test_put_with_a_stale_etag_is_412(sandbox: RunningSandbox) -> None:
    created = create(sandbox, referral_body())
    first = _put(sandbox, created, created["eTag"], name="first")
    assert first.status_code == 200
    second = _put(sandbox, created, created["eTag"], name="second")
    assert_error(second, 412, "preconditionFailed", "If-Match")
    assert http.get(created["links"]["self"]["uri"], headers=sandbox.headers).json()["name"] == "first"


def test_put_replaces_and_changes_etag_and_updated_time(sandbox: RunningSandbox) -> None:
    created = create(sandbox, referral_body())
    response = _put(sandbox, created, created["eTag"], name="Renamed", status="Active", substatus="Accepted")
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["name"] == "Renamed" and got["status"] == "Active"
    assert got["eTag"] != created["eTag"] and response.headers["etag"] == got["eTag"]
    assert got["updatedDateTime"] > created["updatedDateTime"]
    assert got["createdDateTime"] == created["createdDateTime"] and got["id"] == created["id"]
    # Fields left out of a PUT are gone; a PUT without a status keeps the status.
    body = {k: v for k, v in got.items() if k not in ("links", "team", "status", "substatus")}
    again = http.put(
        got["links"]["self"]["uri"], json=body, headers={**sandbox.headers, "If-Match": got["eTag"]}
    )
    assert again.status_code == 200
    assert "team" not in again.json() and again.json()["status"] == "Active"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("links", {}),
        ("id", "other"),
        ("engagementId", "other"),
        ("organizationId", "msft"),
        ("direction", "Incoming"),
        ("createdDateTime", "2001-01-01T00:00:00Z"),
    ],
)
def test_put_cannot_change_what_the_service_sets(sandbox: RunningSandbox, field: str, value: Any) -> None:
    created = create(sandbox, referral_body())
    assert_error(_put(sandbox, created, created["eTag"], **{field: value}), 400, "invalidRequest", field)


def test_status_transitions(sandbox: RunningSandbox) -> None:
    created = create(sandbox, referral_body(status="Active", substatus="Accepted"))
    assert_error(
        _put(sandbox, created, created["eTag"], status="New", substatus="Pending"),
        400,
        "invalidRequest",
        "status",
    )
    won = _put(sandbox, created, created["eTag"], status="Closed", substatus="Won")
    assert won.status_code == 200
    closed = won.json()
    error = assert_error(_put(sandbox, closed, closed["eTag"], name="after"), 400, "invalidRequest")
    assert "Closed" in error["message"]


# -- PATCH -------------------------------------------------------------------------------


def _patch(
    sandbox: RunningSandbox, referral: dict[str, Any], operations: Any, **headers: str
) -> httpx.Response:
    return http.patch(
        referral["links"]["self"]["uri"],
        json=operations,
        headers={**sandbox.headers, "Content-Type": "application/json-patch+json", **headers},
    )


def test_patch_replace_and_add(sandbox: RunningSandbox) -> None:
    created = create(sandbox, referral_body())
    response = _patch(
        sandbox,
        created,
        [
            {"op": "replace", "path": "/status", "value": "Active"},
            {"op": "replace", "path": "/substatus", "value": "Accepted"},
            {"op": "add", "path": "/details/requirements", "value": {"industries": []}},
            {"op": "add", "path": "/details/requirements/industries/-", "value": {"id": "Retail"}},
            {
                "op": "add",
                "path": "/customerProfile/team/0",
                "value": {"firstName": "Ann", "email": "ann@c.com"},
            },
            {"op": "replace", "path": "/customerProfile/address/city", "value": "Redmond"},
        ],
    )
    assert response.status_code == 204 and response.content == b""
    got = http.get(created["links"]["self"]["uri"], headers=sandbox.headers).json()
    assert response.headers["etag"] == got["eTag"] != created["eTag"]
    assert got["updatedDateTime"] > created["updatedDateTime"]
    assert (got["status"], got["substatus"]) == ("Active", "Accepted")
    assert got["details"]["requirements"] == {"industries": [{"id": "Retail"}]}
    assert [m["firstName"] for m in got["customerProfile"]["team"]] == ["Ann", "Sue"]
    assert got["customerProfile"]["address"]["city"] == "Redmond"


def test_patch_returns_the_referral_when_asked(sandbox: RunningSandbox) -> None:
    created = create(sandbox, referral_body())
    response = _patch(
        sandbox,
        created,
        [{"op": "replace", "path": "/name", "value": "New name"}],
        Prefer="return=representation",
    )
    assert response.status_code == 200 and response.json()["name"] == "New name"
    assert response.headers["preference-applied"] == "return=representation"
    assert response.headers["etag"] == response.json()["eTag"]


@pytest.mark.parametrize(
    ("operations", "target"),
    [
        ([{"op": "remove", "path": "/name"}], "[0].op"),
        ([{"op": "move", "from": "/name", "path": "/statusReason"}], "[0].op"),
        ([{"op": "test", "path": "/name", "value": "x"}], "[0].op"),
        ([{"op": "replace", "path": "/id", "value": "x"}], "/id"),
        ([{"op": "replace", "path": "/eTag", "value": "x"}], "/eTag"),
        ([{"op": "replace", "path": "/engagementId", "value": "x"}], "/engagementId"),
        ([{"op": "add", "path": "/links/self", "value": {}}], "/links/self"),
        (
            [{"op": "replace", "path": "/createdDateTime", "value": "2001-01-01T00:00:00Z"}],
            "/createdDateTime",
        ),
        ([{"op": "replace", "path": "/inviteContext/notes", "value": "x"}], "/inviteContext/notes"),
        ([{"op": "replace", "path": "name", "value": "x"}], "[0].path"),
        ([{"op": "replace", "path": "/name"}], "[0].value"),
        ([{"op": "replace", "path": "/type", "value": "Both"}], "type"),
        ([{"op": "replace", "path": "/status", "value": "Closed"}], "substatus"),
        ({"op": "replace", "path": "/name", "value": "x"}, None),
        ([], None),
    ],
)
def test_patch_refusals(sandbox: RunningSandbox, operations: Any, target: str | None) -> None:
    created = create(sandbox, referral_body())
    assert_error(_patch(sandbox, created, operations), 400, "invalidRequest", target)
    unchanged = http.get(created["links"]["self"]["uri"], headers=sandbox.headers).json()
    assert unchanged["eTag"] == created["eTag"]


def test_patch_honours_if_match_when_sent(sandbox: RunningSandbox) -> None:
    created = create(sandbox, referral_body())
    op = [{"op": "replace", "path": "/name", "value": "a"}]
    assert _patch(sandbox, created, op, **{"If-Match": created["eTag"]}).status_code == 204
    assert_error(_patch(sandbox, created, op, **{"If-Match": created["eTag"]}), 412, "preconditionFailed")
    assert _patch(sandbox, created, op).status_code == 204  # without If-Match: last write wins


def test_every_write_changes_the_etag(sandbox: RunningSandbox) -> None:
    created = create(sandbox, referral_body())
    tags = {created["eTag"]}
    for i in range(3):
        response = _patch(sandbox, created, [{"op": "replace", "path": "/name", "value": "same"}])
        assert response.status_code == 204
        tags.add(response.headers["etag"])
        assert len(tags) == i + 2


def test_a_closed_referral_refuses_every_change(sandbox: RunningSandbox) -> None:
    closed = sandbox.admin.seed(referral_body(status="Closed", substatus="Lost", direction="Outgoing"))
    for operations in (
        [
            {"op": "replace", "path": "/status", "value": "Closed"},
            {"op": "replace", "path": "/substatus", "value": "Won"},
        ],
        [{"op": "replace", "path": "/statusReason", "value": "oops"}],
    ):
        error = assert_error(_patch(sandbox, closed, operations), 400, "invalidRequest", "status")
        assert "Closed" in error["message"]
    assert_error(_put(sandbox, closed, closed["eTag"]), 400, "invalidRequest", "status")


def test_incoming_referral_can_be_accepted(sandbox: RunningSandbox) -> None:
    incoming = sandbox.admin.seed({**referral_body(), "organizationName": "Contoso Company"})
    assert incoming["direction"] == "Incoming" and incoming["expirationDateTime"]
    response = _patch(
        sandbox,
        incoming,
        [
            {"op": "replace", "path": "/status", "value": "Active"},
            {"op": "replace", "path": "/substatus", "value": "Accepted"},
        ],
        Prefer="return=representation",
    )
    assert response.status_code == 200 and response.json()["acceptedDateTime"]


def test_an_incoming_referral_left_for_14_days_is_expired(sandbox: RunningSandbox) -> None:
    old = sandbox.admin.seed(referral_body(createdDateTime="2020-10-30T21:03:00.0000000Z"))
    assert (old["status"], old["substatus"]) == ("Closed", "Expired")
    assert old["expirationDateTime"] == "2020-11-13T21:03:00.0000000Z"
