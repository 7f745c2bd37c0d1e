"""``MS-RequestId`` on a write: a repeat within 15 minutes gets the first answer.

A switch (``SandboxOptions.replay_request_ids``), not a rule of the service:
the Referrals headers page (2019-2020 revisions) lists ``request-id`` as a
*response* header "used to ensure id-potency. In the case of a timeout, the
retry call should include the same value", and the general Partner Center
headers page says to repeat ``MS-RequestId`` on a retry after a time-out; no
page says that the Referrals service honours it by answering the retry with
the first answer. So the documented profile leaves replay off (a client must
stay duplicate-free without it), and the default profile keeps it on to
rehearse a service that has it.

When on, the sandbox keeps the first successful answer (status, headers,
body: so the same ids) to a POST, PUT or PATCH, per tenant and request id,
with a fingerprint of the request (method, path, parsed JSON body); a repeat
that arrives while the first is still being handled waits for it. A repeat
with the same fingerprint gets the first answer again; one with another
method, path or body is refused (``RequestIdReused``, answered 400
``requestIdReused``): a client that reuses an id for a different row would
otherwise have that row silently answered with another row's result. Failed
answers are not kept: nothing was written, so a retry (with any body) may
write. The answers live in memory only (a restart, or another sandbox on the
same ``--db``, does not know them).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, MutableMapping
from decimal import Decimal
from typing import Any

WINDOW_SECONDS = 15 * 60

Message = MutableMapping[str, Any]
Key = tuple[str, str]  # (tenant, MS-RequestId)
Fingerprint = tuple[str, str, Hashable]  # (method, path, body as canonical JSON)


class RequestIdReused(Exception):
    """A request id already answered for another request (method, path or body)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id


def fingerprint(method: str, path: str, body: bytes) -> Fingerprint:
    """What makes two requests the same request: method, path (ids compare without
    regard to case, as the service's do) and the body's JSON value, so that key
    order and white space do not matter but every value does. A body that is not
    JSON is compared byte for byte."""
    try:
        value: Hashable = _canonical(json.loads(body, parse_float=Decimal)) if body else ("empty",)
    except (UnicodeDecodeError, ValueError, RecursionError):
        value = ("bytes", body)
    return (method.upper(), path.rstrip("/").casefold(), value)


def _canonical(value: Any) -> Hashable:
    # Tagged by JSON type: Python's True == 1 and 1 == 1.0 must not make
    # ``true`` and ``1`` the same body, while ``1`` and ``1.0`` are one number.
    if isinstance(value, dict):
        return ("object", frozenset((k, _canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", tuple(_canonical(v) for v in value))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float | Decimal):  # float: NaN and Infinity, which json reads
        return ("number", Decimal(value))
    if value is None:
        return ("null",)
    return ("string", value)


def _copy(messages: list[Message]) -> list[Message]:
    # The gateway adds its headers to a start message in place: every answer gets fresh ones.
    return [{**m, "headers": list(m["headers"])} if "headers" in m else dict(m) for m in messages]


class Replays:
    """First answers by key; used from the event loop only, so no lock."""

    def __init__(self, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._answers: OrderedDict[Key, tuple[float, Fingerprint | None, list[Message]]] = OrderedDict()
        self._pending: dict[Key, asyncio.Event] = {}

    async def first(self, key: Key, request: Fingerprint | None = None) -> list[Message] | None:
        """The first answer to ``key`` (a copy), waiting for one in progress; None
        when there is none, and then the caller's request is the first: it must
        call ``done`` when answered. Raises ``RequestIdReused`` when the first
        answer was to another request than ``request`` (None: not compared)."""
        while (event := self._pending.get(key)) is not None:
            await event.wait()
        self._expire()
        kept = self._answers.get(key)
        if kept is not None:
            _, answered, messages = kept
            if request is not None and answered is not None and answered != request:
                raise RequestIdReused(key[1])
            return _copy(messages)
        self._pending[key] = asyncio.Event()
        return None

    def done(self, key: Key, messages: list[Message] | None, request: Fingerprint | None = None) -> None:
        """The answer to the first request of ``key`` (None: it failed, keep nothing)."""
        if messages is not None:
            self._answers[key] = (self._clock(), request, _copy(messages))
        event = self._pending.pop(key, None)
        if event is not None:
            event.set()

    def _expire(self) -> None:
        cutoff = self._clock() - self.window
        while self._answers:
            key, (at, _, _) = next(iter(self._answers.items()))
            if at > cutoff:
                break
            del self._answers[key]
