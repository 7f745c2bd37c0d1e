"""The planner on snapshots of remote state: every action, chains, diffs, patches."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import VALID_ROW, row

from bulkref.plan.model import Action, Plan, RowPlan
from bulkref.plan.payload import MICROSOFT_FILL, referral_doc, row_of
from bulkref.plan.planner import Remote, plan
from bulkref.sheets.template import build_workbook, save_workbook
from bulkref.validation.check import check_file

Make = Callable[..., Path]
_ids = itertools.count(1)


def served(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``doc`` as Partner Center would hold it: with the fields the service sets."""
    n = next(_ids)
    return {
        "id": f"ref-{n}",
        "engagementId": f"eng-{n}",
        "eTag": f'"etag-{n}"',
        "organizationId": "org-partner",
        "organizationName": "A. Datum",
        "direction": "Outgoing",
        "status": "New",
        **doc,
        **fields,
    }


def remote_of(*docs: dict[str, Any]) -> Remote:
    remote = Remote()
    for d in docs:
        if d.get("externalReferenceId"):
            remote.by_external_id.setdefault(d["externalReferenceId"], []).append(d)
        remote.by_id[d["id"]] = d
        remote.by_engagement.setdefault(d["engagementId"], []).append(d)
    return remote


def plan_of(path: Path, remote: Remote) -> Plan:
    return plan(check_file(path), remote, source=str(path), fingerprint="f", api_url="http://x")


def typed(path: Path, excel_row: int = 2) -> dict[str, Any]:
    values = check_file(path).values
    return {k: v for k, v in values.loc[excel_row].items()}


def only(p: Plan) -> RowPlan:
    assert len(p.rows) == 1
    return p.rows[0]


def test_a_new_deal_is_one_create(xlsx: Make) -> None:
    path = xlsx([VALID_ROW])
    r = only(plan_of(path, Remote()))
    assert r.action is Action.CREATE and r.row == 2 and r.external_id == "CRM-1"
    (step,) = r.steps
    assert (step.method, step.path) == ("POST", "/referrals")
    body = step.body
    assert body["externalReferenceId"] == "CRM-1" and body["type"] == "Shared"
    assert body["consent"]["consentToShareReferralWithMicrosoftSellers"] is True
    assert body["details"]["closingDateTime"] == "2027-03-31T00:00:00Z"
    assert body["details"]["dealValue"] == 50000
    assert body["customerProfile"]["team"][0]["email"] == "sue@contoso.com"
    assert "null" not in repr(body) and None not in body.values()


def test_a_private_deal_is_independent_and_not_shared(xlsx: Make) -> None:
    body = (
        only(plan_of(xlsx([row(Deal_Type="Private", Share_With_Microsoft_Sellers=None)]), Remote()))
        .steps[0]
        .body
    )
    assert body["type"] == "Independent"
    assert body["consent"]["consentToShareReferralWithMicrosoftSellers"] is False


def test_co_sell_is_a_chain_of_two_steps(xlsx: Make) -> None:
    path = xlsx(
        [
            row(
                Deal_Type="Co-sell",
                Help_Needed="ProofOfConceptOrDemo",
                **{"Invite Notes": "Please help with the demo."},
            )
        ]
    )
    r = only(plan_of(path, Remote()))
    assert r.action is Action.CREATE
    first, second = r.steps
    assert first.depends_on is None and "inviteContext" not in first.body
    assert second.depends_on == "referral" and second.fill == MICROSOFT_FILL
    body = second.body
    assert body["organizationId"] == "msft" and body["type"] == "Shared"
    assert body["target"] == [{"type": "BusinessProfileLocation", "id": "msft"}]
    assert body["inviteContext"]["assistanceRequestCode"] == "ProofOfConceptOrDemo"
    assert body["inviteContext"]["notes"] == "Please help with the demo."
    assert body["customerProfile"] == first.body["customerProfile"]


def test_shared_with_another_partner_is_a_chain_too(xlsx: Make) -> None:
    path = xlsx(
        [
            row(
                Deal_Type="Private",
                Share_With_Microsoft_Sellers="No",
                Referral_Type="Shared",
                **{"Target 1 Type": "SolutionProfile", "Target 1 ID": "SOL-34104-EBB"},
            )
        ]
    )
    first, second = only(plan_of(path, Remote())).steps
    assert first.body["target"] == [{"type": "SolutionProfile", "id": "SOL-34104-EBB"}]
    assert second.depends_on == "referral" and second.fill == {"/engagementId": "engagementId"}
    assert second.body["target"] == first.body["target"]


def test_a_row_naming_an_engagement_joins_it(xlsx: Make) -> None:
    r = only(plan_of(xlsx([row(**{"Engagement ID": "eng-77"})]), Remote()))
    (step,) = r.steps
    assert step.body["engagementId"] == "eng-77"


