"""What a deal's exported row says of its deal type: blank where Partner Center's data does
not fit it the way the validator asks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bulkref.plan.payload import deal_defaults
from bulkref.spec.deals import SERVICES_KEYS, broken_rules

__all__ = ["fit_deal_type", "target_keys"]

# What the deal-type rules read of a row, besides the Target IDs.
_FACT_KEYS = ("deal_type", "referral_type", "share_with_microsoft", "help_needed", *SERVICES_KEYS)


def target_keys(counts: Mapping[str, int]) -> tuple[str, ...]:
    return tuple(f"target.{n}.id" for n in range(1, counts.get("target", 0) + 1))


def fit_deal_type(row: dict[str, Any], target_keys: Sequence[str] | None = None) -> dict[str, Any]:
    """``row`` with Deal Type blank where Partner Center's data does not fit it:

    - where the validator's deal-type rules would refuse the row
      (``bulkref.spec.deals``, the same rules the validator runs), e.g. an incoming
      invitation, Shared and carrying Help Needed;
    - where the referral leaves blank what the deal type implies
      (``payload.deal_defaults``: an incoming lead has no consent to share with
      Microsoft sellers), which a plan would otherwise fill in as a change.

    Every one of those rules needs a Deal Type, and a blank one on a row with a
    Referral ID leaves the deal as it is, so the row stays valid and unchanged.
    ``target_keys`` (the row's ``target.N.id`` columns, when the caller knows
    them) lets the rules see only the dozen cells they read, not all eighty."""
    deal = row.get("deal_type")
    if deal is None:
        return row
    if any(row.get(key) != value for key, value in deal_defaults(row).items()):
        row["deal_type"] = None
        return row
    facts = row if target_keys is None else {key: row.get(key) for key in (*_FACT_KEYS, *target_keys)}
    if broken_rules(facts):
        row["deal_type"] = None
    return row
