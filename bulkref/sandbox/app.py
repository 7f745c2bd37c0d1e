"""The sandbox as an ASGI application: the referrals routes (Starlette), the
admin routes under ``/_sandbox/``, and the gateway in front of them that
stamps headers, logs, authenticates, throttles and injects faults."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkref.sandbox import odata
from bulkref.sandbox.bearer import authenticate
from bulkref.sandbox.document import dumps, linked_text, new_id, second_text, with_links
from bulkref.sandbox.errors import ApiError, error_body, invalid
from bulkref.sandbox.faults import ANSWER_KINDS, COMMIT_KINDS, KINDS, FaultDice, FaultSpec, parse_faults
from bulkref.sandbox.identity import Identity, identity_routes, is_identity_path
from bulkref.sandbox.options import SandboxOptions, is_loopback
from bulkref.sandbox.ratelimit import RateLimiter, retry_after_headers
from bulkref.sandbox.referrals import Referrals
from bulkref.sandbox.replay import Fingerprint, Replays, RequestIdReused, fingerprint
from bulkref.sandbox.store import MemoryStore, Record, open_store

API_ROOT = "/v1.0/engagements/referrals"
#: Where the documentation's example ``@odata.nextLink`` points (``--next-link documented``).
DOCUMENTED_NEXT_ROOT = "/v1.0/referrals"
ADMIN_ROOT = "/_sandbox/"
MAX_BODY = 1024 * 1024  # bytes; a referral is a few kB

log = logging.getLogger("bulkref.sandbox")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_WRITES = frozenset({"POST", "PUT", "PATCH"})


@dataclass
class Stats:
    """What tests read from ``GET /_sandbox/stats`` to measure fault rates.

    ``eligible`` counts, per fault kind, the requests that kind could have hit:
    every API request that drew (authenticated, not throttled) for 429, 503,
    500 and reset; every write that succeeded (or was turned into a
    commit-then fault) for the commit-then kinds.
    """

    requests: Counter[str] = field(default_factory=Counter)  # by status, or "reset"
    methods: Counter[str] = field(default_factory=Counter)  # by HTTP method: tests prove "nothing written"
    first: float | None = None  # wall-clock time of the first and last API request: the
    last: float | None = None  # window a benchmark's calls/s is measured over
    faults: Counter[str] = field(default_factory=Counter)
    eligible: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    examined: int = 0  # referrals that listings' filters were checked against
    replayed: int = 0  # writes answered from an earlier one with the same MS-RequestId

    def as_json(self, referrals: int) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "requestsTotal": sum(self.requests.values()),
            "methods": dict(self.methods),
            "firstRequestAt": self.first,
            "lastRequestAt": self.last,
            "faults": {kind: self.faults.get(kind, 0) for kind in KINDS},
            "eligible": {kind: self.eligible.get(kind, 0) for kind in KINDS},
            "rateLimited": self.rate_limited,
            "filterExamined": self.examined,
            "replayed": self.replayed,
            "referrals": referrals,
        }


class Sandbox:
    """The state of one sandbox, shared by its routes and its gateway."""

    def __init__(self, options: SandboxOptions, store: MemoryStore | None = None) -> None:
        self.options = options
        self.store = store if store is not None else open_store(options.db, options.list_lag)
        self.referrals = Referrals(
            self.store,
            options.organization_id,
            options.organization_name,
            options.create_status,
            options.closed,
            options.solution_areas,
        )
        self.replays = Replays()  # MS-RequestId -> the first answer (replay.py)
        self.dice = FaultDice(parse_faults(options.faults), options.seed)
        self.limiter = RateLimiter(options.rate_limit) if options.rate_limit else None
        self.stats = Stats()
        self.identity = Identity(options)  # the identity provider (identity.py)
        # (host, port) of each open connection -> its transport, filled by the
        # server's protocol (see server.py): how a "reset" fault drops a connection.
        self.transports: dict[tuple[str, int], asyncio.Transport] = {}

    def set_faults(self, spec: FaultSpec, seed: int | None) -> None:
        self.dice = FaultDice(spec, seed)

    def reset(self) -> None:
        """Fresh state: no referrals, zeroed counters, the fault dice rolled from the seed again."""
        self.store.reset()
        self.stats = Stats()
        self.replays = Replays()
        self.identity.reset()
        self.dice = FaultDice(self.dice.spec, self.dice.seed)
        if self.limiter is not None:
            self.limiter.reset()


# -- answers -----------------------------------------------------------------------


def _json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = dumps(payload).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _collection_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{API_ROOT}"


def _referral_response(request: Request, record: Record, status: int = 200) -> Response:
    headers = {"ETag": str(record.doc.get("eTag"))}
    if status == 201:
        headers["Location"] = f"{_collection_url(request)}/{record.doc['id']}"
    body = linked_text(record.text, record.doc, _collection_url(request)).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


async def _body(request: Request, media_types: tuple[str, ...]) -> Any:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in media_types:
        raise ApiError(
            415,
            "invalidRequest",
            f"Content-Type must be {' or '.join(media_types)}, not '{media_type or 'none'}'.",
            "Content-Type",
        )
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "invalidRequest", f"The body is larger than {MAX_BODY} bytes.")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid(f"The body is not valid JSON: {exc}.") from None


# -- the emulated API --------------------------------------------------------------


def _api_routes(sandbox: Sandbox) -> list[Route]:
    referrals = sandbox.referrals

    async def create(request: Request) -> Response:
        record = referrals.create(await _body(request, ("application/json",)))
        return _referral_response(request, record, 201)

    documented_filters = sandbox.options.filters == "documented"
    documented_links = sandbox.options.next_link == "documented"

    async def listing(request: Request) -> Response:
        query = odata.parse_query(request.query_params, documented_filters, referrals.rules.any_plays)
        page = referrals.list(query, sandbox.options.page_size)
        sandbox.stats.examined += page.examined
        collection = _collection_url(request)
        head: dict[str, Any] = {
            "@odata.context": f"{request.url.scheme}://{request.url.netloc}/v1.0/$metadata#Referrals"
        }
        if page.count is not None:
            head["@odata.count"] = page.count
        if query.select is None:
            items = [linked_text(r.text, r.doc, collection) for r in page.rows]
        else:
            items = [dumps(odata.project(with_links(r.doc, collection), query.select)) for r in page.rows]
        tail = ""
        if page.next is not None:
            # documented: as the listing example shows it, http and another path
            # (served below), whatever the collection's scheme.
            base = f"http://{request.url.netloc}{DOCUMENTED_NEXT_ROOT}" if documented_links else collection
            tail = ',"@odata.nextLink":' + dumps(f"{base}?$skiptoken={odata.encode_token(page.next)}")
        # Assembled from the referrals' stored JSON rather than serialised again.
        body = f'{dumps(head)[:-1]},"value":[{",".join(items)}]{tail}}}'
        return Response(body.encode(), media_type="application/json")

    async def read(request: Request) -> Response:
        return _referral_response(request, referrals.get(request.path_params["id"]))

    async def replace(request: Request) -> Response:
        body = await _body(request, ("application/json",))
        record = referrals.replace(request.path_params["id"], body, request.headers.get("if-match"))
        return _referral_response(request, record)

    async def patch(request: Request) -> Response:
        operations = await _body(request, ("application/json-patch+json", "application/json"))
        record = referrals.patch(request.path_params["id"], operations, request.headers.get("if-match"))
        if "return=representation" in request.headers.get("prefer", "").replace(" ", "").lower():
            response = _referral_response(request, record)
            response.headers["Preference-Applied"] = "return=representation"
            return response
        return Response(status_code=204, headers={"ETag": str(record.doc.get("eTag"))})

    return [
        Route(API_ROOT, listing, methods=["GET"]),
        Route(DOCUMENTED_NEXT_ROOT, listing, methods=["GET"]),
        Route(API_ROOT, create, methods=["POST"]),
        Route(API_ROOT + "/{id}", read, methods=["GET"]),
        Route(API_ROOT + "/{id}", replace, methods=["PUT"]),
        Route(API_ROOT + "/{id}", patch, methods=["PATCH"]),
    ]


# -- admin: not part of the emulated API -----------------------------------------------


def _admin_routes(sandbox: Sandbox) -> list[Route]:
    async def reset(request: Request) -> Response:
        sandbox.reset()
        return Response(status_code=204)

    async def seed(request: Request) -> Response:
        body = await _body(request, ("application/json",))
        many = isinstance(body, list)
        collection = _collection_url(request)
        seeded = [sandbox.referrals.seed(item) for item in (body if many else [body])]
        docs = [with_links(record.doc, collection) for record in seeded]
        return _json_response({"value": docs} if many else docs[0], 201)

    async def stats(request: Request) -> Response:
        return _json_response(sandbox.stats.as_json(len(sandbox.store)))

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request, ("application/json",))
            if not isinstance(body, dict):
                raise invalid('Send {"faults": "<spec>", "seed": <int or null>}.')
            try:
                spec = parse_faults(body.get("faults") or "")
            except ValueError as exc:
                raise invalid(f"faults: {exc}.", "faults") from None
            seed = body.get("seed", sandbox.dice.seed)
            if seed is not None and not isinstance(seed, int):
                raise invalid("seed must be a whole number or null.", "seed")
            sandbox.set_faults(spec, seed)
        return _json_response({"faults": sandbox.dice.spec.describe(), "seed": sandbox.dice.seed})

    async def health(request: Request) -> Response:
        return _json_response({"status": "ok", "state": sandbox.store.description})

    return [
        Route(ADMIN_ROOT + "reset", reset, methods=["POST"]),
        Route(ADMIN_ROOT + "referrals", seed, methods=["POST"]),
        Route(ADMIN_ROOT + "stats", stats, methods=["GET"]),
        Route(ADMIN_ROOT + "faults", faults, methods=["GET", "POST"]),
        Route(ADMIN_ROOT + "health", health, methods=["GET"]),
    ]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return Response(exc.body(), status_code=exc.status, headers=exc.headers, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        body = error_body("itemNotFound", f"No resource at {request.url.path}.", None)
    elif exc.status_code == 405:
        body = error_body("invalidRequest", f"{request.method} is not supported on {request.url.path}.", None)
    else:
        body = error_body("invalidRequest", str(exc.detail), None)
    return Response(body, status_code=exc.status_code, headers=exc.headers, media_type="application/json")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return Response(
        error_body("generalException", "The sandbox failed unexpectedly; see its log.", None),
        status_code=500,
        media_type="application/json",
    )


# -- the gateway ---------------------------------------------------------------------


class Gateway:
    """Pure ASGI in front of the routes (Starlette's BaseHTTPMiddleware would cost
    the benchmark): request ids, logging, auth, rate limit and faults."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.routes = Starlette(
            routes=_api_routes(sandbox) + _admin_routes(sandbox) + identity_routes(sandbox.identity),
            exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.routes(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = new_id()
        headers = {k.lower(): v for k, v in scope["headers"]}
        echo = headers.get(b"client-request-id")
        outcome: dict[str, Any] = {"status": None, "fault": None}

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                extra = [(b"request-id", request_id.encode()), (b"timestamp", _now().encode())]
                if echo is not None:
                    extra.append((b"client-request-id", echo))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        # Sign-in requests carry no bearer token and escape faults like the admin routes.
        admin = scope["path"].startswith(ADMIN_ROOT) or is_identity_path(scope["path"])
        try:
            refusal = self._guard(scope, headers) if scope["path"].startswith(ADMIN_ROOT) else None
            if refusal is not None:
                outcome["fault"] = "refused"
                await _send_error(stamped, refusal)
            elif admin:
                await self.routes(scope, receive, stamped)
            else:
                await self._api(scope, receive, stamped, headers, outcome)
        finally:
            status = outcome["status"] if outcome["fault"] not in ("reset", "commit-then-reset") else "reset"
            if not admin:
                self.sandbox.stats.requests[str(status or "-")] += 1
                self.sandbox.stats.methods[scope["method"]] += 1
                stamp = time.time()
                if self.sandbox.stats.first is None:
                    self.sandbox.stats.first = stamp
                self.sandbox.stats.last = stamp
            _log_request(scope, status, request_id, started, outcome["fault"])

    async def _api(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], outcome: dict[str, Any]
    ) -> None:
        sandbox = self.sandbox
        spec = sandbox.dice.spec
        if spec.latency:
            await asyncio.sleep(spec.latency)
        authorization = headers.get(b"authorization")
        issued_only = sandbox.options.require_issued_tokens
        caller = authenticate(
            authorization.decode("latin-1") if authorization else None,
            sandbox.identity.verify if issued_only else None,
        )
        if caller is None:
            hint = "a token this sandbox issued, not expired" if issued_only else "<token>"
            await _send_error(
                send,
                ApiError(
                    401,
                    "unauthenticated",
                    f"Send Authorization: Bearer {hint}.",
                    "Authorization",
                    {"WWW-Authenticate": 'Bearer realm="bulkref-sandbox"'},
                ),
            )
            return
        fault, commit_fault = sandbox.dice.draw()
        if sandbox.limiter is not None:
            wait = sandbox.limiter.take(caller.tenant)
            if wait:
                sandbox.stats.rate_limited += 1
                if sandbox.options.throttle_shape == "documented":
                    await _send_error(send, DocumentedThrottle(wait))
                    return
                await _send_error(
                    send,
                    ApiError(
                        429,
                        "tooManyRequests",
                        "Too many requests for this tenant; wait for Retry-After.",
                        None,
                        retry_after_headers(wait),
                    ),
                )
                return
        stats = sandbox.stats
        for kind in ANSWER_KINDS:
            stats.eligible[kind] += 1
        if fault is not None:
            stats.faults[fault] += 1
            outcome["fault"] = fault
            if fault == "reset":
                await self._drop(scope, receive)
            elif fault == "429" and sandbox.options.throttle_shape == "documented":
                await _send_error(send, DocumentedThrottle(spec.retry_after))
            else:
                await _send_error(send, _fault_error(fault, spec))
            return
        if scope["method"] not in _WRITES:
            await self.routes(scope, receive, send)
            return
        key = self._replay_key(scope, headers, caller.tenant)
        request: Fingerprint | None = None
        if key is not None:
            # The body decides whether a repeat is a retry or a reuse of the id:
            # read it here and hand it to the route afterwards.
            receive, body = await _read_body(receive)
            request = fingerprint(scope["method"], scope["path"], body)
            try:
                first = await sandbox.replays.first(key, request)
            except RequestIdReused as exc:
                await _send_error(send, _reused(exc.request_id))
                return
            if first is not None:
                stats.replayed += 1
                outcome["fault"] = "replayed"
                for message in first:
                    await send(message)
                return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        capture = commit_fault is not None or key is not None
        answered: list[Message] | None = None
        try:
            await self.routes(scope, receive, hold if capture else send)
            status = (held[0]["status"] if held else 500) if capture else (outcome["status"] or 500)
            if key is not None and 200 <= status < 300:
                answered = held
        finally:
            if key is not None:
                sandbox.replays.done(key, answered, request)
        if 200 <= status < 300:
            for kind in COMMIT_KINDS:
                stats.eligible[kind] += 1
            if commit_fault is not None:
                stats.faults[commit_fault] += 1
                outcome["fault"] = commit_fault
                if commit_fault == "commit-then-reset":
                    await self._drop(scope, receive)
                else:
                    await _send_error(send, _fault_error("500", spec))
                return
        for message in held:
            await send(message)

    def _replay_key(self, scope: Scope, headers: dict[bytes, bytes], tenant: str) -> tuple[str, str] | None:
        """(tenant, MS-RequestId) of a write to the referrals that carries one, when
        replays are on. PUT and PATCH too: a PATCH that adds a team member is no
        more idempotent than a create, and the headers page's retry rule names no
        method."""
        if not self.sandbox.options.replay_request_ids or scope["method"] not in _WRITES:
            return None
        if not scope["path"].startswith(API_ROOT):
            return None
        request_id = headers.get(b"ms-requestid", b"").decode("latin-1").strip()
        return (tenant, request_id) if request_id else None

    def _guard(self, scope: Scope, headers: dict[bytes, bytes]) -> ApiError | None:
        """Why an admin request is refused, or None. The admin routes change the
        whole state without the API's bearer token, so a web page must not reach
        them: not from another origin (a cross-site POST or fetch), not through a
        foreign Host name (DNS rebinding); and with --require-issued-tokens they
        take an issued token too (health excepted: it is a readiness probe)."""
        options = self.sandbox.options
        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        name = _host_name(host)
        if host and not _own_host(name, options.host):
            return ApiError(403, "accessDenied", f"The admin routes do not answer for host {name}.", "Host")
        origin = headers.get(b"origin")
        if (
            origin is not None
            and origin.decode("latin-1").lower() != f"{scope.get('scheme', 'http')}://{host}"
        ):
            return ApiError(403, "accessDenied", "The admin routes refuse cross-origin requests.", "Origin")
        if headers.get(b"sec-fetch-site", b"").lower() == b"cross-site":
            return ApiError(403, "accessDenied", "The admin routes refuse cross-site requests.", "Origin")
        if options.require_issued_tokens and scope["path"] != ADMIN_ROOT + "health":
            authorization = headers.get(b"authorization")
            text = authorization.decode("latin-1") if authorization else None
            if authenticate(text, self.sandbox.identity.verify) is None:
                return ApiError(
                    401,
                    "unauthenticated",
                    "The admin routes need Authorization: Bearer <a token this sandbox issued, not expired>.",
                    "Authorization",
                    {"WWW-Authenticate": 'Bearer realm="bulkref-sandbox"'},
                )
        return None

    async def _drop(self, scope: Scope, receive: Receive) -> None:
        """Close the connection without an answer, as a network reset would."""
        client = scope.get("client")
        transport = self.sandbox.transports.get((client[0], client[1])) if client else None
        if transport is None:
            # Not served by server.py (another ASGI server): the closest we can do
            # is to break off an answer, which the server turns into a closed connection.
            raise ConnectionAbortedError("sandbox fault: reset")
        transport.abort()
        # Wait for the server to notice, or it would answer 500 in our place.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                while (await receive())["type"] != "http.disconnect":
                    pass


