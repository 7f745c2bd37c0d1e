"""Planning as ``bulkref plan`` and ``apply`` do: the pure planner (``bulkref.plan.planner``)
with the plumbing of a scan's index around it.

- The index is told the Referral IDs of the next rows before the planner looks
  them up (``ReferralIndex.read_ahead``): one query for a few hundred rows
  instead of one a row.
- A sheet of ``second_process.MIN_ROWS`` rows or more against a scan's index
  has its later rows planned by a second process (``bulkref.second_process``),
  forked at that moment: the sheet is read and Partner Center scanned, so
  nothing else is running. It opens its own connection to the index file (a
  SQLite connection must not cross a fork) and sends its rows' plans back;
  this process plans the first rows meanwhile. The plan is the one a single
  process makes (``tests/test_plan_fast.py`` checks): rows claiming one
  referral are still found across the whole sheet, afterwards. Fork only:
  spawning would pickle the whole sheet and import bulkref anew, which costs
  what it would save. Should the second process not start, die or fail, this
  one plans its rows itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bulkref.plan.model import Plan
from bulkref.plan.planner import Planned, Remote, errors_by_row, plan_of, plan_rows
from bulkref.second_process import SecondProcess, worth_it
from bulkref.validation.schema import Validated

__all__ = ["OWN_SHARE", "LaterRows", "later_rows", "plan"]

# The share of the rows this process plans: it also unpickles the second's plans.
OWN_SHARE = 0.47


def plan(
    validated: Validated,
    remote: Remote,
    *,
    source: str,
    fingerprint: str,
    api_url: str | None,
    created: str = "",
    overwrite_newer: bool = False,
) -> Plan:
    """``planner.plan``, the same plan, made with the index's read-ahead and, for a large
    sheet, a second process."""
    errors = errors_by_row(validated)
    later = later_rows(validated, errors, remote, overwrite_newer)
    try:
        mine = None if later is None else later.mine
        out, claims = plan_rows(validated, errors, remote, overwrite_newer, mine, _ahead(remote))
    except BaseException:
        if later is not None:
            later.child.stop()  # its rows are not wanted: this plan is not made
        raise
    if later is not None:
        theirs: Planned | None = later.child.result()
        more, their_claims = theirs or plan_rows(
            validated, errors, remote, overwrite_newer, later.theirs, _ahead(remote)
        )
        out += more
        claims += their_claims
    return plan_of(
        validated,
        remote,
        (out, claims),
        source=source,
        fingerprint=fingerprint,
        api_url=api_url,
        created=created,
        overwrite_newer=overwrite_newer,
    )


def _ahead(remote: Remote) -> Callable[[list[str]], None] | None:
    """The index's read-ahead, where the look-ups come from a scan's index."""
    return getattr(remote.by_id, "read_ahead", None)


@dataclass
class LaterRows:
    """The second process planning ``theirs`` while this one plans ``mine``."""

    mine: list[int]
    theirs: list[int]
    child: SecondProcess


def later_rows(
    validated: Validated, errors: Mapping[int, str], remote: Remote, overwrite_newer: bool
) -> LaterRows | None:
    """A second process planning the later rows, or None where one does not pay or cannot be
    forked safely (see the module)."""
    numbers = [int(r) for r in validated.values.index]
    if remote.index is None or not worth_it(len(numbers)):
        return None
    split = int(len(numbers) * OWN_SHARE)
    mine, theirs = numbers[:split], numbers[split:]
    args = (validated, errors, remote, overwrite_newer, theirs)
    child = SecondProcess.start(_plan_part, args, name="bulkref-plan-rows", spawn=False)
    return None if child is None else LaterRows(mine, theirs, child)


def _plan_part(
    validated: Validated, errors: Mapping[int, str], remote: Any, overwrite_newer: bool, rows: list[int]
) -> Planned:
    """In the second process: the plans and claims of ``rows``."""
    remote.index.reopen()
    return plan_rows(validated, errors, remote, overwrite_newer, rows, _ahead(remote))
