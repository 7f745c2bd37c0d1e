"""The referrals collection as the service keeps it: create, read, replace, patch, list.

HTTP-free on purpose: ``app`` turns requests into these calls and their
results or ``ApiError`` into answers.
"""

from __future__ import annotations

import time
from typing import Any

from bulkref.sandbox import odata
from bulkref.sandbox.document import (
    NULL_DEFAULTS,
    READ_ONLY,
    Clock,
    Doc,
    etag_matches,
    format_ticks,
    new_etag,
    new_id,
    ordered,
    to_ticks,
)
from bulkref.sandbox.errors import ApiError, invalid, not_found
from bulkref.sandbox.rules import Rules
from bulkref.sandbox.store import DuplicateId, MemoryStore, Record

MICROSOFT_ID = "msft"
MICROSOFT_NAME = "Microsoft"
#: An incoming referral not answered within this long is archived as Closed/Expired.
ANSWER_WITHIN_TICKS = 14 * 24 * 3600 * 10_000_000


class Referrals:
    """``create_status``: ``documented`` (the partner's own new referral comes back
    Active/Accepted, accepted when created, as the documentation's create example
    answers) or ``as-sent`` (it keeps the status it was sent with). ``closed`` and
    ``solution_areas``: see ``Rules``."""

    def __init__(
        self,
        store: MemoryStore,
        organization_id: str,
        organization_name: str,
        create_status: str = "documented",
        closed: str = "frozen",
        solution_areas: str = "fy24",
    ) -> None:
        self.store = store
        self.organization_id = organization_id
        self.organization_name = organization_name
        self.create_status = create_status
        self.rules = Rules(closed=closed, solution_areas=solution_areas)
        self.clock = Clock()
        for row in store.rows():
            self.clock.observe(row.doc.get("updatedDateTime"))

    # -- reads ---------------------------------------------------------------------
    def get(self, referral_id: str) -> Record:
        record = self.store.get(referral_id)
        if record is None:
            raise not_found(referral_id)
        return record

    def list(self, query: odata.Query, page_size: int) -> odata.Page:
        lookups = odata.compile_filter(query.filter, self.rules.any_plays).lookups if query.filter else None
        rows = self.store.rows() if lookups is None else self.store.lookup(lookups)
        return odata.page(self.store.listed(rows), query, page_size, self.rules.any_plays)

    # -- writes --------------------------------------------------------------------
    def create(self, body: object) -> Record:
        body = self._object(body)
        if body.get("id") not in (None, ""):
            raise invalid("id is set by the service; leave it out of a new referral.", "id")
        content = self.rules.new_content(body)
        engagement_id = body.get("engagementId")
        joining = engagement_id not in (None, "")
        if joining and not isinstance(engagement_id, str):
            raise invalid("engagementId must be a string.", "engagementId")
        organization_id, organization_name = self._organization(body, joining, content.get("target"))

        now = self.clock.now()
        accepted = now if content["status"] == "Active" else None
        if self.create_status == "documented" and organization_id == self.organization_id:
            # "For outgoing referrals, [acceptedDateTime is the] same date as referral
            # creation datetime", and the create example posts New/Pending and gets
            # Active/Accepted back. A Closed one (a deal already lost) stays Closed.
            accepted = now
            if content["status"] != "Closed":
                content["status"], content["substatus"] = "Active", "Accepted"
        server: Doc = {
            "id": new_id(),
            "engagementId": engagement_id if joining else new_id(),
            "organizationId": organization_id,
            "organizationName": organization_name,
            "createdDateTime": now,
            "updatedDateTime": now,
            "acceptedDateTime": accepted,
            # Everything created through the API was created by the sandbox's
            # partner and so goes out from it, including the Microsoft referral
            # of a co-sell; Incoming ones come from /_sandbox/referrals.
            "direction": "Outgoing",
            "eTag": new_etag(),
        }
        doc = _assemble(server, content)

        def engagement_exists() -> None:
            if not joining:
                return
            stored = self.store.engagement(str(engagement_id))
            if stored is None:
                raise invalid(
                    f"Engagement {engagement_id} does not exist; to join an engagement, "
                    "use the engagementId of a referral already in it.",
                    "engagementId",
                )
            # One engagement, one spelling: the id as its referrals have it, in
            # whatever case it was sent (ids compare without regard to case).
            doc["engagementId"] = stored

        return self.store.insert(doc, check=engagement_exists)

    def replace(self, referral_id: str, body: object, if_match: str | None) -> Record:
        body = self._object(body)

        def change(current: Doc) -> Doc:
            if if_match is None:
                raise invalid(
                    "If-Match is required on PUT: send the eTag of the referral you read.", "If-Match"
                )
            _check_etag(current, if_match)
            return self._revise(current, self.rules.replaced_content(current, body))

        return self._update(referral_id, change)

    def patch(self, referral_id: str, operations: object, if_match: str | None) -> Record:
        def change(current: Doc) -> Doc:
            if if_match is not None:
                _check_etag(current, if_match)
            return self._revise(current, self.rules.patched_content(current, operations))

        return self._update(referral_id, change)

    def seed(self, body: object) -> Record:
        """Store a referral as given, bypassing the rules (an Incoming lead, a Closed
        deal, a time in the past); server fields that are missing are filled in."""
        if not isinstance(body, dict):
            raise invalid("A seeded referral is a JSON object.")
        doc = {k: v for k, v in body.items() if k != "links"}
        now = self.clock.now()
        doc.setdefault("id", new_id())
        doc.setdefault("engagementId", new_id())
        doc.setdefault("organizationId", self.organization_id)
        doc.setdefault(
            "organizationName",
            self.organization_name if doc["organizationId"] == self.organization_id else None,
        )
        doc.setdefault("createdDateTime", now)
        doc.setdefault("updatedDateTime", doc["createdDateTime"])
        doc.setdefault("direction", "Incoming")
        doc.setdefault("eTag", new_etag())
        if "status" not in doc and "substatus" not in doc:
            doc["status"], doc["substatus"] = "New", "Pending"
        _expire(doc)
        try:
            return self.store.insert(ordered({**dict.fromkeys(NULL_DEFAULTS), **doc}))
        except DuplicateId:
            raise ApiError(
                409, "invalidRequest", f"A referral with id {doc['id']} exists already.", "id"
            ) from None

    # -- helpers --------------------------------------------------------------------
    def _update(self, referral_id: str, change: Any) -> Record:
        record = self.store.update(referral_id, change)
        if record is None:
            raise not_found(referral_id)
        return record

    def _revise(self, current: Doc, content: Doc) -> Doc:
        server = {key: current.get(key) for key in READ_ONLY if key != "links"}
        server["updatedDateTime"] = self.clock.now()
        server["eTag"] = new_etag()
        if content.get("status") == "Active" and not server.get("acceptedDateTime"):
            server["acceptedDateTime"] = server["updatedDateTime"]
        return _assemble(server, content)

    def _organization(self, body: Doc, joining: bool, target: object) -> tuple[str, str | None]:
        """Whose referral a POST creates.

        A connected referral (one joining an engagement) whose ``target`` is
        Microsoft's business profile location is Microsoft's: the "Creating a
        shared referral" section sends it with ``target`` and ``engagementId`` and
        no ``organizationId``, and calls it the referral for Microsoft. An
        ``organizationId`` that names someone else on such a body is refused
        rather than guessed at (the documentation shows no such body).
        Otherwise the body's ``organizationId`` decides (``msft``: the Microsoft
        referral of a co-sell, as the upgrade example sends it with ``target: []``;
        another id: that organisation's), and without one it is the sandbox
        partner's own. The first referral of a shared deal names the other party
        as its target too (a SolutionProfile) and is the partner's own, so a
        target decides only on a connected referral."""
        wanted = body.get("organizationId")
        if wanted not in (None, "") and not isinstance(wanted, str):
            raise invalid("organizationId must be a string.", "organizationId")
        if joining and _targets_microsoft(target):
            if wanted in (None, "") or str(wanted).casefold() == MICROSOFT_ID:
                return MICROSOFT_ID, MICROSOFT_NAME
            raise invalid(
                f"organizationId {wanted} contradicts target BusinessProfileLocation msft: a connected "
                "referral whose target is Microsoft is Microsoft's referral. Send organizationId msft "
                "or leave it out.",
                "organizationId",
            )
        if wanted in (None, "") or str(wanted).casefold() == self.organization_id.casefold():
            return self.organization_id, self.organization_name
        assert isinstance(wanted, str)
        if wanted.casefold() == MICROSOFT_ID:
            return MICROSOFT_ID, MICROSOFT_NAME
        name = body.get("organizationName")
        return wanted, name if isinstance(name, str) else None

    def _object(self, body: object) -> Doc:
        if not isinstance(body, dict):
            raise invalid("The body must be a JSON object (a Referral).")
        return self.rules.canonical(body)


