"""The sandbox where the documentation is silent or shows something a client may
not expect: each behaviour over loopback HTTP, mostly under ``profile="documented"``,
with the page it follows.

Pages cited: "Partner API REST headers" (MS-RequestId), "Create a referral"
(seed 000: the create example, "Creating a shared referral", the FY24 solution
area table, the status transitions), "Update a lead or opportunity (PATCH)"
(its example sends ``"value": "10000"``), "Get a list of referrals" (seed 002),
"Referral resources" (FY26 solution areas), and RFC 9110 for If-Match.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from helpers import RunningSandbox, http, referral_body

from bulkref.sandbox import command
from bulkref.sandbox import server as sandbox_server
from bulkref.sandbox.options import SandboxOptions

Factory = Callable[..., RunningSandbox]
PATCH_JSON = "application/json-patch+json"
MEMBER = {"firstName": "Ann", "lastName": "Lee", "email": "ann@partner.example"}


def create(running: RunningSandbox, headers: dict[str, str] | None = None, **changes: Any) -> httpx.Response:
    return http.post(
        running.url, json=referral_body(**changes), headers={**running.headers, **(headers or {})}
    )


def made(running: RunningSandbox, **changes: Any) -> dict[str, Any]:
    response = create(running, **changes)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def read(running: RunningSandbox, referral_id: str) -> httpx.Response:
    return http.get(f"{running.url}/{referral_id}", headers=running.headers)


def patch(
    running: RunningSandbox, referral_id: str, operations: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    sent = {**running.headers, "Content-Type": PATCH_JSON, **(headers or {})}
    return http.patch(f"{running.url}/{referral_id}", json=operations, headers=sent)


def put(running: RunningSandbox, doc: dict[str, Any], if_match: str, **changes: Any) -> httpx.Response:
    body = {k: v for k, v in doc.items() if k != "links"} | changes
    return http.put(
        f"{running.url}/{doc['id']}", json=body, headers={**running.headers, "If-Match": if_match}
    )


def listed(running: RunningSandbox, filter_text: str) -> httpx.Response:
    return http.get(running.url, params={"$filter": filter_text}, headers=running.headers)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["value"]]


def assert_error(response: httpx.Response, status: int, code: str, target: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert error["target"] == target, error
    return error


# -- 1. MS-RequestId replay is a switch, off under the documented profile -------------------------


def test_the_documented_profile_does_not_replay_a_repeated_request_id(sandbox_factory: Factory) -> None:
    """Partner API REST headers page: MS-RequestId is to be repeated on a retry after a
    time-out, but no page says the Referrals service answers such a retry with the first
    answer. The documented profile does not, so the same id creates twice."""
    strict = sandbox_factory(profile="documented")
    first = made(strict, headers={"MS-RequestId": "retry-me"})
    again = made(strict, headers={"MS-RequestId": "retry-me"})
    assert first["id"] != again["id"]
    stats = strict.admin.stats()
    assert stats["referrals"] == 2 and stats["replayed"] == 0


def test_replay_can_be_switched_on_under_the_documented_profile(sandbox_factory: Factory) -> None:
    """Partner API REST headers page: to rehearse a service that does honour MS-RequestId,
    replay_request_ids=True wins over the profile."""
    rehearsal = sandbox_factory(profile="documented", replay_request_ids=True)
    first = made(rehearsal, headers={"MS-RequestId": "retry-me"})
    again = made(rehearsal, headers={"MS-RequestId": "retry-me"})
    assert again == first
    assert rehearsal.admin.stats()["referrals"] == 1


def test_the_command_leaves_replay_to_the_profile_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """Partner API REST headers page (no replay promised): ``--replay-request-ids`` /
    ``--no-replay-request-ids`` keep working; without either the profile decides."""
    seen: list[SandboxOptions] = []
    # The command loads its server when it runs: the patch goes where it is loaded from.
    monkeypatch.setattr(sandbox_server, "serve", lambda options, ready, certificate: seen.append(options))
    for args, expected in [
        ([], True),
        (["--no-replay-request-ids"], False),
        (["--profile", "documented"], False),
        (["--profile", "documented", "--replay-request-ids"], True),
        (["--profile", "documented", "--no-replay-request-ids"], False),
    ]:
        result = CliRunner().invoke(command.sandbox, [*args, "--port", "0"])
        assert result.exit_code == 0, result.output
        assert seen[-1].replay_request_ids is expected, args
    text = " ".join(CliRunner().invoke(command.sandbox, ["--help"]).output.split())
    assert "off under --profile documented" in text and "requestIdReused" in text


# -- 2. a reused request id with another body is refused -----------------------------------------


def test_a_request_id_reused_for_another_body_is_refused(sandbox_factory: Factory) -> None:
    """Partner API REST headers page: the same MS-RequestId is for a retry of the same
    call. With replay on, another body under an answered id is a client bug: 400
    requestIdReused, not another row's answer."""
    running = sandbox_factory()  # the default profile replays
    first = made(running, headers={"MS-RequestId": "row-1"})
    refused = create(running, headers={"MS-RequestId": "row-1"}, externalReferenceId="CRM-2")
    error = assert_error(refused, 400, "requestIdReused", "MS-RequestId")
    assert "row-1" in error["message"]
    assert running.admin.stats()["referrals"] == 1
    # The same JSON value, however written (key order, spacing, 50000 as 50000.0), is the same body.
    body = referral_body()
    same = dict(reversed(list(body.items())))
    same["details"] = {**body["details"], "dealValue": 50000.0}
    raw = json.dumps(same, indent=2).encode()
    again = http.post(running.url, content=raw, headers={**running.headers, "MS-RequestId": "row-1"})
    assert again.status_code == 201 and again.json() == first
    # true is not 1: a changed type is another body.
    flipped = referral_body(consent={**body["consent"], "consentToContact": 1})
    sent = {**running.headers, "MS-RequestId": "row-1"}
    assert_error(http.post(running.url, json=flipped, headers=sent), 400, "requestIdReused", "MS-RequestId")
    # Another method or path under the same id is another request too.
    renamed = [{"op": "replace", "path": "/name", "value": "x"}]
    assert_error(
        patch(running, first["id"], renamed, {"MS-RequestId": "row-1"}),
        400,
        "requestIdReused",
        "MS-RequestId",
    )
    # A refused first request keeps nothing: the id may then carry a fixed body.
    assert create(running, headers={"MS-RequestId": "row-2"}, type="Nonsense").status_code == 400
    assert create(running, headers={"MS-RequestId": "row-2"}, externalReferenceId="CRM-2").status_code == 201


