"""What a deal type demands of a row, said once for the validator and the export.

Each rule is a predicate over a row's facts that holds where the row breaks
it. The facts are boolean pandas Series in the validator (one value per row)
and numpy booleans in the export (one row), so that ``&``, ``|`` and ``~``
mean the same thing in both: plain Python bools would not do, as ``~True`` is
``-2``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from bulkref.problems import ProblemCode

SERVICES_KEYS = ("partner_role", "solution_area", "solution_play")


@dataclass(frozen=True)
class DealFacts:
    """What the deal-type rules look at, for one row or for every row at once."""

    private: Any  # Deal Type is Private
    shared_deal: Any  # Partner-led or Co-sell: shared with Microsoft sellers
    cosell: Any
    deal_known: Any  # a Deal Type is given
    share_yes: Any  # Share With Microsoft Sellers: Yes
    share_no: Any  # ... and No (blank is neither)
    help: Any  # Help Needed is filled
    independent: Any  # Referral Type is Independent
    shared_type: Any  # Referral Type is Shared
    targeted: Any  # a Target ID is filled
    services: Any  # any of the Services co-sell trio is filled


Rule = Callable[[DealFacts], Any]

#: Where a row breaks each rule (True = broken).
DEAL_TYPE_RULES: Mapping[ProblemCode, Rule] = {
    ProblemCode.PRIVATE_SHARED_WITH_MICROSOFT: lambda f: f.private & f.share_yes,
    ProblemCode.NEEDS_SHARE_WITH_MICROSOFT: lambda f: f.shared_deal & f.share_no,
    ProblemCode.COSELL_NEEDS_HELP: lambda f: f.cosell & ~f.help,
    ProblemCode.HELP_WITHOUT_COSELL: lambda f: f.help & f.deal_known & ~f.cosell,
    ProblemCode.REFERRAL_TYPE_MISMATCH: lambda f: f.shared_deal & f.independent,
    ProblemCode.SHARED_NEEDS_TARGET: lambda f: f.private & f.shared_type & ~f.targeted,
    ProblemCode.SERVICES_COSELL_NOT_COSELL: lambda f: f.services & f.deal_known & ~f.cosell,
}


def row_facts(row: Mapping[str, Any]) -> DealFacts:
    """The facts of one row (column key -> typed value, None for blank)."""
    return DealFacts(*map(np.bool_, _fact_values(row)))


def _fact_values(row: Mapping[str, Any]) -> tuple[bool, ...]:
    """``row_facts`` as plain bools, in ``DealFacts``'s field order."""
    deal, rtype, share = row.get("deal_type"), row.get("referral_type"), row.get("share_with_microsoft")
    # The value first: most cells of an exported row are blank, and this runs for every row.
    targeted = any(v is not None and k.startswith("target.") and k.endswith(".id") for k, v in row.items())
    return (
        deal == "Private",
        deal in ("Partner-led", "Co-sell"),
        deal == "Co-sell",
        deal is not None,
        share is True,
        share is False,
        row.get("help_needed") is not None,
        rtype == "Independent",
        rtype == "Shared",
        targeted,
        any(row.get(k) is not None for k in SERVICES_KEYS),
    )


def broken_rules(row: Mapping[str, Any]) -> list[ProblemCode]:
    """The deal-type rules one row breaks."""
    return list(_broken(_fact_values(row)))


@cache  # eleven facts: a few dozen combinations occur, and an export asks for every row
def _broken(values: tuple[bool, ...]) -> tuple[ProblemCode, ...]:
    facts = DealFacts(*map(np.bool_, values))
    return tuple(code for code, broken in DEAL_TYPE_RULES.items() if bool(broken(facts)))
