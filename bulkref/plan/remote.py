"""Reading what Partner Center holds for a sheet's rows (the planner's remote state).

Every read that asks "which of these referrals exist already?" goes through
``find_existing``: the planner's, the check apply makes before it creates
anything, and the look-up of a create whose answer was lost. So the way that
question is put to the service (today: batched filtered queries; where the
service refuses such filters, another strategy) is decided in one place.

Look-ups are batched OData queries (by External Reference ID, by referral id,
by engagement), each as many ids as fit in a safe URL (about 45), run
concurrently: a sheet of 100,000 rows costs about 2,200 reads, not 100,000.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bulkref.plan.planner import Remote
from bulkref.validation.schema import Validated

if TYPE_CHECKING:
    from bulkref.api.client import ReferralsClient

Referral = dict[str, Any]


@dataclass
class Existing:
    """What Partner Center holds for the ids asked about: every id asked for is a
    key of its mapping (``[]`` / absent when none)."""

    by_external_id: dict[str, list[Referral]] = field(default_factory=dict)
    by_id: dict[str, Referral] = field(default_factory=dict)
    by_engagement: dict[str, list[Referral]] = field(default_factory=dict)


async def find_existing(
    client: ReferralsClient,
    *,
    external_ids: Iterable[str] = (),
    ids: Iterable[str] = (),
    engagement_ids: Iterable[str] = (),
) -> Existing:
    """The referrals Partner Center holds with these External Reference IDs, ids and
    engagements: the one way bulkref asks which referrals exist already."""
    ext, rid, eng = (sorted({v for v in values if v}) for values in (external_ids, ids, engagement_ids))

    async def nothing() -> dict[str, Any]:
        return {}

    by_ext, by_id, by_engagement = await asyncio.gather(
        client.by_external_ids(ext) if ext else nothing(),
        client.by_ids(rid) if rid else nothing(),
        client.by_engagement_ids(eng) if eng else nothing(),
    )
    return Existing(by_external_id=by_ext, by_id=by_id, by_engagement=by_engagement)


async def fetch(client: ReferralsClient, validated: Validated) -> Remote:
    values = validated.values
    valid = values.loc[[r for r in values.index if r not in validated.invalid_rows]]
    first = await find_existing(
        client, external_ids=_distinct(valid, "external_id"), ids=_distinct(valid, "referral_id")
    )
    found: list[Referral] = [d for docs in first.by_external_id.values() for d in docs]
    found += list(first.by_id.values())
    engagements = await find_existing(client, engagement_ids=[d.get("engagementId") for d in found])
    return Remote(
        by_external_id=first.by_external_id, by_id=first.by_id, by_engagement=engagements.by_engagement
    )


def _distinct(frame: Any, key: str) -> list[str]:
    if key not in frame.columns:
        return []
    return sorted({str(v) for v in frame[key] if v is not None})