# -- 3. whose referral a connected create makes ------------------------------------------------------


def test_a_connected_referral_targeting_microsoft_is_microsofts(sandbox_factory: Factory) -> None:
    """Create a referral, "Creating a shared referral" section: create your Shared referral
    (target SolutionProfile), copy its engagementId, then "create another referral for
    Microsoft" with that engagementId and target BusinessProfileLocation msft, no
    organizationId. That second one is Microsoft's, not the partner's own."""
    strict = sandbox_factory(profile="documented")
    mine = made(strict, target=[{"type": "SolutionProfile", "id": "SOL-ABC-DEF"}])
    assert mine["organizationId"] == strict.options.organization_id
    assert (mine["status"], mine["substatus"]) == ("Active", "Accepted")
    theirs = made(
        strict,
        engagementId=mine["engagementId"],
        externalReferenceId=None,
        target=[{"type": "BusinessProfileLocation", "id": "msft"}],
    )
    assert (theirs["organizationId"], theirs["organizationName"]) == ("msft", "Microsoft")
    # As for the Microsoft referral of a co-sell: Outgoing, Microsoft's to accept.
    assert theirs["direction"] == "Outgoing"
    assert (theirs["status"], theirs["substatus"], theirs["acceptedDateTime"]) == ("New", "Pending", None)
    assert set(ids(listed(strict, f"engagementId eq '{mine['engagementId']}'"))) == {mine["id"], theirs["id"]}


