"""Reading a listing a page ahead of its consumer.

``ReferralsClient.list`` asks for the next page only when its consumer wants
the referral after the last of this page, so the consumer's work on a page
(the export spools every referral) and the service's work on the next one
take turns. ``read_ahead`` runs the listing in a task of its own: the request
for page n+1 goes out as soon as page n has arrived, and the service prepares
it while the consumer works through page n. Memory stays bounded: at most
``limit`` items wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

LIMIT = 2000  # items waiting: a few pages of referrals, a few megabytes


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class _End:
    pass


_END = _End()


async def read_ahead(items: AsyncIterator[T], limit: int = LIMIT) -> AsyncIterator[T]:
    """``items`` in order, read by a task of their own up to ``limit`` ahead of the
    caller; an error of the listing is raised to the caller where it happened
    in the sequence. Stopping early (break, an error in the caller) stops the
    reading."""
    queue: asyncio.Queue[T | _Failed | _End] = asyncio.Queue(maxsize=limit)

    # put_nowait and get_nowait where they cannot fail: awaiting put and get makes a
    # coroutine for every referral, a tenth of what reading a page costs this process.
    async def produce() -> None:
        try:
            async for item in items:
                if queue.full():
                    await queue.put(item)
                else:
                    queue.put_nowait(item)
        except Exception as e:  # handed to the consumer, raised there
            await queue.put(_Failed(e))
            return
        await queue.put(_END)

    task = asyncio.create_task(produce())
    try:
        while True:
            item = await queue.get() if queue.empty() else queue.get_nowait()
            if isinstance(item, _End):
                break
            if isinstance(item, _Failed):
                raise item.error
            yield item
        await task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
