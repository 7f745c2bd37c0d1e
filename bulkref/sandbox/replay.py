"""``MS-RequestId`` on a POST: a repeat within 15 minutes gets the first answer.

Partner Center's headers page says the request id "is used to ensure
id-potency. In the case of a timeout, the retry call should include the same
value": a client whose create timed out (or whose answer was lost after the
service stored it) retries with the same id and must not create a second
referral. The sandbox keeps the first successful answer (status, headers,
body: so the same ids) per tenant and request id; a repeat that arrives while
the first is still being handled waits for it. Failed answers are not kept:
nothing was created, so a retry may create. The answers live in memory only
(a restart, or another sandbox on the same ``--db``, does not know them), and
the body of the repeat is not compared with the first one's.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import Any

WINDOW_SECONDS = 15 * 60

Message = MutableMapping[str, Any]
Key = tuple[str, str]  # (tenant, MS-RequestId)


def _copy(messages: list[Message]) -> list[Message]:
    # The gateway adds its headers to a start message in place: every answer gets fresh ones.
    return [{**m, "headers": list(m["headers"])} if "headers" in m else dict(m) for m in messages]


class Replays:
    """First answers by key; used from the event loop only, so no lock."""

    def __init__(self, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._answers: OrderedDict[Key, tuple[float, list[Message]]] = OrderedDict()
        self._pending: dict[Key, asyncio.Event] = {}

    async def first(self, key: Key) -> list[Message] | None:
        """The first answer to ``key`` (a copy), waiting for one in progress; None
        when there is none, and then the caller's request is the first: it must
        call ``done`` when answered."""
        while (event := self._pending.get(key)) is not None:
            await event.wait()
        self._expire()
        kept = self._answers.get(key)
        if kept is not None:
            return _copy(kept[1])
        self._pending[key] = asyncio.Event()
        return None

    def done(self, key: Key, messages: list[Message] | None) -> None:
        """The answer to the first request of ``key`` (None: it failed, keep nothing)."""
        if messages is not None:
            self._answers[key] = (self._clock(), _copy(messages))
        event = self._pending.pop(key, None)
        if event is not None:
            event.set()

    def _expire(self) -> None:
        cutoff = self._clock() - self.window
        while self._answers:
            key, (at, _) = next(iter(self._answers.items()))
            if at > cutoff:
                break
            del self._answers[key]