def test_a_target_decides_only_on_a_connected_referral_and_must_agree_with_organization_id(
    sandbox_factory: Factory,
) -> None:
    """Create a referral, "Creating a shared referral": the msft target is shown on the
    connected referral only; organizationId, where sent, must name the same party."""
    strict = sandbox_factory(profile="documented")
    to_microsoft = [{"type": "BusinessProfileLocation", "id": "msft"}]
    # Not joining an engagement: the partner's own referral, whatever its target.
    mine = made(strict, target=to_microsoft)
    assert mine["organizationId"] == strict.options.organization_id
    # organizationId msft as well (the co-sell upgrade's step 2 sends it): Microsoft's.
    both = made(strict, engagementId=mine["engagementId"], organizationId="msft", target=to_microsoft)
    assert both["organizationId"] == "msft"
    # organizationId naming the partner while the target names Microsoft: refused, not guessed.
    own = strict.options.organization_id
    contradiction = create(strict, engagementId=mine["engagementId"], organizationId=own, target=to_microsoft)
    assert_error(contradiction, 400, "invalidRequest", "organizationId")


# -- 4. PATCH takes a number as text -------------------------------------------------------------------


def test_patch_takes_a_deal_value_as_text_and_stores_the_number(sandbox_factory: Factory) -> None:
    """Update a lead or opportunity (PATCH) example: {"op": "replace", "path":
    "/details/dealValue", "value": "10000"}. The resource holds a decimal, so the
    referral then reads back 10000, a number."""
    strict = sandbox_factory(profile="documented")
    referral = made(strict)
    operation = {"op": "replace", "path": "/details/dealValue", "value": "10000"}
    assert patch(strict, referral["id"], [operation]).status_code == 204
    value = read(strict, referral["id"]).json()["details"]["dealValue"]
    assert value == 10000 and isinstance(value, int)
    assert patch(strict, referral["id"], [{**operation, "value": "12500.50"}]).status_code == 204
    assert read(strict, referral["id"]).json()["details"]["dealValue"] == 12500.5
    # Nested, as part of a replaced object, too.
    details = {**referral["details"], "dealValue": "7000"}
    replaced = [{"op": "replace", "path": "/details", "value": details}]
    assert patch(strict, referral["id"], replaced).status_code == 204
    assert read(strict, referral["id"]).json()["details"]["dealValue"] == 7000
    # Text that is not a plain decimal is still refused, at its path.
    for text in ("ten thousand", "1e4", "NaN", "-5"):
        refused = patch(strict, referral["id"], [{**operation, "value": text}])
        assert_error(refused, 400, "invalidRequest", "details.dealValue")
    # Create a referral: every create example sends numbers; a create takes numbers only.
    details = {**referral_body()["details"], "dealValue": "10000"}
    assert_error(create(strict, details=details), 400, "invalidRequest", "details.dealValue")


# -- 5. ids and enumeration values without regard to case --------------------------------------------


def test_ids_are_found_in_any_case(sandbox_factory: Factory) -> None:
    """Get a referral by ID / Update a referral: ids are GUIDs, the same GUID in upper
    case. Get a list of referrals: $filter=engagementId eq '...' (the page's first
    example) matches it in any case."""
    strict = sandbox_factory(profile="documented")
    referral = made(strict)
    upper = referral["id"].upper()
    got = read(strict, upper)
    assert got.status_code == 200 and got.json()["id"] == referral["id"]
    renamed = [{"op": "replace", "path": "/name", "value": "Renamed"}]
    assert patch(strict, upper, renamed).status_code == 204
    current = read(strict, referral["id"]).json()
    # A PUT body repeating the ids in another case repeats them: nothing changes.
    same = {**current, "id": upper, "engagementId": current["engagementId"].upper()}
    assert put(strict, same, current["eTag"]).status_code == 200
    assert read(strict, referral["id"]).json()["engagementId"] == referral["engagementId"]
    engagement = referral["engagementId"]
    assert ids(listed(strict, f"engagementId eq '{engagement.upper()}'")) == [referral["id"]]
    # Joining an engagement named in upper case joins it, under its own spelling.
    joined = made(strict, engagementId=engagement.upper(), organizationId="msft")
    assert joined["engagementId"] == engagement


