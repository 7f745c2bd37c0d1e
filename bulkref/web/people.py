"""Who uses ``bulkref serve``: people signed in to Partner Center through their browser,
their sessions, and the local user of a server without ``--team``.

Sign-in (``/signin`` -> the identity provider -> ``/signin/done``) is the
authorization code flow with PKCE that ``bulkref.BrowserSignIn`` runs through
MSAL. The flow (with its PKCE verifier) stays in this process's memory, filed
under a random value in a short-lived cookie of the browser that started it, so
that an answer is only ever taken from the browser the sign-in began in (a page
elsewhere cannot sign someone in as another person). The session that follows
is a new random id (never one the browser had before), in an HttpOnly,
SameSite=Lax cookie (the way back from the identity provider is a cross-site
navigation, which a Strict cookie would miss; Lax still keeps it out of a
cross-site POST), Secure when served over https.

Sessions are files under ``<data dir>/web/sessions/``, named by the SHA-256 of
the session id: a restart keeps everyone signed in, and reading the folder gives
no cookie that works. A session ends after 12 hours unused, 7 days at most, or
at sign-out, which also forgets the person's tokens on this server.

Without ``--team`` nobody has to sign in: whoever opens the page is the local
user (``LOCAL``), and the record of anything they do says so. With ``--team``
every page but the sign-in's asks for a signed-in person.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

import bulkref
from bulkref.web.security import ASGIApp, Receive, Scope, Send, local_path
from bulkref.web.store import read_json, write_json

log = logging.getLogger("bulkref.web")

SESSION_IDLE = 12 * 3600  # seconds a session lasts unused
SESSION_MAX = 7 * 24 * 3600  # seconds a session lasts at most
FLOW_LIFETIME = 600  # seconds a sign-in may take, as the identity provider's code lasts
SEEN_EVERY = 60  # seconds between writes of a session's last use
# What a person who is not signed in may still reach with --team.
OPEN_PATHS = ("/signin", "/signin/start", "/signin/done", "/signout")


@dataclass(frozen=True)
class Actor:
    """Who did something: a signed-in person (``key`` tells people apart) or the local user."""

    key: str
    name: str
    username: str | None
    signed_in: bool

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "username": self.username, "signedIn": self.signed_in}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> Actor:
        if not doc:
            return LOCAL
        return cls(str(doc["key"]), str(doc["name"]), doc.get("username"), bool(doc.get("signedIn")))

    @property
    def label(self) -> str:
        """As a page or a record names them: the sign-in name, or "the local user"."""
        return self.username or self.name


LOCAL = Actor("local", "the local user", None, False)


def _actor(person: bulkref.Person) -> Actor:
    return Actor(person.key, person.name, person.username, True)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    """Sessions on disk, one file each, named by the hash of the session id."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, session_id: str) -> Path:
        return self.folder / f"{_digest(session_id)}.json"

    def new(self, person: bulkref.Person) -> str:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        session_id = secrets.token_urlsafe(32)
        stamp = time.time()
        write_json(self._path(session_id), {"person": person.as_json(), "created": stamp, "seen": stamp})
        return session_id

    def get(self, session_id: str) -> bulkref.Person | None:
        if not session_id or len(session_id) > 100:
            return None
        path = self._path(session_id)
        doc = read_json(path)
        if not isinstance(doc, dict):
            return None
        stamp = time.time()
        created, seen = float(doc.get("created") or 0), float(doc.get("seen") or 0)
        if stamp - seen > SESSION_IDLE or stamp - created > SESSION_MAX:
            path.unlink(missing_ok=True)
            return None
        if stamp - seen > SEEN_EVERY:
            write_json(path, {**doc, "seen": stamp})
        try:
            return bulkref.Person.from_json(doc["person"])
        except (KeyError, TypeError):
            return None

    def drop(self, session_id: str) -> None:
        self._path(session_id).unlink(missing_ok=True)


@dataclass
class _Flow:
    flow: dict[str, Any]
    next: str
    started: float


