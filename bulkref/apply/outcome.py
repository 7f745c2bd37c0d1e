"""What happened to each row when a plan was applied: one RowResult per input row."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ADOPTED = "adopted"  # a create Partner Center already held (another journal's run): its ids are kept
    PARTIAL = "partial"  # step 1 of a chain done, step 2 failed: a re-run performs only step 2
    CONFLICT = "conflict"  # the referral changed in Partner Center since the plan was made
    FAILED = "failed"
    # A create whose answer was lost, neither found in Partner Center nor shown absent yet:
    # a re-run looks it up first (bulkref.apply.doubt). Never sent again on a guess.
    IN_DOUBT = "in_doubt"
    SKIPPED = "skipped"  # invalid or blocked in the plan, or not reached (interrupted)

    @property
    def final(self) -> bool:
        """A re-run does not redo the row (the others: failed, partial, conflict, in doubt)."""
        return self in FINAL

    @property
    def counted_as(self) -> str:
        """The key of apply's summary (``--format json``) this outcome counts under."""
        return SUMMARY_OF[self]


#: Outcomes a re-run does not redo.
FINAL = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.ADOPTED})

# The summary keys of ``apply --format json`` (shared/docs/cli.md), and which outcomes count as each.
SUMMARY_OF = {
    Outcome.CREATED: "created",
    Outcome.UPDATED: "updated",
    Outcome.UNCHANGED: "unchanged",
    Outcome.ADOPTED: "unchanged",
    Outcome.PARTIAL: "failed",
    Outcome.CONFLICT: "failed",
    Outcome.FAILED: "failed",
    Outcome.IN_DOUBT: "in_doubt",
    Outcome.SKIPPED: "skipped",
}


@dataclass(frozen=True)
class RowResult:
    """One input row's outcome, as the results sheet shows it.

    ``referral_id``/``engagement_id`` are the partner's referral; ``linked_referral_id``
    is step 2's (the Microsoft or connected referral). The HTTP status, error and
    request id are those of the last call made for the row.
    """

    sheet: str
    row: int
    external_id: str | None
    action: str  # the plan's action: create | update | unchanged | blocked | invalid
    outcome: Outcome
    referral_id: str | None = None
    engagement_id: str | None = None
    linked_referral_id: str | None = None
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    timestamp: str | None = None  # ISO 8601, UTC, when the outcome was reached


#: The keys of a run's summary beyond SUMMARY_OF's: outcomes also counted on their own.
_ALSO = {Outcome.PARTIAL: "partial", Outcome.CONFLICT: "conflict", Outcome.ADOPTED: "adopted"}


class Tally:
    """A run's summary counted as its rows finish: what ``summarize`` gives at the end,
    at every moment on the way (``bulkref serve``'s live counters, a resumed run's rows
    an earlier run finished included)."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(
            ("created", "updated", "unchanged", "failed", "in_doubt", "skipped", "partial"), 0
        )
        self.counts.update(conflict=0, adopted=0)
        self.rows = 0

    def add(self, result: RowResult) -> None:
        self.rows += 1
        self.counts[SUMMARY_OF[result.outcome]] += 1
        also = _ALSO.get(result.outcome)
        if also is not None:
            self.counts[also] += 1


def summarize(results: Iterable[RowResult]) -> dict[str, int]:
    """The summary of a run's results (``apply --format json``'s ``summary``)."""
    tally = Tally()
    for r in results:  # one pass: a run's results are read from its journal each time they are iterated
        tally.add(r)
    return tally.counts