def test_undocumented_id_filters_match_in_any_case_where_the_profile_allows_them(
    sandbox_factory: Factory,
) -> None:
    """Get a list of referrals shows neither id nor externalReferenceId in a filter; where
    the sandbox takes them (filters any), they match as the ids do: without regard to case."""
    running = sandbox_factory()
    referral = made(running, externalReferenceId="CRM-Mixed-1")
    assert ids(listed(running, f"id eq '{referral['id'].upper()}'")) == [referral["id"]]
    assert ids(listed(running, "externalReferenceId eq 'crm-mixed-1'")) == [referral["id"]]
    assert ids(listed(running, "externalReferenceId ne 'CRM-MIXED-1'")) == []


def test_enumeration_filters_ignore_case_and_refuse_unknown_values(sandbox_factory: Factory) -> None:
    """Get a list of referrals: status eq 'New', direction eq 'Incoming', country eq 'US'.
    Values compare as bodies take them (without regard to case); a value the service does
    not know is 400, since an empty answer would read as "no such referral" and the
    client would create it again."""
    strict = sandbox_factory(profile="documented")
    referral = made(strict)
    for text in (
        "status eq 'active'",
        "status eq 'ACTIVE' and direction eq 'outgoing' and type eq 'shared'",
        "customerProfile/address/country eq 'us' and qualification eq 'salesqualified'",
    ):
        assert ids(listed(strict, text)) == [referral["id"]], text
    for text in (
        "status eq 'Bogus'",
        "substatus eq 'Acepted'",
        "direction eq 'Inbound'",
        "customerProfile/address/country eq 'USA'",
    ):
        refused = listed(strict, text)
        error = assert_error(refused, 400, "invalidRequest", "$filter")
        assert text.split("'")[1] in error["message"], text


# -- 6. PATCH is deduplicated only by a replayed request id -------------------------------------------


def test_the_same_add_patch_twice_adds_twice_without_replay(sandbox_factory: Factory) -> None:
    """Update a lead or opportunity (PATCH): add to /team/- appends. A service that does not
    replay MS-RequestId (the documented profile) applies two identical PATCHes twice, with
    or without a request id; the client must not send the same add twice."""
    strict = sandbox_factory(profile="documented")
    referral = made(strict)
    add = [{"op": "add", "path": "/team/-", "value": MEMBER}]
    for headers in ({}, {}, {"MS-RequestId": "add-1"}, {"MS-RequestId": "add-1"}):
        assert patch(strict, referral["id"], add, headers).status_code == 204
    team = read(strict, referral["id"]).json()["team"]
    assert len(team) == len(referral["team"]) + 4
    assert strict.admin.stats()["replayed"] == 0


def test_with_replay_a_repeated_patch_request_id_applies_once(sandbox_factory: Factory) -> None:
    """Partner API REST headers page: with replay on, a PATCH retried under the same
    MS-RequestId gets the first answer (the same ETag) and adds nothing more; without a
    request id each PATCH is a new one."""
    running = sandbox_factory(profile="documented", replay_request_ids=True)
    referral = made(running)
    add = [{"op": "add", "path": "/team/-", "value": MEMBER}]
    first = patch(running, referral["id"], add, {"MS-RequestId": "add-1"})
    again = patch(running, referral["id"], add, {"MS-RequestId": "add-1"})
    assert first.status_code == again.status_code == 204
    assert again.headers["etag"] == first.headers["etag"]
    assert len(read(running, referral["id"]).json()["team"]) == len(referral["team"]) + 1
    assert running.admin.stats()["replayed"] == 1
    assert patch(running, referral["id"], add).status_code == 204
    assert patch(running, referral["id"], add).status_code == 204
    assert len(read(running, referral["id"]).json()["team"]) == len(referral["team"]) + 3


