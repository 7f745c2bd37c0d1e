"""What keeps ``bulkref serve`` safe by default, as one ASGI middleware and a CSRF check.

- The access token (bound beyond loopback): every request presents it, in the
  ``token`` query parameter of the printed URL (then traded for an HttpOnly
  cookie and dropped from the address) or in that cookie, as Jupyter does.
- The Host header must name this server (``allowed_host``): a loopback address
  or ``localhost``, or exactly the ``--host`` it serves, or the host of the
  ``--public-url`` a reverse proxy serves it at. A page on a name of its
  own that resolves to 127.0.0.1 (DNS rebinding: ``127.0.0.1.evil.example``)
  gets nothing, token or not.
- Request bodies over the upload limit are refused (413), by Content-Length
  and by counting what arrives.
- Every response carries a Content-Security-Policy that admits only the app's
  own script and style files, and headers that keep pages out of frames and
  referrers out of requests.
- ``check_csrf``: every form carries the CSRF token (``csrf_token``, new each time
  the server starts); a POST without it is 403.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import ipaddress
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from starlette.exceptions import HTTPException

log = logging.getLogger("bulkref.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Addresses that listen on every interface: the server then has no one name of its own.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address, without a port; ``[::1]`` may keep its
    brackets) is this machine's loopback: ``localhost``, or an IP address that the
    standard library calls loopback (127.0.0.0/8, ::1). Decided by parsing, never
    by a prefix: ``127.0.0.1.evil.example`` is a DNS name anyone can point at
    127.0.0.1, so it is not loopback. ``serve`` asks it whether ``--host`` needs
    the access token, and every request through ``allowed_host``."""
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str | None:
    """The name in a Host header, lowercased and without its port: ``127.0.0.1:8780``
    -> ``127.0.0.1``, ``[::1]:8780`` -> ``::1``. None for what is not a host: empty,
    a port that is not a number, anything after the brackets but a port."""
    header = header.strip().lower()
    if header.startswith("["):
        inside, closed, rest = header[1:].partition("]")
        if not closed or (rest and not _is_port(rest)):
            return None
        return inside or None
    if header.count(":") == 1:
        name, _, port = header.partition(":")
        return name if name and _is_port(":" + port) else None
    return header or None  # no port, or a bare IPv6 address (which has several colons)


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isascii() and text[1:].isdigit() and len(text) <= 6


def allowed_host(header: str, served: str) -> bool:
    """Whether a request's Host header names this server, served on ``served``
    (the ``--host`` given). Loopback addresses and ``localhost`` always; the name
    or address served, exactly; and, when ``served`` is every interface
    (``0.0.0.0``), this machine's own names (the printed URL uses one) and IP
    addresses, since a rebinding page always comes with a DNS name of its own."""
    name = host_name(header)
    if name is None:
        return False
    if is_loopback(name):
        return True
    own = served.strip().lower().removeprefix("[").removesuffix("]")
    if own not in WILDCARD_HOSTS:
        return name == own
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in _machine_names()


@functools.cache  # getfqdn may ask DNS: once per process, not once per request
def _machine_names() -> frozenset[str]:
    return frozenset({socket.gethostname().lower(), socket.getfqdn().lower()})


def local_path(path: str) -> str:
    """``path`` as a Location that stays on this origin: a browser reads ``//host/``
    and ``/\\host/`` as another site and ``scheme:`` as a URL of its own, so
    anything but one slash and a path goes to ``/``. Percent-encoded again, so that
    no control character or space can reach the header either."""
    if not path.startswith("/") or path[1:2] in ("/", "\\"):
        return "/"
    return quote(path, safe="/-._~!$&'()*+,;=:@")


def csrf_token(folder: Path) -> str:
    """A new CSRF token for this server's run, kept in memory only. A restart
    voids the pages shown before it (their forms ask for a reload): a token never
    written down cannot be read from the data directory, and one that lasted
    forever would forge forms forever once read. ``folder`` loses the token file
    that earlier versions kept there for good."""
    with contextlib.suppress(OSError):
        (folder / "csrf-token").unlink(missing_ok=True)
    return secrets.token_urlsafe(32)


def check_csrf(form: Any, expected: str) -> None:
    given = form.get("csrf") if form is not None else None
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "This form has expired or did not come from bulkref: reload the page.")


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        access_token: str | None,
        port: int,
        max_body: int,
        host: str = "127.0.0.1",
        public_url: str | None = None,
    ) -> None:
        self.app, self.token, self.max_body, self.host = app, access_token, max_body, host
        self.cookie = f"bulkref_access_{port}"
        # Behind a reverse proxy the browser's Host is the proxy's name: exactly that one.
        self.public_host = _public_host(public_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        quiet = scope["path"].startswith("/static/") or scope["path"].endswith("/progress.json")

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if not quiet or status >= 400:  # the pages poll progress.json several times a second
                    # The path only: the query may carry the access token.
                    log.info("%s %s %s", scope["method"], scope["path"], status)
                headers = list(message.get("headers", []))
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                # A response with a policy of its own keeps it: the plan page admits its
                # inline style and script by hash, and may be framed by the review page.
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    extra += [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY")]
                message["headers"] = [*headers, *extra]
            await send(message)

        # First, token or not: a rebinding page must not even be handed the token's cookie.
        host = headers.get("host", "")
        if not allowed_host(host, self.host) and not (
            self.public_host is not None and host.strip().lower() == self.public_host
        ):
            await _plain(secured, 403, "This address is not served here: open the URL bulkref serve printed.")
            return
        if self.token is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.get("token")
            if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
                rest = urlencode({k: v for k, v in query.items() if k != "token"})
                location = local_path(scope["path"]) + (f"?{rest}" if rest else "")
                await _redirect(secured, location, self._cookie_header())
                return
            cookie = SimpleCookie(headers.get("cookie", "")).get(self.cookie)
            if cookie is None or not hmac.compare_digest(cookie.value.encode(), self.token.encode()):
                await _plain(
                    secured, 403, "This bulkref serve needs its access token: open the URL it printed."
                )
                return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _plain(secured, 413, f"The upload is over {self.max_body // 2**20} MB.")
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, f"The upload is over {self.max_body // 2**20} MB.")
            return message

        await self.app(scope, counted, secured)

    def _cookie_header(self) -> bytes:
        assert self.token is not None
        # Lax, not Strict: the way back from the identity provider after a sign-in is a
        # navigation from another site, which must arrive with it. Lax still keeps it
        # off every cross-site POST and every request a page on another site makes.
        return f"{self.cookie}={self.token}; HttpOnly; SameSite=Lax; Path=/".encode()


def _public_host(url: str | None) -> str | None:
    """``host[:port]`` of ``url`` as a Host header names it (the default port left out)."""
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    default = {"https": 443, "http": 80}.get(parts.scheme)
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return name if parts.port in (None, default) else f"{name}:{parts.port}"


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str, cookie: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"set-cookie", cookie), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