def test_what_already_exists_is_unchanged(xlsx: Make) -> None:
    path = xlsx([VALID_ROW])
    existing = served(referral_doc(typed(path)))
    r = only(plan_of(path, remote_of(existing)))
    assert r.action is Action.UNCHANGED and r.referral_id == existing["id"] and r.steps == ()


def test_changed_fields_become_a_patch_with_the_etag(xlsx: Make) -> None:
    before = xlsx([VALID_ROW])
    existing = served(referral_doc(typed(before)))
    after = xlsx([row(Deal_Value=62000, Status="Active", Substatus="Accepted")])
    r = only(plan_of(after, remote_of(existing)))
    assert r.action is Action.UPDATE
    assert {(c.field, c.old, c.new) for c in r.changes} == {
        ("Deal Value", 50000.0, 62000.0),
        ("Status", "New", "Active"),
        ("Substatus", "Pending", "Accepted"),
    }
    (step,) = r.steps
    assert (step.method, step.path) == ("PATCH", f"/referrals/{existing['id']}")
    assert step.if_match == existing["eTag"]
    assert sorted(step.body, key=lambda o: o["path"]) == [
        {"op": "replace", "path": "/details/dealValue", "value": 62000},
        {"op": "replace", "path": "/status", "value": "Active"},
        {"op": "replace", "path": "/substatus", "value": "Accepted"},
    ]


def test_blank_cells_leave_fields_as_they_are(xlsx: Make) -> None:
    existing = served(referral_doc(typed(xlsx([VALID_ROW]))))
    path = xlsx(
        [
            {
                "External Reference ID": "CRM-1",
                "Referral ID": existing["id"],
                "Status": "Closed",
                "Substatus": "Won",
            }
        ]
    )
    r = only(plan_of(path, remote_of(existing)))
    assert r.action is Action.UPDATE
    assert [c.field for c in r.changes] == ["Status", "Substatus"]
    assert {o["path"] for o in r.steps[0].body} == {"/status", "/substatus"}


def test_a_missing_parent_is_added_whole(xlsx: Make) -> None:
    existing = served(referral_doc(typed(xlsx([VALID_ROW]))))
    del existing["details"]["requirements"]
    r = only(plan_of(xlsx([row(Products="Azure; Dynamics365Enterprise")]), remote_of(existing)))
    # Both the new products and the marketplace intent the row still says go
    # into the missing object, as one operation.
    assert r.steps[0].body == [
        {
            "op": "add",
            "path": "/details/requirements",
            "value": {
                "additionalRequirements": {
                    "attributes": [{"type": "CustomerMarketplaceIntent", "id": "HaveNotDecided"}]
                },
                "products": [{"id": "Azure"}, {"id": "Dynamics365Enterprise"}],
            },
        }
    ]


def test_a_filled_group_replaces_the_list_and_keeps_service_fields(xlsx: Make) -> None:
    two = xlsx([row(**{"Customer Contact 2 Email": "joe@contoso.com"})])
    existing = served(referral_doc(typed(two)))
    existing["customerProfile"]["team"][0]["contactPreference"] = {"locale": "en-us"}
    r = only(plan_of(xlsx([VALID_ROW]), remote_of(existing)))
    assert r.action is Action.UPDATE
    assert [(c.field, c.old, c.new) for c in r.changes] == [
        ("Customer Contact 2 Email", "joe@contoso.com", None)
    ]
    (op,) = r.steps[0].body
    assert op["op"] == "replace" and op["path"] == "/customerProfile/team"
    assert len(op["value"]) == 1 and op["value"][0]["contactPreference"] == {"locale": "en-us"}


@pytest.mark.parametrize(
    ("remote_fields", "changes", "reason"),
    [
        (
            # Accepted a day after it was made: someone moved it, the sheet's New is a move back.
            {
                "status": "Active",
                "substatus": "Accepted",
                "createdDateTime": "2026-03-01T10:00:00.1234567Z",
                "acceptedDateTime": "2026-03-02T10:00:00Z",
            },
            {"Status": "New", "Substatus": "Pending"},
            "Active can only move to Closed",
        ),
        ({"status": "Active", "substatus": "Accepted", "direction": "Incoming"}, {}, "cannot go back to New"),
        (
            {"status": "Closed", "substatus": "Won"},
            {"Status": "New", "Substatus": "Pending"},
            "Closed can only stay so (another closed substatus): referral",
        ),
        ({}, {"Status": "Active", "Substatus": None}, "Status Active needs substatus Accepted"),
        ({}, {"Engagement ID": "another"}, "cannot move to another engagement"),
        (
            {"type": "Shared"},
            {"Deal Type": "Private", "Share With Microsoft Sellers": "No", "Referral Type": "Independent"},
            "cannot become Independent",
        ),
    ],
)
def test_illegal_changes_are_blocked_with_the_reason(
    xlsx: Make, remote_fields: dict[str, Any], changes: dict[str, Any], reason: str
) -> None:
    existing = served(referral_doc(typed(xlsx([VALID_ROW]))), **remote_fields)
    r = only(plan_of(xlsx([{**VALID_ROW, **changes}]), remote_of(existing)))
    assert r.action is Action.BLOCKED and r.steps == ()
    assert r.reason and reason in r.reason


