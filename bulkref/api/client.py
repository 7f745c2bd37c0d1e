"""The Partner Center Referrals API client: reads now, writes (the executor's) later.

Modelled on httpx: one small class, an explicit exception hierarchy, and the
transport as the seam (pass ``transport=`` to record or replace the HTTP layer).

::

    async with ReferralsClient(url, token) as client:
        referral = await client.get("5f2c...")                  # NotFound on 404
        async for r in client.list(filter="status eq 'New'"):   # every page
            ...
        groups = await client.by_external_ids(["CRM-1", "CRM-2"])  # {"CRM-1": [...], "CRM-2": []}

Headers. Every call sends ``Authorization: Bearer <token>`` (the token source
is called per attempt, so a refreshed token is picked up, and never logged),
``Accept: application/json``, ``MS-CorrelationId`` (one GUID per client, i.e.
per bulkref run, so the service can group the run's calls) and
``client-request-id`` and ``MS-RequestId``: a new GUID per logical call, kept
the same across the retries of that call (a caller that retries a call itself,
as the executor does a create whose answer was lost, passes ``request_id=``
to keep it). The API documentation asks a retried call after a
time-out to carry the same id, so that the service (and its support) can tell
one call tried several times from several calls. The answer's ``request-id``
is kept on ``Reply``, on every ``ApiError`` and as ``last_request_id``.

Retries. ``RetryPolicy`` holds the back-off (exponential, full jitter, capped),
the honouring of ``Retry-After`` / ``x-ms-retry-after-ms`` and the number of
attempts; which failures may be retried is a separate predicate per call:
``retry_read`` for GET (idempotent, so anything transient), ``retry_unsent``
for writes (only what certainly did not reach the service: 429 and failures
to connect). A POST whose answer was lost may have been stored, so it must be
reconciled by reading, not resent: ``Unreachable.maybe_delivered`` says which
case a transport failure was.

Exit codes: every ``ApiError`` that escapes a command ends it with exit 2 (the
command could not do its job); per-row failures during ``apply`` are recorded
by the executor, which exits 1 for them.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import email.utils
import functools
import ipaddress
import logging
import random
import re
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import quote, quote_plus, urlencode

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bulkref import __version__
from bulkref.errors import (  # noqa: F401  (re-exported: raised here)
    ApiError,
    BulkrefError,
    Conflict,
    Forbidden,
    IncompleteAnswer,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    ServerError,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
    Unreachable,
)
from bulkref.redact import RedactingFilter, redact, redact_optional, remember

log = logging.getLogger("bulkref.api.client")
log.addFilter(RedactingFilter())

Referral = dict[str, Any]
Groups = dict[str, builtins.list[Referral]]
TokenSource = str | Callable[[], str]
T = TypeVar("T")

#: Longest request URL a batched look-up builds, in characters once encoded.
#: IIS request filtering refuses a query string over 2,048 bytes by default,
#: and many proxies and gateways stop near 2,048 for the whole URL; Partner
#: Center's limit is not published, so stay under the smallest common one.
MAX_URL_LENGTH = 2000

#: What the server needs to see for a retry to be worth it without knowing the method.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Told to the user when the service refuses the credentials. One place, so that
#: ``bulkref login`` (a later issue) changes the advice here only.
SIGN_IN_HINT = (
    "run `bulkref login` again (device code, which works with MFA), or set BULKREF_ACCESS_TOKEN, "
    "or use --sandbox to rehearse locally"
)


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: Throttled,
    503: ServiceUnavailable,
}
# Documented codes more specific than their status (a stale eTag may come as 409).
_BY_CODE: dict[str, type[ApiError]] = {
    "preconditionFailed": PreconditionFailed,
    "resourceModified": PreconditionFailed,
}
# Server errors that no retry can cure.
_PERMANENT_5XX = frozenset({501, 505})


def error_from(response: httpx.Response, client_request_id: str | None = None) -> ApiError:
    """The ApiError for an unsuccessful answer, whatever its body (JSON or not)."""
    status = response.status_code
    error = _error_object(response)
    # A gateway may echo the Authorization header in any of them: scrubbed before anyone sees them.
    code, target, said = (redact_optional(_text((error or {}).get(k))) for k in ("code", "target", "message"))
    kind = _BY_CODE.get(code or "") or _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    call = _call_name(response.request.method, response.request.url)
    return kind(
        _error_sentence(kind, call, status, code or response.reason_phrase, target, said, error),
        status=status,
        code=code,
        target=target,
        service_message=said,
        request_id=response.headers.get("request-id"),
        client_request_id=client_request_id,
        method=response.request.method,
        url=str(response.request.url),
        retry_after=retry_after_seconds(response.headers),
    )


def _error_object(response: httpx.Response) -> dict[str, Any] | None:
    """The body's ``error`` object ({} when it has none); None when the body is not JSON
    (a proxy's HTML page, an empty body), which leaves no code to report."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _error_sentence(
    kind: type[ApiError],
    call: str,
    status: int,
    code: str,
    target: str | None,
    said: str | None,
    error: Mapping[str, Any] | None,
) -> str:
    detail = f"HTTP {status} {code}".rstrip() + (f", target {target}" if target else "")
    reason = (
        said.strip().rstrip(".")
        if said
        else ("the answer was not JSON" if error is None else "the answer gave no details")
    )
    if kind is Unauthenticated:
        return (
            f"{call} was refused because the credentials are missing, invalid or expired "
            f"({detail}): {SIGN_IN_HINT}."
        )
    if kind is Forbidden:
        return (
            f"{call} was forbidden ({detail}: {reason}); the user needs the Referrals admin or "
            "Referrals user role in Partner Center."
        )
    return f"{call} failed ({detail}): {reason}."