class DocumentedThrottle(ApiError):
    """The throttling guidance's 429 (``--throttle-shape documented``): not the error
    object but ``{"statusCode": 429, "message": ...}``, and Retry-After in whole
    seconds without the sandbox's x-ms-retry-after-ms."""

    def __init__(self, wait: float) -> None:
        self.seconds = max(1, math.ceil(wait))
        message = f"Rate limit is exceeded. Try again in {self.seconds} seconds."
        super().__init__(429, "tooManyRequests", message, None, {"Retry-After": str(self.seconds)})

    def body(self) -> bytes:
        return dumps({"statusCode": 429, "message": self.message}).encode()


def _own_host(name: str, bound: str) -> bool:
    """Whether a Host header's name can be this sandbox's own: loopback, an IP
    address (a rebinding page comes with its own DNS name, never an address),
    the bound host, or this machine's name (with --allow-remote)."""
    if is_loopback(name) or name == bound.strip("[]").lower():
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in {socket.gethostname().lower(), socket.getfqdn().lower()}


def _host_name(host: str) -> str:
    """The name in a Host header, without its port (``[::1]:8765`` -> ``::1``)."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _fault_error(kind: str, spec: FaultSpec) -> ApiError:
    if kind == "429":
        return ApiError(
            429,
            "tooManyRequests",
            "Too many requests (injected fault); wait for Retry-After.",
            None,
            {"Retry-After": str(spec.retry_after)},
        )
    if kind == "503":
        return ApiError(
            503,
            "serviceNotAvailable",
            "The service is not available (injected fault); retry later.",
            None,
            {"Retry-After": str(spec.retry_after)},
        )
    return ApiError(500, "generalException", "The service failed (injected fault).")


async def _read_body(receive: Receive) -> tuple[Receive, bytes]:
    """The request body (at most a little over MAX_BODY: a larger one is the
    route's 413), and a ``receive`` that hands the same messages to the route."""
    messages: list[Message] = []
    body = bytearray()
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break  # the client went away: the route sees that too
        body += message.get("body", b"")
        if not message.get("more_body", False) or len(body) > MAX_BODY:
            break
    queue = deque(messages)

    async def again() -> Message:
        return queue.popleft() if queue else await receive()

    return again, bytes(body)


def _reused(request_id: str) -> ApiError:
    return ApiError(
        400,
        "requestIdReused",
        f"MS-RequestId {request_id} was used within the last 15 minutes for another request "
        "(another method, path or body). Repeat an id only to retry the same request; "
        "send a new id with every new request.",
        "MS-RequestId",
    )


async def _send_error(send: Send, error: ApiError) -> None:
    body = error.body()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _now() -> str:
    """The ``timestamp`` header: UTC, milliseconds."""
    seconds, millis = divmod(time.time_ns() // 1_000_000, 1000)
    return f"{second_text(seconds)}.{millis:03d}Z"


def _log_request(scope: Scope, status: object, request_id: str, started: float, fault: str | None) -> None:
    # Method, path, status, request id, duration: never headers (the
    # Authorization token), bodies or query strings (a $filter can name a
    # customer's email), which are customer data.
    if not log.isEnabledFor(logging.INFO):
        return
    target = scope["path"] + ("?..." if scope.get("query_string") else "")
    elapsed = (time.perf_counter() - started) * 1000
    suffix = f" fault={fault}" if fault else ""
    log.info(
        "%s %s %s request-id=%s %.1fms%s", scope["method"], target, status or "-", request_id, elapsed, suffix
    )


def create_app(options: SandboxOptions | None = None) -> Gateway:
    """The sandbox as an ASGI app; ``app.sandbox`` holds its state."""
    return Gateway(Sandbox(options or SandboxOptions()))