def test_a_change_to_a_closed_referral_is_planned_with_a_note_not_refused(xlsx: Make) -> None:
    """Nothing in the API pages says a Closed referral takes no change (the transition table
    allows Closed -> Closed; "no change after a terminal state" is the UI's bulk upload): the
    change is planned, and said; Partner Center decides (a refusal is that row's failure)."""
    existing = served(referral_doc(typed(xlsx([VALID_ROW]))), status="Closed", substatus="Won")
    r = only(
        plan_of(
            xlsx([{**VALID_ROW, "Deal Value": 1, "Status": None, "Substatus": None}]), remote_of(existing)
        )
    )
    assert r.action is Action.UPDATE and [s.method for s in r.steps] == ["PATCH"]
    assert r.reason and "is Closed" in r.reason and "may refuse" in r.reason


def test_a_closed_referral_with_nothing_to_change_is_unchanged(xlsx: Make) -> None:
    path = xlsx([row(Status="Closed", Substatus="Won")])
    existing = served(referral_doc(typed(path)), status="Closed", substatus="Won")
    assert only(plan_of(path, remote_of(existing))).action is Action.UNCHANGED


def test_upgrading_partner_led_to_co_sell_adds_step_two(xlsx: Make) -> None:
    existing = served(referral_doc(typed(xlsx([VALID_ROW]))))
    path = xlsx([row(Deal_Type="Co-sell", Help_Needed="GeneralOrOther")])
    r = only(plan_of(path, remote_of(existing)))
    assert r.action is Action.UPDATE
    (step,) = r.steps
    assert step.key == "connected" and step.fill == {}
    assert step.body["engagementId"] == existing["engagementId"]
    assert step.body["inviteContext"]["invitedBy"] == {
        "organizationId": "org-partner",
        "organizationName": "A. Datum",
    }
    assert ("Deal Type", "Partner-led", "Co-sell") in {(c.field, c.old, c.new) for c in r.changes}


def test_an_existing_co_sell_is_unchanged_and_cannot_be_withdrawn(xlsx: Make) -> None:
    path = xlsx([row(Deal_Type="Co-sell", Help_Needed="GeneralOrOther")])
    values = typed(path)
    existing = served(referral_doc(values))
    msft = served(
        {
            "organizationId": "msft",
            "type": "Shared",
            "inviteContext": {"assistanceRequestCode": "GeneralOrOther"},
        },
        engagementId=existing["engagementId"],
    )
    remote = remote_of(existing, msft)
    assert only(plan_of(path, remote)).action is Action.UNCHANGED
    withdrawn = only(plan_of(xlsx([VALID_ROW]), remote))
    assert withdrawn.action is Action.BLOCKED and "cannot be withdrawn" in (withdrawn.reason or "")


def test_unknown_referral_id_and_ambiguous_external_id_are_blocked(xlsx: Make) -> None:
    r = only(plan_of(xlsx([row(**{"Referral ID": "nope"})]), Remote()))
    assert r.action is Action.BLOCKED and "not found" in (r.reason or "")
    doc = referral_doc(typed(xlsx([VALID_ROW])))
    r = only(plan_of(xlsx([VALID_ROW]), remote_of(served(doc), served(doc))))
    assert r.action is Action.BLOCKED and "add the Referral ID column" in (r.reason or "")


def test_invalid_rows_are_planned_as_invalid_with_the_errors(xlsx: Make) -> None:
    p = plan_of(xlsx([VALID_ROW, row(External_Reference_ID="CRM-2", Currency="Euros")]), Remote())
    assert [r.action for r in p.rows] == [Action.CREATE, Action.INVALID]
    assert "Currency" in (p.rows[1].reason or "") and p.rows[1].steps == ()
    assert p.summary == {"create": 1, "update": 0, "unchanged": 0, "blocked": 0, "invalid": 1}