# -- 7. If-Match -----------------------------------------------------------------------------------------


def test_if_match_names_the_opaque_tag_with_or_without_its_quotes(sandbox_factory: Factory) -> None:
    """Create a referral, example response: "eTag": "\\"00006d10-...\\"", a quoted (strong)
    entity tag. RFC 9110 13.1.1: If-Match uses the strong comparison. The tag without
    its quotes names the same opaque tag and matches; a weak W/"..." never does."""
    strict = sandbox_factory(profile="documented")
    referral = made(strict)
    tag = referral["eTag"]
    assert tag.startswith('"') and tag.endswith('"') and read(strict, referral["id"]).headers["etag"] == tag
    renamed = [{"op": "replace", "path": "/name", "value": "Quoted"}]
    answer = patch(strict, referral["id"], renamed, {"If-Match": tag})
    assert answer.status_code == 204
    bare = answer.headers["etag"].strip('"')  # a sheet cell that lost the quotes
    answer = patch(strict, referral["id"], renamed, {"If-Match": bare})
    assert answer.status_code == 204
    current = read(strict, referral["id"]).json()
    assert put(strict, current, current["eTag"].strip('"'), name="Bare").status_code == 200
    current = read(strict, referral["id"]).json()
    for refused in (f"W/{current['eTag']}", current["eTag"].upper(), bare):
        stale = patch(strict, referral["id"], renamed, {"If-Match": refused})
        assert_error(stale, 412, "preconditionFailed", "If-Match")
    # A list matches when a member does; * matches any.
    listed_tags = f'"other", {current["eTag"]}'
    assert patch(strict, referral["id"], renamed, {"If-Match": listed_tags}).status_code == 204
    assert patch(strict, referral["id"], renamed, {"If-Match": "*"}).status_code == 204


# -- 8. a Closed referral -----------------------------------------------------------------------------


def closed_referral(running: RunningSandbox) -> dict[str, Any]:
    referral = made(running)
    close = [
        {"op": "replace", "path": "/status", "value": "Closed"},
        {"op": "replace", "path": "/substatus", "value": "Lost"},
    ]
    assert patch(running, referral["id"], close).status_code == 204
    return read(running, referral["id"]).json()  # type: ignore[no-any-return]


def test_the_documented_profile_refuses_every_change_to_a_closed_referral(sandbox_factory: Factory) -> None:
    """Create a referral, status transitions: Closed may move only to Closed; whether the
    API refuses other changes is not documented ("no change after a terminal state" is
    the bulk-upload page's). The documented profile takes the harder reading: frozen."""
    strict = sandbox_factory(profile="documented")
    closed = closed_referral(strict)
    for operations in (
        [{"op": "replace", "path": "/substatus", "value": "Won"}],
        [{"op": "replace", "path": "/statusReason", "value": "budget cut"}],
    ):
        error = assert_error(patch(strict, closed["id"], operations), 400, "invalidRequest", "status")
        assert "Closed" in error["message"]
    assert_error(put(strict, closed, closed["eTag"], name="x"), 400, "invalidRequest", "status")