class People:
    """Sign-in, sessions and who is asking, for one server."""

    def __init__(
        self,
        root: Path,
        *,
        port: int,
        signing: bulkref.BrowserSignIn | None,
        team: bool,
        secure: bool,
        public_url: str | None = None,
    ) -> None:
        self.signing, self.team, self.secure, self.public_url = signing, team, secure, public_url
        self.sessions = Sessions(root / "sessions")
        self.cookie = f"bulkref_session_{port}"
        self.flow_cookie = f"bulkref_signin_{port}"
        self._flows: dict[str, _Flow] = {}
        self._lock = threading.Lock()
        self._run_key = secrets.token_bytes(32)  # CSRF tokens are of this run: see csrf()

    # -- who is asking -------------------------------------------------------------------
    def session_id(self, request: Request) -> str:
        return request.cookies.get(self.cookie, "")

    def person(self, request: Request) -> bulkref.Person | None:
        return self.sessions.get(self.session_id(request))

    def actor(self, request: Request) -> Actor:
        """The signed-in person, else the local user (a --team server never gets this far
        without a person: ``require_sign_in`` sends them to sign in first)."""
        person = self.person(request)
        return _actor(person) if person is not None else LOCAL

    def caller(self, request: Request) -> bulkref.Caller | None:
        """Whom Partner Center is called as for this request: the signed-in person, or
        None (the server's own credentials, for a server without --team)."""
        person = self.person(request)
        if person is None or self.signing is None:
            return None
        return self.signing.caller(person)

    def csrf(self, request: Request) -> str:
        """The CSRF token of this request's pages: new each time the server starts (as
        before), and bound to the session, so that one person's token is no use with
        another's cookie. Derived, never stored."""
        mac = hmac.new(self._run_key, self.session_id(request).encode(), hashlib.sha256)
        return mac.hexdigest()

    # -- routes -------------------------------------------------------------------------------
    def redirect_uri(self, request: Request) -> str:
        if self.public_url:
            return self.public_url.rstrip("/") + "/signin/done"
        # The Host header was checked by the guard: a loopback name or the --host served.
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{request.headers.get('host', '127.0.0.1')}/signin/done"

    async def start(self, request: Request) -> Response:
        if self.signing is None:
            raise HTTPException(
                409, "Signing in is not set up on this server: ask whoever runs it to set it up."
            )
        nxt = local_path(request.query_params.get("next") or "/")
        try:
            url, flow = self.signing.start(self.redirect_uri(request))
        except bulkref.BulkrefError as e:
            log.warning("sign-in could not start: %s", type(e).__name__)
            raise HTTPException(502, f"The sign-in service could not be reached: {_plain(str(e))}") from None
        key = secrets.token_urlsafe(24)
        with self._lock:
            stamp = time.time()
            for old in [k for k, f in self._flows.items() if stamp - f.started > FLOW_LIFETIME]:
                del self._flows[old]
            self._flows[key] = _Flow(flow, nxt, stamp)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            self.flow_cookie,
            key,
            max_age=FLOW_LIFETIME,
            path="/signin",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )
        return response

    async def done(self, request: Request) -> Response:
        key = request.cookies.get(self.flow_cookie, "")
        with self._lock:
            pending = self._flows.pop(key, None)
        if pending is None or self.signing is None or time.time() - pending.started > FLOW_LIFETIME:
            raise HTTPException(
                400, "This sign-in did not start in this browser, or took too long: sign in again."
            )
        answer = {k: v for k, v in request.query_params.items()}
        try:
            person = await _threaded(self.signing.finish, pending.flow, answer)
        except bulkref.BulkrefError as e:
            raise HTTPException(403, _plain(str(e))) from None
        old = self.session_id(request)
        if old:
            self.sessions.drop(old)
        session_id = self.sessions.new(person)
        log.info("signed in: %s", person.key[:8])
        response = RedirectResponse(pending.next, status_code=303)
        response.delete_cookie(self.flow_cookie, path="/signin")
        response.set_cookie(
            self.cookie,
            session_id,
            max_age=SESSION_MAX,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )
        return response

    async def sign_out(self, request: Request, person: bulkref.Person | None) -> Response:
        session_id = self.session_id(request)
        if session_id:
            self.sessions.drop(session_id)
        if person is not None and self.signing is not None:
            await _threaded(self.signing.sign_out, person.key)
        response = RedirectResponse("/signin" if self.team else "/", status_code=303)
        response.delete_cookie(self.cookie, path="/")
        return response

    # -- the team's gate ------------------------------------------------------------------------
    def gate(self, app: ASGIApp) -> ASGIApp:
        """``app`` behind the rule of --team: no page, file or form without a signed-in person."""
        if not self.team:
            return app

        async def gated(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            if scope["type"] != "http" or path in OPEN_PATHS or path.startswith("/static/"):
                await app(scope, receive, send)
                return
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            morsel = SimpleCookie(headers.get("cookie", "")).get(self.cookie)
            if morsel is not None and self.sessions.get(morsel.value) is not None:
                await app(scope, receive, send)
                return
            if scope["method"] in ("GET", "HEAD") and not path.endswith(".json"):
                query = scope.get("query_string", b"").decode("latin-1")
                back = quote(path + (f"?{query}" if query else ""), safe="")
                response: Response = RedirectResponse(f"/signin?next={back}", status_code=303)
            else:
                response = Response("Sign in first.", status_code=401, media_type="text/plain")
            await response(scope, receive, send)

        return gated


def _plain(text: str) -> str:
    """A library message for a browser user: the sign-in's own commands are not theirs to run."""
    return text.replace("run `bulkref login` again", "sign in again").replace(
        "run `bulkref login`", "sign in"
    )


async def _threaded(function: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


def signing_from(
    folder: Path,
    env: Mapping[str, str] = os.environ,
    *,
    authority: str | None = None,
    tenant: str | None = None,
    client_id: str | None = None,
) -> bulkref.BrowserSignIn | None:
    """The server's browser sign-in (None when no client id is set)."""
    return bulkref.BrowserSignIn.from_settings(
        folder, env, authority=authority, tenant=tenant, client_id=client_id
    )
