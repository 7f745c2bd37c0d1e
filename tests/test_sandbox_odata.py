"""Listing referrals with OData over HTTP: the seed's example filters, ordering, paging."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from helpers import RunningSandbox, http, referral_body

# The fixtures (sandbox, sandbox_factory); harmless once tests/conftest.py imports them too.

Doc = dict[str, Any]


def _recent(minute: int) -> str:
    # Recent: an Incoming referral older than 14 days would be seeded as Closed/Expired.
    moment = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=1)
    return f"{moment + dt.timedelta(minutes=minute):%Y-%m-%dT%H:%M:%S}.0000000Z"


def _doc(
    name: str,
    *,
    status: str = "New",
    substatus: str = "Pending",
    direction: str = "Outgoing",
    type: str = "Shared",
    qualification: str = "SalesQualified",
    country: str = "US",
    team: tuple[str, ...] = (),
    contacts: tuple[str, ...] = (),
    engagement: str | None = None,
    created: str | None = None,
) -> Doc:
    body = referral_body(
        name=name,
        status=status,
        substatus=substatus,
        direction=direction,
        type=type,
        qualification=qualification,
        team=[{"firstName": e.split("@")[0], "email": e} for e in team],
    )
    body["customerProfile"]["address"]["country"] = country
    body["customerProfile"]["team"] = [
        {"email": e, "contactPreference": {"locale": "en-us"}} for e in contacts
    ]
    if engagement:
        body["engagementId"] = engagement
    if created:
        body["createdDateTime"] = created
    return body


ENGAGEMENT = "65edc0b5-3485-41b7-a17e-dfa9ef4706e2"  # the seed's example
DATASET = [
    _doc("a", direction="Incoming", type="Shared", country="US", engagement=ENGAGEMENT, created=_recent(1)),
    _doc(
        "b",
        direction="Incoming",
        type="Independent",
        qualification="Direct",
        country="US",
        created=_recent(2),
    ),
    _doc(
        "c",
        status="Active",
        substatus="Accepted",
        type="Shared",
        team=("r2d2@contoso.com", "c3po@contoso.com"),
        created=_recent(3),
        engagement=ENGAGEMENT,
    ),
    _doc(
        "d",
        status="Active",
        substatus="Accepted",
        type="Shared",
        team=("c3po@contoso.com",),
        created=_recent(4),
    ),
    _doc(
        "e",
        status="Active",
        substatus="Accepted",
        type="Independent",
        team=("r2d2@contoso.com",),
        country="DE",
        created=_recent(5),
    ),
    _doc(
        "f",
        direction="Incoming",
        status="New",
        substatus="Received",
        type="Shared",
        country="DE",
        contacts=("buyer@fabrikam.com",),
        created=_recent(6),
    ),
    _doc(
        "g",
        status="Closed",
        substatus="Won",
        qualification="MarketingQualified",
        country="GB",
        created=_recent(7),
    ),
    _doc("h", qualification="None", country="US", contacts=("sue@contoso.com",), created=_recent(8)),
]


@pytest.fixture
def listed(sandbox: RunningSandbox) -> RunningSandbox:
    # Seeded as given (Incoming ones, fixed times): the admin route bypasses the rules.
    sandbox.admin.seed(DATASET)
    return sandbox


def names(sandbox: RunningSandbox, **params: str) -> list[str]:
    response = http.get(sandbox.url, params=params, headers=sandbox.headers)
    assert response.status_code == 200, response.text
    assert "@odata.nextLink" not in response.json()
    return [r["name"] for r in response.json()["value"]]


def expected(predicate: Callable[[Doc], bool]) -> list[str]:
    return [d["name"] for d in DATASET if predicate(d)]


# The filters of seed 002 and of referrals-api.md, each with an independent
# oracle written in Python.
SEED_FILTERS: list[tuple[str, Callable[[Doc], bool]]] = [
    (
        "engagementId eq '65edc0b5-3485-41b7-a17e-dfa9ef4706e2'",
        lambda d: d.get("engagementId") == "65edc0b5-3485-41b7-a17e-dfa9ef4706e2",
    ),
    (
        "status eq 'New' and qualification eq 'SalesQualified'",
        lambda d: d["status"] == "New" and d["qualification"] == "SalesQualified",
    ),
    (
        "customerProfile/address/country eq 'US' and direction eq 'Incoming'",
        lambda d: d["customerProfile"]["address"]["country"] == "US" and d["direction"] == "Incoming",
    ),
    (
        "(type eq 'Shared' and direction eq 'Incoming')",
        lambda d: d["type"] == "Shared" and d["direction"] == "Incoming",
    ),
    (
        "(direction eq 'Incoming' and substatus eq 'Pending')",
        lambda d: d["direction"] == "Incoming" and d["substatus"] == "Pending",
    ),
    (
        "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' and "
        "team/any(t:t/email eq 'r2d2@contoso.com')",
        lambda d: (
            d["status"] == "Active"
            and d["direction"] == "Outgoing"
            and d["type"] == "Shared"
            and any(m["email"] == "r2d2@contoso.com" for m in d["team"])
        ),
    ),
]

MORE_FILTERS: list[tuple[str, Callable[[Doc], bool]]] = [
    ("status ne 'New'", lambda d: d["status"] != "New"),
    ("not (status eq 'New')", lambda d: d["status"] != "New"),
    ("not (status eq 'New') and type eq 'Shared'", lambda d: d["status"] != "New" and d["type"] == "Shared"),
    (
        "status eq 'Closed' or status eq 'Active' and type eq 'Independent'",
        lambda d: d["status"] == "Closed" or (d["status"] == "Active" and d["type"] == "Independent"),
    ),
    (
        "(status eq 'Closed' or status eq 'Active') and type eq 'Independent'",
        lambda d: d["status"] in ("Closed", "Active") and d["type"] == "Independent",
    ),
    (
        "team/any(t:t/email eq 'c3po@contoso.com') or customerProfile/address/country eq 'GB'",
        lambda d: (
            any(m["email"] == "c3po@contoso.com" for m in d["team"])
            or d["customerProfile"]["address"]["country"] == "GB"
        ),
    ),
    (
        "customerProfile/team/any(c: c/contactPreference/locale eq 'en-us' and c/email ne 'sue@contoso.com')",
        lambda d: any(c["email"] != "sue@contoso.com" for c in d["customerProfile"]["team"]),
    ),
    ("team/any()", lambda d: bool(d["team"])),
    ("not team/any()", lambda d: not d["team"]),
    (
        "team/all(t: t/email eq 'r2d2@contoso.com')",
        lambda d: all(m["email"] == "r2d2@contoso.com" for m in d["team"]),
    ),
    ("consent/consentToContact", lambda d: d["consent"]["consentToContact"] is True),
    ("details/dealValue eq 50000 and customerProfile/address/postalCode eq null", lambda d: True),
    ("statusReason ne null", lambda d: False),
]


@pytest.mark.parametrize(
    ("text", "oracle"), SEED_FILTERS + MORE_FILTERS, ids=[f for f, _ in SEED_FILTERS + MORE_FILTERS]
)
def test_filter_returns_exactly_the_matching_referrals(
    listed: RunningSandbox, text: str, oracle: Callable[[Doc], bool]
) -> None:
    assert names(listed, **{"$filter": text}) == expected(oracle)


def test_seed_example_queries_with_top_and_orderby(listed: RunningSandbox) -> None:
    got = names(
        listed,
        **{
            "$top": "10",
            "$filter": "(type eq 'Shared' and direction eq 'Incoming')",
            "$orderby": "createdDateTime desc",
        },
    )
    assert got == ["f", "a"]
    got = names(
        listed,
        **{
            "$filter": "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' "
            "and team/any(t:t/email eq 'r2d2@contoso.com')",
            "$orderby": "createdDateTime desc",
        },
    )
    assert got == ["c"]


def test_orderby(listed: RunningSandbox) -> None:
    everything = [d["name"] for d in DATASET]
    assert names(listed) == everything  # insertion order by default
    assert names(listed, **{"$orderby": "createdDateTime"}) == everything
    assert names(listed, **{"$orderby": "createdDateTime asc"}) == everything
    assert names(listed, **{"$orderby": "createdDateTime desc"}) == everything[::-1]
    # Touching a referral makes it the most recently updated.
    b = next(r for r in http.get(listed.url, headers=listed.headers).json()["value"] if r["name"] == "b")
    http.patch(
        b["links"]["self"]["uri"],
        json=[{"op": "replace", "path": "/statusReason", "value": "x"}],
        headers=listed.headers,
    )
    assert names(listed, **{"$orderby": "updatedDateTime desc"})[0] == "b"
    assert names(listed, **{"$orderby": "updatedDateTime asc"})[-1] == "b"


def test_top_skip_select_count(listed: RunningSandbox) -> None:
    assert names(listed, **{"$top": "3"}) == ["a", "b", "c"]
    assert names(listed, **{"$skip": "6"}) == ["g", "h"]
    assert names(listed, **{"$skip": "2", "$top": "2", "$orderby": "createdDateTime desc"}) == ["f", "e"]
    assert names(listed, **{"$top": "0"}) == []
    response = http.get(
        listed.url, params={"$select": "id,status,customerProfile", "$top": "2"}, headers=listed.headers
    ).json()
    assert [set(r) for r in response["value"]] == [{"id", "status", "customerProfile"}] * 2
    assert "@odata.count" not in response
    counted = http.get(
        listed.url,
        params={"$count": "true", "$top": "2", "$filter": "status eq 'New'"},
        headers=listed.headers,
    ).json()
    assert counted["@odata.count"] == len(expected(lambda d: d["status"] == "New"))
    assert len(counted["value"]) == 2


@pytest.mark.parametrize(
    ("params", "target"),
    [
        ({"$filter": "status eq"}, "$filter"),
        ({"$filter": "status eq 'New' and"}, "$filter"),
        ({"$filter": "(status eq 'New'"}, "$filter"),
        ({"$filter": "status = 'New'"}, "$filter"),
        ({"$filter": "status eq 'New"}, "$filter"),
        ({"$filter": "stats eq 'New'"}, "$filter"),
        ({"$filter": "customerProfile/adress/country eq 'US'"}, "$filter"),
        ({"$filter": "contains(name, 'a')"}, "$filter"),
        ({"$filter": "details/dealValue gt 5"}, "$filter"),
        ({"$filter": "status"}, "$filter"),
        # OData binds not tighter than eq: this is (not status) eq 'New'.
        ({"$filter": "not status eq 'New'"}, "$filter"),
        ({"$filter": "status/any(s: s eq 'x')"}, "$filter"),
        ({"$orderby": "name"}, "$orderby"),
        ({"$orderby": "createdDateTime sideways"}, "$orderby"),
        ({"$top": "-1"}, "$top"),
        ({"$top": "ten"}, "$top"),
        ({"$skip": "x"}, "$skip"),
        ({"$select": "id,nonsense"}, "$select"),
        ({"$count": "maybe"}, "$count"),
        ({"$expand": "team"}, "$expand"),
        ({"$skiptoken": "not-a-token"}, "$skiptoken"),
    ],
)
def test_malformed_queries_are_400_with_an_error_body(
    listed: RunningSandbox, params: dict[str, str], target: str
) -> None:
    response = http.get(listed.url, params=params, headers=listed.headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalidRequest" and error["target"] == target and error["message"]


def _all_pages(
    sandbox: RunningSandbox, params: dict[str, str], between: Callable[[int], None] | None = None
) -> tuple[list[str], list[int]]:
    seen: list[str] = []
    sizes: list[int] = []
    response = http.get(sandbox.url, params=params, headers=sandbox.headers)
    while True:
        assert response.status_code == 200, response.text
        payload = response.json()
        seen += [r["name"] for r in payload["value"]]
        sizes.append(len(payload["value"]))
        link = payload.get("@odata.nextLink")
        if not link:
            return seen, sizes
        assert link.startswith(sandbox.url + "?$skiptoken=")
        if between:
            between(len(sizes))
        response = http.get(link, headers=sandbox.headers)


@pytest.fixture
def small_pages(sandbox_factory: Callable[..., RunningSandbox]) -> RunningSandbox:
    running = sandbox_factory(page_size=3)
    running.admin.seed([referral_body(name=f"r{i:02d}") for i in range(10)])
    return running


def test_paging_returns_every_referral_once(small_pages: RunningSandbox) -> None:
    seen, sizes = _all_pages(small_pages, {})
    assert seen == [f"r{i:02d}" for i in range(10)] and sizes == [3, 3, 3, 1]
    seen, sizes = _all_pages(small_pages, {"$orderby": "createdDateTime desc", "$count": "true"})
    assert seen == [f"r{i:02d}" for i in range(10)][::-1]
    seen, sizes = _all_pages(small_pages, {"$top": "7"})
    assert seen == [f"r{i:02d}" for i in range(7)] and sizes == [3, 3, 1]
    seen, _ = _all_pages(small_pages, {"$filter": "name ne 'r04'", "$skip": "1", "$select": "name"})
    assert seen == [f"r{i:02d}" for i in range(1, 10) if i != 4]


@pytest.mark.parametrize("orderby", [None, "createdDateTime asc", "createdDateTime desc"])
def test_paging_is_stable_under_concurrent_inserts(small_pages: RunningSandbox, orderby: str | None) -> None:
    def insert(page: int) -> None:
        if page > 3:  # new referrals keep coming after the end: stop feeding them at some point
            return
        for j in range(4):
            response = http.post(
                small_pages.url, json=referral_body(name=f"new-{page}-{j}"), headers=small_pages.headers
            )
            assert response.status_code == 201

    seen, _ = _all_pages(small_pages, {"$orderby": orderby} if orderby else {}, between=insert)
    originals = [name for name in seen if name.startswith("r")]
    assert len(seen) == len(set(seen))
    expected_order = [f"r{i:02d}" for i in range(10)]
    assert originals == (expected_order[::-1] if orderby and orderby.endswith("desc") else expected_order)
    if not (orderby and orderby.endswith("desc")):
        assert len(seen) == 10 + 12  # in creation order, the new ones come after the pages read


def test_count_is_on_every_page_and_tokens_survive_other_options(small_pages: RunningSandbox) -> None:
    first = http.get(
        small_pages.url, params={"$count": "true", "$filter": "name ne 'r00'"}, headers=small_pages.headers
    ).json()
    assert first["@odata.count"] == 9
    # The token carries the query: other options sent with it are ignored.
    second = http.get(first["@odata.nextLink"] + "&$filter=name eq 'r05'", headers=small_pages.headers).json()
    assert second["@odata.count"] == 9 and [r["name"] for r in second["value"]] == ["r04", "r05", "r06"]
