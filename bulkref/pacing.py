"""Client-side pacing shared by every call of a run.

Partner Center throttles per partner tenant and does not publish its limits.
Retrying each throttled call on its own lets the others keep hammering, and
the run turns into a storm of 429s. Instead, every call waits on one pacer:

- a 429 pauses the whole run until its Retry-After has passed;
- it also sets the pace: the calls that succeeded over the last second are
  what the service is letting through, so the run continues a little under
  that (at most one cut per second: the other calls in flight when the first
  429 arrived were sent before anyone knew, and say nothing new);
- with no 429 for a while the pace rises by 5% a second, so a run stays
  close to the allowed rate, finds out when the limit is lifted, and gets
  over a 429 that was a passing fault rather than a limit.

Without any 429 there is no pace at all: only the run's concurrency bounds it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

WINDOW = 1.0  # seconds of successes that measure what the service lets through
CUT = 0.95  # continue this far under the measured rate after a 429
GROWTH = 0.05  # per second without a 429
FLOOR = 0.5  # calls per second: never slower than this


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self.rate: float | None = None  # calls per second; None: unpaced
        self._next = 0.0  # when the next call may start
        self._resume = 0.0  # no call before this (a Retry-After)
        self._last_cut = float("-inf")
        self._last_growth = 0.0
        self._done: deque[float] = deque()
        self._first: float | None = None  # the first call: a young run measures over its age
        self.throttled_count = 0
        self.notes: list[str] = []  # for the progress display

    async def wait(self) -> None:
        now = self._clock()
        if self._first is None:
            self._first = now
        start = max(now, self._resume)
        if self.rate is not None:
            start = max(start, self._next)
            self._next = start + 1.0 / self.rate
        if start > now:
            await self._sleep(start - now)

    def throttled(self, retry_after: float | None) -> None:
        now = self._clock()
        self.throttled_count += 1
        self._resume = max(self._resume, now + (retry_after if retry_after is not None else 1.0))
        if now - self._last_cut < WINDOW:
            return
        self._last_cut = now
        self._last_growth = now
        measured = self._measured(now)
        if retry_after:  # an honest Retry-After for one call says the same thing
            measured = min(measured, 1.0 / retry_after) if measured else 1.0 / retry_after
        pace = max(FLOOR, CUT * (min(measured, self.rate) if self.rate else measured or FLOOR))
        self.rate = pace
        self._next = max(self._next, self._resume)
        self.notes.append(f"throttled by the service: pacing at {pace:.1f} calls/s")

    def ok(self) -> None:
        now = self._clock()
        self._done.append(now)
        while self._done[0] < now - WINDOW:  # keep one window's worth, however long the run
            self._done.popleft()
        if self.rate is not None and now - self._last_cut >= WINDOW:
            self.rate *= (1 + GROWTH) ** (now - self._last_growth)
            self._last_growth = now

    def _measured(self, now: float) -> float:
        while self._done and self._done[0] < now - WINDOW:
            self._done.popleft()
        age = now - self._first if self._first is not None else WINDOW
        return len(self._done) / max(min(WINDOW, age), 0.05)
