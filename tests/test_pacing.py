"""The pacer on a fake clock: one 429 slows every call, and the pace recovers."""

from __future__ import annotations

import asyncio
import itertools

from bulkref.apply.pacing import FLOOR, HOLD, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def pacer() -> tuple[Pacer, Clock]:
    clock = Clock()
    return Pacer(clock=clock, sleep=clock.sleep), clock


def test_unthrottled_calls_are_not_paced() -> None:
    p, clock = pacer()

    async def run() -> None:
        for _ in range(100):
            await p.wait()
            p.ok()

    asyncio.run(run())
    assert p.rate is None and clock.now == 100.0


def test_a_429_pauses_everyone_and_sets_a_pace_under_what_got_through() -> None:
    p, clock = pacer()

    async def run() -> list[float]:
        await p.wait()
        for _ in range(40):  # 40 calls accepted within the last second
            clock.now += 0.02
            p.ok()
        p.throttled(2.0)
        starts = []
        for _ in range(5):
            await p.wait()
            starts.append(clock.now)
        return starts

    starts = asyncio.run(run())
    # 40 calls got through in the run's first 0.8 s: 50/s, halved (the burst allowance is spent).
    assert p.rate is not None and abs(p.rate - 25) < 0.01
    assert starts[0] >= 100.8 + 2.0 - 1e-9  # nobody before the Retry-After
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(abs(g - 1 / p.rate) < 1e-6 for g in gaps)


def test_a_429_with_retry_after_zero_is_not_a_limit() -> None:
    p, _ = pacer()
    p.throttled(0)
    assert p.rate is None and p.throttled_count == 1


def test_further_429s_cut_again_but_not_for_each_call_answered_together() -> None:
    p, clock = pacer()
    for _ in range(20):
        clock.now += 0.05
        p.ok()
    p.throttled(0.05)
    first = p.rate
    assert first is not None
    p.throttled(0.05)  # the same moment: the same signal
    assert p.rate == first
    clock.now += 0.2
    p.throttled(0.05)
    assert p.rate is not None and p.rate < first


def test_the_pace_holds_then_rises_and_never_drops_below_the_floor() -> None:
    p, clock = pacer()
    p.throttled(1.0)  # nothing got through yet: the floor
    assert p.rate == FLOOR
    rate = p.rate
    clock.now += HOLD / 2
    p.ok()
    assert p.rate == rate  # held
    clock.now += HOLD + 10
    p.ok()
    assert p.rate is not None and p.rate > rate * 1.1  # ~2% a second after the hold