def _targets_microsoft(target: object) -> bool:
    """Whether a (checked, documented-spelling) ``target`` names Microsoft's
    business profile location, as the connected referral for Microsoft does."""
    return isinstance(target, list) and any(
        isinstance(t, dict)
        and t.get("type") == "BusinessProfileLocation"
        and str(t.get("id", "")).casefold() == MICROSOFT_ID
        for t in target
    )


def _assemble(server: Doc, content: Doc) -> Doc:
    return ordered({**dict.fromkeys(NULL_DEFAULTS), **server, **content})


def _check_etag(current: Doc, if_match: str) -> None:
    if not etag_matches(if_match, str(current.get("eTag"))):
        raise ApiError(
            412,
            "preconditionFailed",
            "The referral has changed since it was read (If-Match does not match its eTag); "
            "read it again and reapply the change.",
            "If-Match",
        )


def _expire(doc: Doc) -> None:
    """An incoming referral left New is archived as Closed/Expired after 14 days."""
    if doc.get("direction") != "Incoming" or doc.get("status") != "New":
        return
    due = to_ticks(doc.get("createdDateTime")) + ANSWER_WITHIN_TICKS
    if doc.get("expirationDateTime") is None:
        doc["expirationDateTime"] = format_ticks(due)
    if to_ticks(doc["expirationDateTime"]) <= time.time_ns() // 100:
        doc["status"], doc["substatus"] = "Closed", "Expired"
