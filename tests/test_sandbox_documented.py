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

from collections.abc import Callable
from typing import Any

import httpx
from sandbox_fixture import RunningSandbox, http, referral_body

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
