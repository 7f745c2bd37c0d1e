"""A lighter HTTP path for apply's many calls: one connection per lane.

httpx's pool, for every request, walks all its connections asking each whether
it has expired (a ``select`` on its socket) and whether it is idle: at 16
connections that bookkeeping was a third of the time a plain poster spent per
call (py-spy, benchmarks/apply.py). ``Lanes`` keeps ``n`` httpx transports of
one connection each and hands each request to a free one, so a request costs
one such check instead of ``n``. Everything else (HTTP/1.1, TLS, time-outs, the
errors raised) is httpx's own transport: only the choice of connection changes.

A lane is busy from the request until its response is closed (httpx closes it
once the body is read); a request finding no free lane waits for one. The
client's own slots (``ReferralsClient(max_connections=n)``) keep at most ``n``
calls in flight, so with as many lanes nobody waits.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable

import httpx

from bulkref.errors import ApiError


class _Releasing(httpx.AsyncByteStream):
    """A response body that frees its lane when closed (once, however often closed)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class Lanes(httpx.AsyncBaseTransport):
    """``n`` one-connection httpx transports; each request goes to a free one."""

    def __init__(self, n: int, *, verify: ssl.SSLContext | bool = True) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._all = [httpx.AsyncHTTPTransport(verify=verify, limits=limits) for _ in range(max(1, n))]
        self._free = deque(self._all)
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        while not self._free:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except BaseException:
                # Cancelled after being handed a lane: hand it on, or it would be lost.
                if waiter.done() and not waiter.cancelled():
                    self._wake()
                raise
        lane = self._free.pop()  # the last freed: its connection is the likeliest still open
        try:
            response = await lane.handle_async_request(request)
        except BaseException:
            self._give(lane)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Releasing(response.stream, lambda: self._give(lane))
        return response

    @property
    def free(self) -> int:
        """How many lanes no request holds now (all of them once every answer was read)."""
        return len(self._free)

    def _give(self, lane: httpx.AsyncHTTPTransport) -> None:
        self._free.append(lane)
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        for lane in self._all:
            await lane.aclose()


def lanes(n: int) -> Lanes:
    """``Lanes(n)`` sharing one TLS context (each transport would load the CA bundle again),
    made as httpx makes its own: ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` apply."""
    try:
        context = httpx.create_ssl_context(trust_env=True)
    except (OSError, ssl.SSLError) as e:
        raise ApiError(
            f"The certificates to trust could not be loaded ({getattr(e, 'strerror', None) or e}): check "
            "SSL_CERT_FILE and SSL_CERT_DIR."
        ) from None
    return Lanes(n, verify=context)