def _call_name(method: str, url: httpx.URL) -> str:
    # The path only: a query can hold customer data ($filter on an email address).
    return f"{method} {url.scheme}://{url.netloc.decode('ascii', 'replace')}{url.path}"


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """The wait the service asked for: ``x-ms-retry-after-ms`` (exact) over
    ``Retry-After`` (whole seconds, or an HTTP date); None when neither parses."""
    millis = headers.get("x-ms-retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# -- retries -------------------------------------------------------------------------------


def retry_read(error: BaseException) -> bool:
    """For idempotent calls (GET): anything that may pass on a second try."""
    if isinstance(error, Throttled | ServiceUnavailable):
        return True
    if isinstance(error, ServerError):
        return error.status not in _PERMANENT_5XX
    return isinstance(error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def retry_unsent(error: BaseException) -> bool:
    """For any call, writes included: only failures that prove the service did not act
    (throttled before processing, or never connected). Lost answers are not among them."""
    return isinstance(error, Throttled | httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait between attempts and how many to make; shared by reads and writes.

    Without a hint from the service, attempt n waits a random time up to
    ``min(cap, base * 2**(n-1))`` ("full jitter", so that concurrent callers
    spread out). With ``Retry-After`` / ``x-ms-retry-after-ms`` it waits that
    long plus up to a tenth of it (at most ``base``) of jitter; a hint over ``max_retry_after`` is not
    waited for: the error goes to the caller, who can tell the user when to
    come back. ``sleep`` is injectable so that tests run fast.
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        hint = getattr(error, "retry_after", None)
        if hint is not None:
            # A tenth of the hint at most: enough to spread calls told the same time,
            # not so much that an occasional 429 costs its call half a second more.
            return float(hint) + random.uniform(0, min(self.base, 0.1 * float(hint)))
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))

    def allows(self, error: BaseException, retryable: Callable[[BaseException], bool]) -> bool:
        hint = getattr(error, "retry_after", None)
        return retryable(error) and (hint is None or hint <= self.max_retry_after)

    async def run(
        self, call: Callable[[], Awaitable[T]], retryable: Callable[[BaseException], bool] = retry_read
    ) -> T:
        """``await call()`` until it succeeds, fails in a way ``retryable`` refuses,
        or the attempts run out; the last error is raised as it is."""
        # The first attempt outside tenacity: most calls succeed at once, and
        # setting up a retry loop for each costs as much as the journal write.
        try:
            return await call()
        except Exception as error:
            if self.attempts == 1 or not self.allows(error, retryable):
                raise
            wait = self.delay(1, error)
            log.info(
                "attempt 1 failed (%s); retrying in %.2fs",
                f"HTTP {error.status}" if isinstance(error, ApiError) else type(error).__name__,
                wait,
            )
            await self.sleep(wait)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts - 1),
            wait=lambda state: self._wait(state, offset=1),
            retry=retry_if_exception(lambda error: self.allows(error, retryable)),
            sleep=self.sleep,
            before_sleep=lambda state: _log_retry(state, offset=1),
            reraise=True,
        )
        return await retrying(call)

    def _wait(self, state: RetryCallState, offset: int = 0) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.delay(state.attempt_number + offset, error)


