"""Reading what Partner Center holds for a sheet's rows (the planner's remote state).

Look-ups are batched OData queries (by External Reference ID, by referral id,
then the engagements of what was found, to see which deals are co-sell), each
as many ids as fit in a safe URL (about 45), run concurrently: a sheet of
100,000 rows costs about 2,200 reads, not 100,000.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from bulkref.plan.planner import Remote
from bulkref.validation.schema import Validated

if TYPE_CHECKING:
    from bulkref.api.client import ReferralsClient


async def fetch(client: ReferralsClient, validated: Validated) -> Remote:
    values = validated.values
    valid = values.loc[[r for r in values.index if r not in validated.invalid_rows]]
    ext_ids = _distinct(valid, "external_id")
    ids = _distinct(valid, "referral_id")
    by_ext, by_id = await asyncio.gather(client.by_external_ids(ext_ids), client.by_ids(ids))
    found: list[dict[str, Any]] = [d for docs in by_ext.values() for d in docs] + list(by_id.values())
    engagements = sorted({d["engagementId"] for d in found if d.get("engagementId")})
    by_engagement = await client.by_engagement_ids(engagements)
    return Remote(by_external_id=by_ext, by_id=by_id, by_engagement=by_engagement)


def _distinct(frame: Any, key: str) -> list[str]:
    if key not in frame.columns:
        return []
    return sorted({str(v) for v in frame[key] if v is not None})
