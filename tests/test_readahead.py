"""read_ahead: the items in order, the listing's error where it happened, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bulkref.api.readahead import read_ahead


async def _items(n: int, fail_at: int | None = None, log: list[int] | None = None) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        if i == fail_at:
            raise ValueError(f"page {i} failed")
        if log is not None:
            log.append(i)
        yield i


def test_items_come_in_order() -> None:
    async def run() -> list[int]:
        return [i async for i in read_ahead(_items(500), limit=7)]

    assert asyncio.run(run()) == list(range(500))


def test_an_error_reaches_the_consumer_after_the_items_before_it() -> None:
    got: list[int] = []

    async def run() -> None:
        async for i in read_ahead(_items(50, fail_at=20)):
            got.append(i)

    with pytest.raises(ValueError, match="page 20 failed"):
        asyncio.run(run())
    assert got == list(range(20))


def test_reading_runs_at_most_limit_ahead_and_stops_with_the_consumer() -> None:
    produced: list[int] = []

    async def run() -> None:
        ahead = read_ahead(_items(1000, log=produced), limit=5)
        async for i in ahead:
            for _ in range(20):  # let the reader run as far as it may
                await asyncio.sleep(0)
            assert len(produced) <= i + 1 + 5 + 1  # the item in hand, the queue, the one being put
            if i == 10:
                break
        await ahead.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0)
        stopped_at = len(produced)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(produced) == stopped_at  # the reading task was cancelled

    asyncio.run(run())
