"""The pacer on a fake clock: occasional 429s leave the pace alone, sustained ones set it, and it recovers."""

from __future__ import annotations

import asyncio
import itertools
import random

from bulkref.apply.pacing import CUT, FLOOR, HOLD, SAMPLE, SUSTAINED, Pacer


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


def limit(p: Pacer, clock: Clock, ok: int = 40, gap: float = 0.02, retry_after: float = 2.0) -> None:
    """``ok`` calls accepted ``gap`` apart, then a run of 429s: what a limit looks like."""
    for _ in range(ok):
        clock.now += gap
        p.ok()
    for _ in range(SAMPLE):
        p.throttled(retry_after)
        if p.rate is not None:
            return


def test_an_occasional_429_pauses_only_its_own_call_and_sets_no_pace() -> None:
    p, clock = pacer()

    async def run() -> None:
        for i in range(200):
            await p.wait()
            clock.now += 0.01
            p.throttled(1.0) if i % 20 == 7 else p.ok()  # 5% of the calls

    asyncio.run(run())
    assert p.rate is None and not p.sustained
    assert abs(clock.now - (100.0 + 200 * 0.01)) < 1e-9  # nobody waited on the pacer
    assert p.throttled_count == 10


def test_random_429s_at_five_percent_never_look_like_a_limit() -> None:
    p, clock = pacer()
    draw = random.Random(5)

    async def run() -> None:
        for _ in range(20_000):
            await p.wait()
            clock.now += 0.003
            p.throttled(1.0) if draw.random() < 0.05 else p.ok()

    asyncio.run(run())
    assert p.rate is None and p.throttled_count > 900


def test_sustained_429s_pause_everyone_and_set_a_pace_under_what_got_through() -> None:
    p, clock = pacer()

    async def run() -> list[float]:
        await p.wait()
        limit(p, clock)  # 40 calls accepted within the last second, then 429s
        starts = []
        for _ in range(5):
            await p.wait()
            starts.append(clock.now)
        return starts

    starts = asyncio.run(run())
    # 40 calls got through in the run's first 0.8 s: 50/s, halved (the burst allowance is spent).
    assert p.rate is not None and abs(p.rate - 25) < 0.01
    assert p.throttled_count == int(SUSTAINED * SAMPLE)  # the 429 that tipped it is the one paced on
    assert starts[0] >= 100.8 + 2.0 - 1e-9  # nobody before the Retry-After
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(abs(g - 1 / p.rate) < 1e-6 for g in gaps)


def test_a_429_with_retry_after_zero_is_not_a_limit() -> None:
    p, _ = pacer()
    for _ in range(SAMPLE):
        p.throttled(0)
    assert p.rate is None and p.throttled_count == SAMPLE


def test_further_429s_cut_again_but_not_for_each_call_answered_together() -> None:
    p, clock = pacer()
    limit(p, clock, ok=20, gap=0.05, retry_after=0.05)
    first = p.rate
    assert first is not None
    p.throttled(0.05)  # the same moment: the same signal
    assert p.rate == first
    clock.now += 0.2
    p.throttled(0.05)
    assert p.rate is not None and p.rate < first


def test_the_pause_for_a_retry_after_does_not_count_against_the_pace() -> None:
    p, clock = pacer()
    limit(p, clock, ok=40, gap=0.02, retry_after=5.0)
    assert p.rate is not None
    clock.now += 5.0  # the whole Retry-After, nobody sent anything
    for _ in range(25):  # then 25 calls accepted in one second: 25/s
        clock.now += 0.04
        p.ok()
    before = p.rate
    assert before is not None
    p.throttled(0.1)
    # 0.9 x what got through in the second after the pause (25/s), or of the pace if that is
    # lower; not 0.9 x 25 / 6 s as when the pause counted against what the service accepted.
    assert p.rate is not None and abs(p.rate - CUT * min(before, 25.0)) < 1e-6


def test_the_pace_holds_then_rises_and_never_drops_below_the_floor() -> None:
    p, clock = pacer()
    limit(p, clock, ok=0, retry_after=1.0)  # nothing got through yet: the floor
    assert p.rate == FLOOR
    rate = p.rate
    clock.now += HOLD / 2
    p.ok()
    assert p.rate == rate  # held
    clock.now += HOLD + 10
    p.ok()
    assert p.rate is not None and p.rate > rate * 1.1  # ~2% a second after the hold


def test_the_guessed_first_pace_rises_fast_until_a_second_429_measures_the_limit() -> None:
    p, clock = pacer()
    limit(p, clock, ok=20, gap=0.05, retry_after=1.0)  # a burst measured over a pause: a low guess
    guess = p.rate
    assert guess is not None
    clock.now += HOLD + 5
    p.ok()
    assert p.rate is not None and p.rate > guess * 1.9  # ~15% a second: the limit is found in seconds
    clock.now += 1.0
    p.throttled(1.0)  # the second cut: from now on the pace is measured, and creeps
    measured = p.rate
    assert measured is not None
    clock.now += 1.0 + HOLD + 5
    p.ok()
    assert p.rate is not None and measured * 1.05 < p.rate < measured * 1.15  # ~2% a second
