"""Creates in doubt, settled by reading Partner Center: never sent twice on a guess.

A POST whose answer was lost (a time-out, a dropped connection, a 5xx after the
request went out) may have been stored, and Partner Center promises neither to
replay a repeated request id nor how soon a new referral shows in a listing. So
such a create is *in doubt*, and it is settled only by what Partner Center shows:

- a listing (the look-up the planner uses) that holds it: it was stored, and is
  taken as the step's answer;
- a listing read, in full, starting at least the consistency window after the
  answer was lost, that does not hold it: it was not stored, and may be sent again.

Until then the row waits, without holding a worker. One ``Watcher`` per run reads
for every create in doubt at once, a pass every second or two, back only as far as
the oldest of them (``find_existing``'s ``since``).

The window is learned (``bulkref.plan.doubts.Window``): the watcher also times a
sample of the run's confirmed creates until a listing shows them. A create not
shown yet says the lag is at least its age, so while the listing shows none of
them, no create in doubt can be shown absent. The same passes serve both.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bulkref.apply.reconcile import own_referral, second_referral
from bulkref.errors import ApiError
from bulkref.plan.doubts import Lag, Window
from bulkref.plan.payload import is_microsoft
from bulkref.plan.planner import moment
from bulkref.plan.remote import CLOCK_MARGIN, Lookup, find_existing

if TYPE_CHECKING:
    from bulkref.api.client import ReferralsClient

log = logging.getLogger("bulkref.apply.doubt")

Referral = dict[str, Any]

#: Confirmed creates timed at once; more are taken as these show.
SAMPLES_AT_ONCE = 8
#: Lags measured before sampling stops in a run with nothing in doubt (it starts again
#: with the first create in doubt, so that the window reflects the lag of the moment).
ENOUGH_SAMPLES = 20
#: Seconds between passes at least; a slow pass waits twice its own length after it.
PASS_PAUSE = 1.0
#: The service writes createdDateTime to the second or finer; read this much further back.
_ROUNDING = dt.timedelta(seconds=2)


class Absent:
    """A create in doubt shown absent: it may be sent again."""


ABSENT = Absent()


def _future() -> asyncio.Future[Referral | Absent]:
    return asyncio.get_running_loop().create_future()


@dataclass
class Doubt:
    """A create in doubt: the partner's referral (``external_id``) or step 2 of a chain
    (``engagement``: the referral in it that is not ``first_id``, Microsoft's when
    ``body`` is)."""

    key: str
    body: dict[str, Any]
    sent_at: float  # epoch seconds: first sent
    failed_at: float  # epoch seconds: the store may have happened up to then
    external_id: str | None = None
    engagement: str | None = None
    first_id: str | None = None
    settled: asyncio.Future[Referral | Absent] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def match(self, by_external_id: Any, by_engagement: Any) -> Referral | None:
        if self.external_id is not None:
            return own_referral(by_external_id.get(self.external_id, []))
        if self.engagement is not None:
            return second_referral(by_engagement.get(self.engagement, []), self.body, self.first_id)
        return None


@dataclass
class _Sample:
    referral_id: str
    external_id: str
    sent_at: float
    seen_at: float | None = None


class Watcher:
    """Settles the run's creates in doubt and times its confirmed creates (see the module)."""

    def __init__(
        self,
        client: ReferralsClient,
        lookup: Lookup,
        window: Window,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        on_note: Callable[[str], None] = lambda text: None,
        on_lag: Callable[[Lag], None] = lambda lag: None,
    ) -> None:
        self.client = client
        self.on_lag = on_lag
        self.lookup = lookup
        self.window = window
        self.clock = clock
        self.sleep = sleep
        self.on_note = on_note
        self._doubts: dict[str, Doubt] = {}
        self._samples: list[_Sample] = []
        self._wake = asyncio.Event()
        self._closed = False
        # How far the service's clock is ahead of this machine's, at least (from the
        # createdDateTime of confirmed creates): None until a create is confirmed.
        self._offset: float | None = None
        self._failed_passes = 0
        self._started = clock()

    # -- what the executor tells it --------------------------------------------------------------
    def doubt(self, doubt: Doubt) -> asyncio.Future[Referral | Absent]:
        known = self._doubts.get(doubt.key)
        if known is not None and not known.settled.done():
            return known.settled
        self._doubts[doubt.key] = doubt
        self._wake.set()
        return doubt.settled

    def confirmed(self, answer: Referral, sent_at: float, answered_at: float) -> None:
        """A create answered with what it stored: a sample of the listing's lag."""
        created = moment(answer.get("createdDateTime"))
        if created is not None:
            offset = created.timestamp() - answered_at
            self._offset = offset if self._offset is None else max(self._offset, offset)
        ext, rid = answer.get("externalReferenceId"), answer.get("id")
        if not (isinstance(ext, str) and ext and isinstance(rid, str) and rid) or is_microsoft(answer):
            return
        if not self._sampling() or sum(1 for s in self._samples if s.seen_at is None) >= SAMPLES_AT_ONCE:
            return
        self._samples.append(_Sample(rid.lower(), ext, sent_at))
        self._wake.set()

    def _sampling(self) -> bool:
        return self._pending() or len(self.window.seen) < ENOUGH_SAMPLES

    def _pending(self) -> bool:
        return any(not d.settled.done() for d in self._doubts.values())

    # -- what the run reads ----------------------------------------------------------------------
    def unseen_ages(self, now: float) -> list[float]:
        return [now - s.sent_at for s in self._samples if s.seen_at is None]

    def current_window(self) -> float:
        return self.window.seconds(self.unseen_ages(self.clock()))

    def lags(self) -> list[Lag]:
        """What this run measured and has not kept yet (the lags shown are kept as they are
        measured, through ``on_lag``): the age of each sample not shown yet where it says
        more than those shown (a lower bound)."""
        now = self.clock()
        largest = max(self.window.seen, default=0.0)
        unseen = [now - s.sent_at for s in self._samples if s.seen_at is None]
        return [Lag(now, age, False) for age in unseen if age > max(largest, 1.0)]

    def settle_all(self, outcome: Referral | Absent | None = None) -> None:
        """End every wait (the run stops or gives up): what is unsettled stays in doubt."""
        for d in self._doubts.values():
            if not d.settled.done():
                if outcome is None:
                    d.settled.cancel()
                else:
                    d.settled.set_result(outcome)

    # -- the passes ------------------------------------------------------------------------------
    async def run(self) -> None:
        while not self._closed:
            if not self._pending() and not any(s.seen_at is None for s in self._samples):
                self._wake.clear()
                await self._wake.wait()
                continue
            started = self.clock()
            try:
                await self._pass()
                self._failed_passes = 0
            except ApiError as e:
                # A read that failed after its own retries: the doubts stay; said once.
                self._failed_passes += 1
                if self._failed_passes == 3:
                    self.on_note(f"Note: creates in doubt cannot be looked up for now ({e}); still trying.")
                log.info("look-up of creates in doubt failed: %s", e)
            await self.sleep(max(PASS_PAUSE, 2 * (self.clock() - started)))

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    async def _pass(self) -> None:
        doubts = [d for d in self._doubts.values() if not d.settled.done()]
        samples = [s for s in self._samples if s.seen_at is None]
        if not doubts and not samples:
            return
        oldest = min([d.sent_at for d in doubts] + [s.sent_at for s in samples])
        if self._offset is None:
            since, margin = dt.datetime.fromtimestamp(oldest, dt.UTC), CLOCK_MARGIN
        else:  # in the service's time: a create is stored after it was sent
            since, margin = dt.datetime.fromtimestamp(oldest + self._offset, dt.UTC), _ROUNDING
        started = self.clock()
        found = await find_existing(
            self.client,
            self.lookup,
            external_ids=[d.external_id for d in doubts if d.external_id] + [s.external_id for s in samples],
            engagement_ids=[d.engagement for d in doubts if d.engagement],
            since=since,
            margin=margin,
        )
        ended = self.clock()
        try:
            for s in samples:
                docs = found.by_external_id.get(s.external_id, [])
                if any(str(d.get("id", "")).lower() == s.referral_id for d in docs):
                    s.seen_at = ended  # shown by then at the latest: the lag is at most this
                    self.window.observe(ended - s.sent_at)
                    # Kept at once, not at the end: a run killed later still leaves what it measured.
                    self.on_lag(Lag(ended, ended - s.sent_at, True))
            window = self.window.seconds([started - s.sent_at for s in samples if s.seen_at is None])
            for d in doubts:
                doc = d.match(found.by_external_id, found.by_engagement)
                if doc is not None:
                    if d.failed_at >= self._started:
                        # Stored after it was sent and shown by now: its lag was at most this.
                        self.window.observe(ended - d.sent_at)
                    d.settled.set_result(doc)
                elif started >= d.failed_at + window:
                    d.settled.set_result(ABSENT)
        finally:
            found.close()