def _log_retry(state: RetryCallState, offset: int = 0) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    what = f"HTTP {error.status}" if isinstance(error, ApiError) else type(error).__name__
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.info("attempt %d failed (%s); retrying in %.2fs", state.attempt_number + offset, what, wait)


# -- OData filters ---------------------------------------------------------------------------


def odata_string(value: str) -> str:
    """An OData string literal: quoted, with each ``'`` doubled."""
    return "'" + value.replace("'", "''") + "'"


def with_query(url: str, params: Mapping[str, object]) -> str:
    """``url`` with an encoded query, built here (not by httpx) so that its length is known."""
    present = {k: str(v) for k, v in params.items() if v is not None}
    return f"{url}?{urlencode(present, quote_via=quote_plus)}" if present else url


def filter_batches(url: str, field: str, values: Iterable[str], limit: int = MAX_URL_LENGTH) -> list[str]:
    """Request URLs that together look up every value as ``field eq 'v' or ...``,
    each at most ``limit`` characters long once encoded (a single value too long
    for the limit gets a URL of its own and lets the service judge it)."""
    prefix = len(with_query(url, {"$filter": ""}))
    separator = len(quote_plus(" or "))
    batches: list[list[str]] = []
    length = prefix
    for value in dict.fromkeys(values):
        clause = f"{field} eq {odata_string(value)}"
        size = len(quote_plus(clause))  # encoding is per character, so lengths add up
        if batches and length + separator + size <= limit:
            batches[-1].append(clause)
            length += separator + size
        else:
            batches.append([clause])
            length = prefix + size
    return [with_query(url, {"$filter": " or ".join(clauses)}) for clauses in batches]


# -- paging ------------------------------------------------------------------------------------


def same_origin(collection: str, link: str) -> str:
    """The next page's URL: ``link``'s query on the configured ``collection``.

    The documented example link (``http://api.partner.microsoft.com/v1.0/referrals?$skiptoken=...``)
    names another scheme and path than the collection; followed as given, it would send
    the bearer token over plain http, or to wherever a link points. Only the query (the
    ``$skiptoken``) is the service's to choose: it is kept, on the collection's own
    scheme, host and path."""
    base = httpx.URL(collection)
    # A relative link is resolved against the collection first; only its query is kept.
    query = base.join(link).query
    return str(base.copy_with(query=query or None, fragment=None))


@functools.lru_cache(maxsize=256)  # asked before every call, of a few URLs: parsing one cost 90 µs
def plain_http_to_remote(url: str) -> bool:
    """Whether ``url`` is http to a host that is not this machine's loopback: no token goes there."""
    parsed = httpx.URL(url)
    return parsed.scheme == "http" and not is_loopback(parsed.host)


