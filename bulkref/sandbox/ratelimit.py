"""Throttling: a token bucket per tenant, answered with an honest Retry-After."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """``rate`` requests per second per tenant, with one second's worth of burst.

    ``take`` returns 0 when the request may go ahead, else the seconds until the
    bucket holds a token again: the truth, so a client that waits that long
    gets through (unless it spends the token on another request first).
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, tenant: str) -> float:
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(tenant, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[tenant] = (tokens - 1.0, now)
                return 0.0
            self._buckets[tenant] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


def retry_after_headers(wait: float) -> dict[str, str]:
    """HTTP's Retry-After takes whole seconds, so it is rounded up; the precise
    wait goes in ``x-ms-retry-after-ms`` for clients that can use it."""
    return {
        "Retry-After": str(max(1, math.ceil(wait))),
        "x-ms-retry-after-ms": str(max(1, math.ceil(wait * 1000))),
    }