def test_exported_referrals_plan_back_as_unchanged(tmp_path: Path) -> None:
    from bulkref.sheets.examples import EXAMPLES

    source = tmp_path / "source.xlsx"
    save_workbook(build_workbook(EXAMPLES), source)
    docs = []
    for excel_row in check_file(source).values.index:
        values = typed(source, excel_row)
        doc = served(referral_doc(values))
        docs.append(doc)
        if values["deal_type"] == "Co-sell":
            docs.append(
                served(
                    {
                        "organizationId": "msft",
                        "type": "Shared",
                        "inviteContext": {
                            "assistanceRequestCode": values["help_needed"],
                            "notes": values["invite_notes"],
                        },
                    },
                    engagementId=doc["engagementId"],
                )
            )
    remote = remote_of(*docs)
    # What an export writes: one row per partner referral, in the template's shape.
    rows = [row_of(d, remote.by_engagement[d["engagementId"]]) for d in docs if d["organizationId"] != "msft"]
    exported = tmp_path / "exported.xlsx"
    save_workbook(build_workbook([{k: v for k, v in r.items() if v is not None} for r in rows]), exported)
    p = plan_of(exported, remote)
    assert [r.action for r in p.rows] == [Action.UNCHANGED] * len(EXAMPLES), [
        (r.row, r.action, r.reason, r.changes) for r in p.rows
    ]


def test_the_plan_survives_json(xlsx: Make) -> None:
    p = plan_of(
        xlsx([VALID_ROW, row(External_Reference_ID="C", Deal_Type="Co-sell", Help_Needed="GeneralOrOther")]),
        Remote(),
    )
    assert Plan.from_json(p.as_json()) == p
    doc = p.as_json()
    assert set(doc["summary"]) == {"create", "update", "unchanged", "blocked", "invalid"}
    assert set(doc["rows"][0]) >= {
        "sheet",
        "row",
        "externalReferenceId",
        "action",
        "steps",
        "changes",
        "reason",
    }
    assert set(doc["rows"][1]["steps"][1]) >= {"method", "path", "body"}


def test_a_missing_required_column_makes_every_row_invalid(xlsx: Make) -> None:
    without_country = {k: v for k, v in VALID_ROW.items() if k != "Country"}
    p = plan_of(xlsx([without_country, {**without_country, "External Reference ID": "CRM-2"}]), Remote())
    assert [r.action for r in p.rows] == [Action.INVALID, Action.INVALID]
    assert all("Country" in (r.reason or "") for r in p.rows)


ACCEPTED_ON_CREATION = {
    "status": "Active",
    "substatus": "Accepted",
    "createdDateTime": "2026-03-01T10:00:00.1234567Z",
    "acceptedDateTime": "2026-03-01T10:00:00.1234567Z",
}


def test_an_outgoing_referral_accepted_on_creation_plans_unchanged_with_a_note(xlsx: Make) -> None:
    existing = served(referral_doc(typed(xlsx([VALID_ROW]))), **ACCEPTED_ON_CREATION)
    r = only(plan_of(xlsx([VALID_ROW]), remote_of(existing)))
    assert r.action is Action.UNCHANGED and r.steps == ()
    assert r.reason and "accepted this outgoing referral when it was created" in r.reason
    assert "New/Pending is left as it is" in r.reason


def test_accepted_on_creation_still_updates_the_other_fields_but_never_the_status(xlsx: Make) -> None:
    existing = served(referral_doc(typed(xlsx([VALID_ROW]))), **ACCEPTED_ON_CREATION)
    r = only(plan_of(xlsx([row(Deal_Value=75000)]), remote_of(existing)))
    assert r.action is Action.UPDATE and [c.field for c in r.changes] == ["Deal Value"]
    assert [op["path"] for op in r.steps[0].body] == ["/details/dealValue"]
    assert r.reason and "left as it is" in r.reason


def test_accepted_a_moment_after_creation_is_someone_s_move_and_stays_blocked(xlsx: Make) -> None:
    later = {**ACCEPTED_ON_CREATION, "acceptedDateTime": "2026-03-01T10:00:00.2234567Z"}
    existing = served(referral_doc(typed(xlsx([VALID_ROW]))), **later)
    r = only(plan_of(xlsx([VALID_ROW]), remote_of(existing)))
    assert r.action is Action.BLOCKED and "cannot go back to New" in (r.reason or "")


def test_a_sheet_closing_a_referral_accepted_on_creation_still_closes_it(xlsx: Make) -> None:
    existing = served(referral_doc(typed(xlsx([VALID_ROW]))), **ACCEPTED_ON_CREATION)
    r = only(plan_of(xlsx([row(Status="Closed", Substatus="Won")]), remote_of(existing)))
    assert r.action is Action.UPDATE and {c.field for c in r.changes} >= {"Status", "Substatus"}
    assert r.reason is None