def is_loopback(host: str) -> bool:
    """Only ``localhost`` and real loopback addresses (127.0.0.0/8, ::1): a name such
    as ``127.0.0.1.evil.example`` is a host on the network like any other."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the client -----------------------------------------------------------------------------


class Pacer(Protocol):
    """What the client asks of a pacer (bulkref.apply.pacing.Pacer is the one bulkref uses)."""

    async def wait(self) -> None: ...
    def throttled(self, retry_after: float | None) -> None: ...
    def ok(self) -> None: ...


@dataclass(frozen=True)
class Reply:
    """A successful answer: parsed JSON body (None when empty) and the headers."""

    status: int
    body: Any
    headers: httpx.Headers
    client_request_id: str

    @property
    def request_id(self) -> str | None:
        return cast(str | None, self.headers.get("request-id"))

    @property
    def etag(self) -> str | None:
        return cast(str | None, self.headers.get("etag"))


class ReferralsClient:
    """An async client of one referrals collection (``.../v1.0/engagements/referrals``).

    ``max_connections`` bounds both the connection pool and the calls in flight
    (a retried call keeps its slot while it waits, which eases throttling).
    With ``transport`` given, its own connection limits apply to the pool.
    """

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        timeout: float = 30,
        max_connections: int = 16,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        # Shared by every call of a run (bulkref.apply.pacing): a 429 slows the whole run, not one call.
        self.pacer = pacer
        self.correlation_id = str(uuid.uuid4())
        self.last_request_id: str | None = None
        # Told of each page of referrals read (a listing's, a look-up's): progress shown to
        # someone waiting on a plan, which may list thousands of pages.
        self.on_page: Callable[[], None] | None = None
        self._token = token
        self._slots = asyncio.Semaphore(max_connections)
        try:
            self._http = httpx.AsyncClient(
                transport=transport,
                timeout=timeout,
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
                headers={
                    "Accept": "application/json",
                    "User-Agent": f"bulkref/{__version__}",
                    "MS-CorrelationId": self.correlation_id,
                },
            )
        except (OSError, ssl.SSLError) as e:
            # httpx loads SSL_CERT_FILE / SSL_CERT_DIR here: a wrong path is the user's to fix.
            raise ApiError(
                f"The certificates to trust could not be loaded ({e.strerror or e}): check "
                "SSL_CERT_FILE and SSL_CERT_DIR."
            ) from None

    async def __aenter__(self) -> ReferralsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- reads -------------------------------------------------------------------------------
    async def get(self, referral_id: str) -> Referral:
        """One referral; ``NotFound`` when there is none with this id."""
        if not referral_id:
            raise ValueError("a referral id is needed")
        reply = await self.request("GET", f"{self.base_url}/{quote(referral_id, safe='')}")
        return _referral(reply)

    async def by_external_ids(self, ids: Iterable[str]) -> Groups:
        """Referrals by ``externalReferenceId``: every id asked for is a key (``[]`` when none)."""
        return await self._grouped("externalReferenceId", ids)

    async def by_engagement_ids(self, ids: Iterable[str]) -> Groups:
        """Referrals by ``engagementId`` (a co-sell's two referrals share one)."""
        return await self._grouped("engagementId", ids)

    async def by_ids(self, ids: Iterable[str]) -> dict[str, Referral]:
        """Referrals by ``id``; ids that match none are absent from the answer."""
        groups = await self._grouped("id", ids)
        return {key: found[0] for key, found in groups.items() if found}

    async def list(
        self,
        filter: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
        select: str | None = None,
        page_size_hint: int | None = None,
    ) -> AsyncIterator[Referral]:
        """Every referral the query matches, page after page (``@odata.nextLink``).

        The options go to the service as ``$filter``, ``$orderby``, ``$top`` and
        ``$select``; at most ``top`` referrals are yielded even by a service that
        reads ``$top`` as a page size. ``page_size_hint`` is sent as
        ``Prefer: odata.maxpagesize``, which a service may ignore.
        """
        params = {"$filter": filter, "$orderby": orderby, "$top": top, "$select": select}
        headers = {"Prefer": f"odata.maxpagesize={page_size_hint}"} if page_size_hint else None
        url: str | None = with_query(self.base_url, params)
        seen: set[str] = set()
        handed = 0
        # The next page is asked for as soon as this one has arrived, before its JSON is
        # parsed: its link is read off the raw body's tail (``_peeked_link``) and checked
        # against the parsed one after. Parsing waited for the service and the service
        # for the parse: 100,000 referrals took half again as long as either alone.
        ahead: tuple[str, asyncio.Task[Reply]] | None = None
        try:
            while url is not None:
                seen.add(url)
                if ahead is not None and ahead[0] == url:
                    reply = await ahead[1]
                else:
                    reply = await self.request("GET", url, headers=headers, raw=True)
                ahead = None
                guess = _peeked_link(reply.body.content)
                guessed = None
                if guess is not None:
                    with contextlib.suppress(ApiError, httpx.InvalidURL, ValueError):
                        guessed = same_origin(self.base_url, guess)  # refused: refused once parsed
                if guessed is not None and guessed not in seen:
                    task = asyncio.create_task(self.request("GET", guessed, headers=headers, raw=True))
                    ahead = (guessed, task)
                    for _ in range(_SEND_TURNS):  # its request goes out now, not after this page
                        await asyncio.sleep(0)
                page = self._parsed_page(reply, url)
                for referral in page["value"]:
                    if top is not None and handed >= top:
                        return
                    handed += 1
                    yield referral
                url = self._next_link(page, seen)
                if ahead is not None and ahead[0] != url:  # the guess was wrong: asked again
                    await _dropped(ahead[1])
                    ahead = None
        finally:
            if ahead is not None:
                await _dropped(ahead[1])

    # -- writes ------------------------------------------------------------------------------
    async def update(
        self, referral_id: str, operations: builtins.list[dict[str, Any]], if_match: str | None = None
    ) -> Reply:
        """PATCH with JSON Patch ``replace``/``add`` operations; with ``if_match`` a stale
        eTag is ``PreconditionFailed``. Retried only when it certainly did not reach the
        service: an ``add`` to a list sent twice adds twice, and nothing documents that the
        service drops a repeated request id. After a lost answer, read the referral back."""
        headers = {"If-Match": if_match} if if_match else None
        return await self.request(
            "PATCH", f"{self.base_url}/{quote(referral_id, safe='')}", json=operations, headers=headers
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        retryable: Callable[[BaseException], bool] | None = None,
        request_id: str | None = None,
        raw: bool = False,
    ) -> Reply:
        """One logical call, retried per ``retryable`` (default: ``retry_read`` for
        idempotent methods, ``retry_unsent`` for the rest); raises an ``ApiError``.
        ``request_id`` (default: a new GUID) is sent as ``client-request-id`` and
        ``MS-RequestId`` on every attempt: give the same one to send a call again.
        ``raw``: the reply's body is the httpx response, its JSON not parsed yet."""
        method = method.upper()
        rule = retryable or (retry_read if method in IDEMPOTENT_METHODS else retry_unsent)
        call_id = request_id or str(uuid.uuid4())
        attempts = 0

        async def attempt() -> Reply:
            nonlocal attempts
            attempts += 1
            return await self._attempt(method, url, call_id, json, headers, raw)

        async with self._slots:
            try:
                return await self.retry.run(attempt, rule)
            except httpx.TransportError as exc:
                raise self._unreachable(exc, method, url, call_id, attempts) from exc

    async def _attempt(
        self,
        method: str,
        url: str,
        call_id: str,
        body: Any,
        headers: Mapping[str, str] | None,
        raw: bool = False,
    ) -> Reply:
        sent = {"client-request-id": call_id, "MS-RequestId": call_id, **(headers or {})}
        token = self._token() if callable(self._token) else self._token
        if token and plain_http_to_remote(url):
            raise ApiError(
                f"{_call_name(method, httpx.URL(url))} would send the access token over plain http to "
                "another machine; it was not sent: use an https URL (--api-url or BULKREF_API_URL).",
                method=method,
            )
        if token:
            remember(token)  # whatever echoes it later (an error body, an exception) is scrubbed
            sent["Authorization"] = f"Bearer {token}"
        if self.pacer is not None:
            await self.pacer.wait()
        response = await self._http.request(method, url, json=body, headers=sent)
        self.last_request_id = response.headers.get("request-id")
        if self.pacer is not None:
            if response.status_code == 429:
                self.pacer.throttled(retry_after_seconds(response.headers))
            else:
                self.pacer.ok()
        if not response.is_success:
            raise error_from(response, call_id)
        parsed = response if raw else _json_body(response, call_id)
        return Reply(response.status_code, parsed, response.headers, call_id)

    def _unreachable(
        self, exc: httpx.TransportError, method: str, url: str, call_id: str, attempts: int
    ) -> Unreachable:
        unsent = isinstance(
            exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.UnsupportedProtocol
        )
        tries = f"after {attempts} attempts" if attempts > 1 else "at the first attempt"
        message = (
            f"Could not reach {self.base_url} ({_transport_reason(exc)}, {tries}): check the URL "
            "(--api-url or BULKREF_API_URL) and the network, or use --sandbox to rehearse locally."
        )
        return Unreachable(
            message,
            maybe_delivered=not unsent,
            attempts=attempts,
            method=method,
            url=url,
            client_request_id=call_id,
        )

    # -- helpers ---------------------------------------------------------------------------------
    async def _page(self, url: str, headers: Mapping[str, str] | None) -> dict[str, Any]:
        return self._parsed_page(await self.request("GET", url, headers=headers, raw=True), url)

    def _parsed_page(self, reply: Reply, url: str) -> dict[str, Any]:
        """The page of a ``raw`` reply, parsed; raises when it is not a page of the API."""
        page = _json_body(reply.body, reply.client_request_id)
        reply = dataclasses.replace(reply, body=page)
        if not isinstance(page, dict) or not isinstance(page.get("value"), builtins.list):
            raise _not_the_api(reply, url, "a page without a value list")
        if self.on_page is not None:
            self.on_page()
        return page

    def _next_link(self, page: Mapping[str, Any], seen: set[str]) -> str | None:
        link = page.get("@odata.nextLink")
        if not link:
            return None
        absolute = same_origin(self.base_url, str(link))
        if absolute in seen:
            raise ApiError(
                f"The service at {self.base_url} handed out the same next page twice; "
                "the listing was stopped rather than loop.",
                url=absolute,
            )
        return absolute

    async def _grouped(self, field: str, ids: Iterable[str]) -> Groups:
        """Referrals by ``field``, keyed as asked. Matched without regard to case: nothing
        says the service keeps the case of what it was sent, and a look-up that misses a
        referral over case reads as "absent", and an absent referral gets created."""
        wanted = builtins.list(dict.fromkeys(ids))
        groups: Groups = {key: [] for key in wanted}
        asked: dict[str, builtins.list[str]] = {}
        for key in wanted:
            asked.setdefault(key.lower(), []).append(key)
        try:
            async with asyncio.TaskGroup() as tasks:  # the first failure cancels the other batches
                batches = [
                    tasks.create_task(self._all_pages(url))
                    for url in filter_batches(self.base_url, field, wanted)
                ]
        except BaseExceptionGroup as group:
            # Callers (and the CLI) expect one ApiError, as from any other call.
            raise group.exceptions[0] from None
        for batch in batches:
            for referral in batch.result():
                value = referral.get(field)
                if isinstance(value, str):
                    for name in asked.get(value.lower(), [value]):
                        groups.setdefault(name, []).append(referral)
        return groups

    async def _all_pages(self, url: str) -> builtins.list[Referral]:
        found: builtins.list[Referral] = []
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            seen.add(next_url)
            page = await self._page(next_url, None)
            found.extend(page["value"])
            next_url = self._next_link(page, seen)
        return found


async def _dropped(task: asyncio.Task[Any]) -> None:
    """Cancel a page asked for ahead and not needed (a wrong guess, the end of the listing)."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


# The link to the next page, near the end of a page's JSON (OData writes it after the value
# list; the sandbox and the documented example too). A guess: the parsed link decides.
_NEXT_LINK = re.compile(rb'"@odata\.nextLink"\s*:\s*"([^"\\]+)"')
_TAIL = 4096  # bytes: a link is far shorter
# Turns of the event loop a page asked for ahead is given before this page is parsed: httpx
# passes a few await points (locks, the connection) before the request is written, and the
# parse holds the loop. With one turn the request went out only after the page was parsed.
_SEND_TURNS = 4


def _peeked_link(content: bytes) -> str | None:
    found = None
    for found in _NEXT_LINK.finditer(content, max(0, len(content) - _TAIL)):  # noqa: B007 (the last)
        pass
    if found is None:
        found = _NEXT_LINK.search(content, 0, _TAIL)  # some services write it first
    if found is None:
        return None
    try:
        return found.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _json_body(response: httpx.Response, call_id: str) -> Any:
    if not response.content:
        return None
    try:
        # orjson parses a page of referrals in about 60% of the standard library's time.
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        pass  # not UTF-8, or numbers past 64 bits: the standard library decides
    try:
        return response.json()
    except ValueError:
        reply = Reply(response.status_code, None, response.headers, call_id)
        raise _not_the_api(reply, str(response.request.url), "an answer that is not JSON") from None


def _referral(reply: Reply) -> Referral:
    if not isinstance(reply.body, dict):
        raise _not_the_api(reply, None, "something that is not a referral")
    return reply.body


def _not_the_api(reply: Reply, url: str | None, what: str) -> ApiError:
    kind = reply.headers.get("content-type", "no content type")
    return ApiError(
        f"The service answered HTTP {reply.status} with {what} ({kind}): check that the URL "
        "is the Partner Center referrals API (--api-url or BULKREF_API_URL).",
        status=reply.status,
        request_id=reply.request_id,
        client_request_id=reply.client_request_id,
        url=url,
    )


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "not an http or https URL"
    if isinstance(exc, httpx.ConnectTimeout):
        return "the connection timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.ConnectError):
        detail = redact(str(exc).strip())
        return f"could not connect: {detail}" if detail else "could not connect"
    return "the connection was closed without an answer"
