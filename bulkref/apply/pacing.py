"""Client-side pacing shared by every call of a run.

Partner Center throttles per partner tenant and publishes no limit for
Referrals, so a 429 may be a passing refusal as well as a limit. Two regimes:

- **Occasional 429s** (the run is not paced): the throttled call waits its own
  Retry-After (bulkref.api.client.RetryPolicy) and is sent again; the other
  calls go on at the pace the service was accepting. Pausing the whole run for
  each of them, and counting the pause against the pace, once slowed a run with
  1% of its calls answered 429 sixty-five-fold.
- **Sustained throttling**: when at least ``SUSTAINED`` of the last ``SAMPLE``
  answers are 429s, the service has a limit and the run is over it. From then
  on every call waits on the pace:

  - a 429 pauses the whole run until its Retry-After has passed;
  - it also sets the pace. The first time, half of what succeeded over the
    last second (that second was inflated by the service's burst allowance, now
    spent); from then on, what is accepted between 429s (the time paused for a
    Retry-After not counted) is the service's real rate, and each further 429
    paces the run a tenth under it, at most once per tenth of a second (calls
    answered together were sent together and say one thing);
  - the pace is held for a moment, then rises by 2% a second, so a run stays
    close to the allowed rate and finds out when the limit is lifted. It never
    falls under ``FLOOR``.
  - until the second cut the pace is only a guess from the burst, and it may
    be far under the limit: a run whose first calls were look-ups, then a
    pause while the sheet was planned, measured its burst over that pause and
    paced at half the limit, and 2% a second took half a minute to recover.
    So until a second 429 has measured the real rate, the pace rises by 15% a
    second after the hold: it finds the limit within seconds, and the 429s
    that cost are the ones any cut costs.

A 429 whose Retry-After is 0 asks for no wait: a passing refusal, not a
limit, and changes nothing. A call takes its start time when it wakes, not
when it starts waiting, so a cut slows the calls already queued too. Without
sustained 429s there is no pace at all: only the run's concurrency bounds it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

WINDOW = 1.0  # seconds of successes that measure what the service lets through
CUT = 0.9  # continue this far under the measured rate, or the pace, after a 429
CUT_GAP = 0.1  # seconds: 429s closer together than this are one signal
HOLD = 2.0  # seconds the pace stays put after a cut
GROWTH = 0.02  # per second, after the hold, without a 429
PROBE_GROWTH = 0.15  # per second, after the hold, while only the first (guessed) pace is set
FLOOR = 0.5  # calls per second: never slower than this
SAMPLE = 20  # the last answers that tell occasional 429s from a limit
SUSTAINED = 0.4  # this share of 429s among them is a limit: 8 of 20 (at 5% random 429s, 1 in 250,000)


class Pacer:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.rate: float | None = None  # calls per second; None: unpaced
        self._next = 0.0  # the earliest start of the next call, when paced
        self._resume = 0.0  # no call before this (a Retry-After)
        self._last_cut = float("-inf")
        self._last_growth = 0.0
        self._done: deque[float] = deque()
        self._first: float | None = None  # the first call: a young run measures over its age
        self._since_cut = 0  # calls accepted since the last cut
        self._cuts = 0  # the first is a guess from the burst; the second measures the limit
        self._cut_resume = 0.0  # the Retry-After end of the last cut: the pace is measured from then
        self._recent: deque[bool] = deque(maxlen=SAMPLE)  # True: a 429
        self.throttled_count = 0
        self.notes: list[str] = []  # for the progress display

    async def wait(self) -> None:
        while True:
            now = self._clock()
            if self._first is None:
                self._first = now
            if now < self._resume:
                await self._sleep(self._resume - now)
                continue
            if self.rate is None:
                return
            if now >= self._next:
                # No burst after an idle spell: the next slot counts from now.
                self._next = max(self._next, now - 1.0 / self.rate) + 1.0 / self.rate
                return
            await self._sleep(self._next - now)

    @property
    def sustained(self) -> bool:
        """Whether the recent answers say the run is over a limit (not just unlucky)."""
        return len(self._recent) >= SAMPLE // 2 and sum(self._recent) >= SUSTAINED * SAMPLE

    def throttled(self, retry_after: float | None) -> None:
        now = self._clock()
        self.throttled_count += 1
        if retry_after == 0:
            return
        self._recent.append(True)
        if self.rate is None and not self.sustained:
            return  # an occasional 429: that call waits its Retry-After, the others go on
        self._resume = max(self._resume, now + (retry_after if retry_after is not None else 1.0))
        elapsed = now - max(self._last_cut, self._cut_resume)  # paused time does not count
        if now - self._last_cut < CUT_GAP:
            return
        if self.rate is None:
            pace = 0.5 * (self._measured(now) or FLOOR)
        elif elapsed >= 0.5 and self._since_cut:
            pace = CUT * min(self.rate, self._since_cut / elapsed)
        else:
            pace = CUT * self.rate
        pace = max(FLOOR, pace)
        self._last_cut = now
        self._cut_resume = self._resume
        self._since_cut = 0
        self._cuts += 1
        self.rate = pace
        self._next = max(self._next, self._resume)
        self.notes.append(f"throttled by the service: pacing at {pace:.1f} calls/s")

    def ok(self) -> None:
        now = self._clock()
        self._recent.append(False)
        self._done.append(now)
        self._since_cut += 1
        while self._done[0] < now - WINDOW:  # keep one window's worth, however long the run
            self._done.popleft()
        if self.rate is None:
            return
        since = now - max(self._last_cut + HOLD, self._last_growth)
        if since > 0:
            self.rate *= (1 + (PROBE_GROWTH if self._cuts < 2 else GROWTH)) ** since
            self._last_growth = now

    def _measured(self, now: float) -> float:
        while self._done and self._done[0] < now - WINDOW:
            self._done.popleft()
        age = now - self._first if self._first is not None else WINDOW
        return len(self._done) / max(min(WINDOW, age), 0.05)
