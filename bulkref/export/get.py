"""``bulkref get``: one referral and its engagement, read and shown as text or JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bulkref.api.client import NotFound
from bulkref.errors import ReferralNotFound
from bulkref.plan.payload import deal_type_of, is_microsoft
from bulkref.spec.jsonpaths import get_path

if TYPE_CHECKING:
    from bulkref.api.client import ReferralsClient, RetryPolicy

__all__ = [
    "ReferralNotFound",
    "ReferralView",
    "get_referral",
    "read_referral",
    "referral_json",
    "referral_text",
]


@dataclass(frozen=True)
class ReferralView:
    """One referral as read, and the referrals of its engagement (itself included)."""

    doc: dict[str, Any]
    engagement: list[dict[str, Any]]


def get_referral(
    referral_id: str, *, api_url: str | None = None, sandbox: bool = False, retry: RetryPolicy | None = None
) -> ReferralView:
    """The referral ``referral_id`` and its engagement's referrals; ``ReferralNotFound`` (exit 1)
    when Partner Center has none with that id."""
    from bulkref.api import target

    with target.resolve(api_url, sandbox) as where:

        async def run() -> ReferralView:
            async with where.client(**({"retry": retry} if retry is not None else {})) as client:
                return await read_referral(client, referral_id, where.describe())

        return asyncio.run(run())


async def read_referral(client: ReferralsClient, referral_id: str, source: str | None = None) -> ReferralView:
    try:
        doc = await client.get(referral_id)
    except NotFound:
        raise ReferralNotFound(
            f"No referral has the id {referral_id} in {source or client.base_url}: check "
            "the id (bulkref export lists every referral with its id)."
        ) from None
    engagement_id = doc.get("engagementId")
    engagement: list[dict[str, Any]] = [doc]
    if engagement_id:
        found = (await client.by_engagement_ids([engagement_id])).get(engagement_id, [])
        engagement = found if any(d.get("id") == doc.get("id") for d in found) else [doc, *found]
    return ReferralView(doc, engagement)


def referral_text(view: ReferralView) -> str:
    """A readable summary of one referral, for ``bulkref get --format text``."""
    doc = view.doc

    def at(path: str) -> Any:
        return get_path(doc, path)

    def joined(*parts: Any, sep: str = ", ") -> str:
        return sep.join(str(p) for p in parts if p not in (None, ""))

    others = [d for d in view.engagement if d.get("id") != doc.get("id")]
    microsoft = next((d for d in others if is_microsoft(d)), None)
    deal = "Microsoft's referral" if is_microsoft(doc) else deal_type_of(doc, view.engagement)
    if microsoft is not None and not is_microsoft(doc):
        help_needed = get_path(microsoft, "inviteContext/assistanceRequestCode")
        deal += f" (help needed: {help_needed})" if help_needed else ""
    value = at("details/dealValue")
    amount = f"{value:,.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else value
    closing = (at("details/closingDateTime") or "")[:10]

    def person(p: Mapping[str, Any]) -> str:
        return joined(
            joined(p.get("firstName"), p.get("lastName"), sep=" "), p.get("email"), p.get("phoneNumber")
        )

    contacts = [person(p) for p in (at("customerProfile/team") or []) if isinstance(p, dict)]
    team = [person(p) for p in (doc.get("team") or []) if isinstance(p, dict)]
    lines = [
        ("Referral ID", doc.get("id")),
        ("Engagement ID", doc.get("engagementId")),
        ("External ID", doc.get("externalReferenceId")),
        (
            "Organization",
            joined(
                doc.get("organizationName"),
                doc.get("organizationId") and f"({doc.get('organizationId')})",
                sep=" ",
            ),
        ),
        ("Direction", doc.get("direction")),
        (
            "Status",
            joined(doc.get("status"), doc.get("substatus"), sep=" / ")
            + (f" ({doc['statusReason']})" if doc.get("statusReason") else ""),
        ),
        ("Deal type", deal),
        ("Type", joined(doc.get("type"), doc.get("qualification"))),
        (
            "Customer",
            joined(
                at("customerProfile/name"),
                at("customerProfile/address/city"),
                at("customerProfile/address/country"),
            ),
        ),
        ("Contacts", "; ".join(contacts)),
        (
            "Deal value",
            joined(joined(amount, at("details/currency"), sep=" "), closing and f"closing {closing}"),
        ),
        ("Team", "; ".join(team)),
        ("Invite notes", at("inviteContext/notes")),
        ("Notes", at("details/notes")),
        ("Created", doc.get("createdDateTime")),
        ("Updated", doc.get("updatedDateTime")),
        ("ETag", doc.get("eTag")),
    ]
    width = max(len(label) for label, _ in lines)
    out = [str(doc.get("name") or "(no name)")]
    out += [f"  {label:<{width}}  {value}" for label, value in lines if value not in (None, "")]
    if others:
        out.append(f"  {'Engagement':<{width}}  {len(view.engagement)} referrals:")
        for d in others:
            who = "Microsoft" if is_microsoft(d) else (d.get("organizationName") or d.get("organizationId"))
            out.append(
                f"    {d.get('id')}  {who}  {joined(d.get('status'), d.get('substatus'), sep=' / ')}"
                f"  {d.get('direction') or ''}".rstrip()
            )
    return "\n".join(out)


def referral_json(view: ReferralView) -> str:
    """The referral as Partner Center returned it, pretty-printed."""
    return json.dumps(view.doc, ensure_ascii=False, indent=2)