def test_an_open_closed_referral_follows_the_transition_table(sandbox_factory: Factory) -> None:
    """Create a referral, status transitions: Closed -> Closed with a closed substatus
    (Won, Lost, Declined, Expired). With closed="open" that, and other changes, are allowed;
    leaving Closed is not."""
    running = sandbox_factory(closed="open")
    closed = closed_referral(running)
    won = [{"op": "replace", "path": "/substatus", "value": "Won"}]
    assert patch(running, closed["id"], won).status_code == 204
    reason = [{"op": "replace", "path": "/statusReason", "value": "signed"}]
    assert patch(running, closed["id"], reason).status_code == 204
    got = read(running, closed["id"]).json()
    assert (got["status"], got["substatus"], got["statusReason"]) == ("Closed", "Won", "signed")
    reopen = [
        {"op": "replace", "path": "/status", "value": "Active"},
        {"op": "replace", "path": "/substatus", "value": "Accepted"},
    ]
    assert_error(patch(running, closed["id"], reopen), 400, "invalidRequest", "status")
    assert put(running, got, got["eTag"], name="Renamed").status_code == 200


# -- 9. Services co-sell solution areas and plays ------------------------------------------------------

FY26: dict[str, Any] = {
    "partnerRole": "Solution design",
    "solutionArea": "AI Business Solutions",
    "solutionPlay": "Any FY26 play",
}


def test_the_documented_profile_takes_any_solution_area_and_play(sandbox_factory: Factory) -> None:
    """Referral resources: the solution areas and plays were updated for FY26 ("ensure that
    you're passing the updated Solution Areas and Solution Plays"), and no public page lists
    them. The documented profile cannot tell a right value from a wrong one: it takes any."""
    strict = sandbox_factory(profile="documented")
    referral = made(strict, **FY26)
    assert (referral["solutionArea"], referral["solutionPlay"]) == ("AI Business Solutions", "Any FY26 play")
    play = [{"op": "replace", "path": "/solutionPlay", "value": "Another play"}]
    assert patch(strict, referral["id"], play).status_code == 204
    # The partner roles are not said to have changed: still checked.
    assert_error(
        create(strict, **{**FY26, "partnerRole": "Cheerleader"}), 400, "invalidRequest", "partnerRole"
    )


def test_the_default_profile_keeps_the_fy24_table(sandbox_factory: Factory) -> None:
    """Create a referral, the FY24 solution area / solution play table."""
    running = sandbox_factory()
    assert_error(create(running, **FY26), 400, "invalidRequest", "solutionArea")
    fy24 = {"solutionArea": "Modern Work", "solutionPlay": "Frontline workers"}
    assert made(running, **fy24)["solutionPlay"] == "Frontline workers"
    mismatch: dict[str, Any] = {"solutionArea": "Security", "solutionPlay": "Frontline workers"}
    assert_error(create(running, **mismatch), 400, "invalidRequest", "solutionPlay")


# -- 8 and 9 on the command line -------------------------------------------------------------------


def test_the_command_takes_and_explains_the_new_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Create a referral (transitions table: Closed -> Closed) and Referral resources (FY26):
    --closed and --solution-areas are flags; the documented profile fixes them."""
    seen: list[SandboxOptions] = []
    # The command loads its server when it runs: the patch goes where it is loaded from.
    monkeypatch.setattr(sandbox_server, "serve", lambda options, ready, certificate: seen.append(options))
    result = CliRunner().invoke(
        command.sandbox, ["--closed", "open", "--solution-areas", "any", "--port", "0"]
    )
    assert result.exit_code == 0, result.output
    assert (seen[-1].closed, seen[-1].solution_areas) == ("open", "any")
    result = CliRunner().invoke(command.sandbox, ["--profile", "documented", "--port", "0"])
    assert (seen[-1].closed, seen[-1].solution_areas) == ("frozen", "any")
    for flag, value in (("--closed", "open"), ("--solution-areas", "fy24")):
        conflict = CliRunner().invoke(command.sandbox, ["--profile", "documented", flag, value])
        assert conflict.exit_code == 2 and flag in conflict.output
    text = " ".join(CliRunner().invoke(command.sandbox, ["--help"]).output.split())
    assert "--closed [frozen|open]" in text and "--solution-areas [fy24|any]" in text
