"""Which API a command talks to, and with which token (shared/docs/cli.md).

::

    with resolve(api_url, sandbox) as target:       # the flags of plan / apply / export
        async with target.client() as client:        # (inside asyncio.run)
            ...

- ``--sandbox``: the embedded local sandbox, served from a background thread
  for the life of the ``with`` block, its state in ``<data dir>/sandbox.db``
  so that separate commands see the same referrals (several processes may
  share the file). Any bearer token works there; bulkref sends ``sandbox``.
- else ``--api-url URL``, else ``BULKREF_API_URL``, else the real Partner
  Center (``PARTNER_CENTER_URL``). The flag wins over the environment.
- Data directory: ``BULKREF_HOME`` when set, else the platform's user data
  directory (``platformdirs``: ~/.local/share/bulkref on Linux,
  ~/Library/Application Support/bulkref on macOS, %LOCALAPPDATA%\\bulkref on
  Windows). Not click's app dir: that is the configuration directory, and a
  database of referrals is data.
- Token for a real service: a ``Caller``'s when one is given (a person signed in
  through ``bulkref serve``: every call is made as that person); else
  ``BULKREF_ACCESS_TOKEN`` (a bearer token for
  ``https://api.partner.microsoft.com``), read at each call; else the
  ``bulkref login`` sign-in (``bulkref.api.signin``: MSAL's cache, refreshed near
  expiry). ``Target.token`` is the callable the client calls per request.

A URL must be https, except on a loopback host: the bearer token would
otherwise cross the network in clear text. A URL without a path (``http://127.0.0.1:8765``,
what ``bulkref sandbox`` listens on) means the referrals collection on that host.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from bulkref.api.client import ReferralsClient, is_loopback
from bulkref.api.settings import ENV_ACCESS_TOKEN, ENV_API_URL
from bulkref.errors import BadTarget, BulkrefError, DataDirError, NoCredentials
from bulkref.files import ENV_HOME, data_dir

if TYPE_CHECKING:  # the core never imports the sandbox at run time, except for --sandbox
    from bulkref.sandbox import SandboxServer

PARTNER_CENTER_URL = "https://api.partner.microsoft.com/v1.0/engagements/referrals"
API_PATH = "/v1.0/engagements/referrals"
SANDBOX_TOKEN = "sandbox"  # not a secret: the sandbox accepts any bearer token


@dataclass(frozen=True)
class Caller:
    """Who the calls to a real service are made as, when not the process's own sign-in:
    a person signed in through ``bulkref serve`` (their token source, their name).
    ``token`` is called before each request, as ``Target.token`` is."""

    token: Callable[[], str]
    account: str
    tenant: str | None = None
    credentials: str = "browser sign-in"

    def __repr__(self) -> str:  # the token source is no business of a log line
        return f"Caller(account={self.account!r}, tenant={self.tenant!r})"


class Target:
    """An API to talk to: its URL, its token source, and (for --sandbox) the server behind it.

    Use it as a context manager: entering starts the embedded sandbox (a real
    service needs nothing), leaving stops it.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        sandbox_db: Path | None = None,
        caller: Caller | None = None,
    ) -> None:
        if (url is None) == (sandbox_db is None):
            raise ValueError("a Target is either a URL or the sandbox")
        self.caller = caller if sandbox_db is None else None  # the sandbox takes any token
        self._url = url
        self._env: Mapping[str, str] = os.environ if env is None else env
        self.sandbox_db = sandbox_db
        self._server: SandboxServer | None = None
        self._signed_in: Callable[[], str] | None = None  # the bulkref login token source, once read

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox_db is not None

    @property
    def url(self) -> str:
        """The referrals collection URL (for the sandbox: once started)."""
        if self._url is not None:
            return self._url
        if self._server is None:
            raise RuntimeError("the sandbox is not running: use the Target in a with block")
        return self._server.url

    def token(self) -> str:
        """The bearer token for the next call; ``NoCredentials`` when there is none."""
        if self.is_sandbox:
            return SANDBOX_TOKEN
        if self.caller is not None:
            return self.caller.token()
        token = self._env.get(ENV_ACCESS_TOKEN, "").strip()
        if token:
            return token
        if self._signed_in is None:
            from bulkref.api.signin import stored_token_source  # MSAL is loaded for a real service only

            self._signed_in = stored_token_source(self._env)
        if self._signed_in is None:
            raise NoCredentials(
                f"No credentials for {self.url}: run `bulkref login` (or set "
                f"{ENV_ACCESS_TOKEN}), or use --sandbox to rehearse locally."
            )
        return self._signed_in()

    def describe(self) -> str:
        if self.sandbox_db is not None:
            return f"local sandbox (state in {self.sandbox_db})"
        if self._url == PARTNER_CENTER_URL:
            return f"Partner Center ({PARTNER_CENTER_URL})"
        return str(self._url)

    def client(self, **kw: Any) -> ReferralsClient:
        """A client of this target; ``kw`` goes to ``ReferralsClient`` (timeout, retry, ...)."""
        return ReferralsClient(self.url, self.token, **kw)

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> Target:
        if self.sandbox_db is not None and self._server is None:
            self._server = _start_sandbox(self.sandbox_db)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Target:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def resolve(
    api_url: str | None, sandbox: bool, env: Mapping[str, str] = os.environ, caller: Caller | None = None
) -> Target:
    """The target the flags and the environment name (nothing is started yet); its calls
    are made as ``caller`` when one is given."""
    if sandbox and api_url is not None:
        raise BadTarget("--sandbox and --api-url name two different targets: give one of them.")
    if sandbox:
        return Target(sandbox_db=data_dir(env) / "sandbox.db", env=env)
    if api_url is not None:
        return Target(checked_url(api_url, "--api-url"), env=env, caller=caller)
    from_env = env.get(ENV_API_URL, "").strip()
    if from_env:
        return Target(checked_url(from_env, ENV_API_URL), env=env, caller=caller)
    return Target(PARTNER_CENTER_URL, env=env, caller=caller)


def checked_url(text: str, source: str) -> str:
    """``text`` as a referrals collection URL; ``BadTarget`` naming ``source`` when unusable."""
    try:
        url = httpx.URL(text.strip())
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise BadTarget(f"{source} {text!r} is not an http or https URL such as {PARTNER_CENTER_URL}.")
    if url.scheme == "http" and not is_loopback(url.host):
        raise BadTarget(
            f"{source} {text} is plain http, which would send the access token in clear text: "
            "use https (plain http is only for a local sandbox)."
        )
    if url.path in ("", "/"):
        url = url.copy_with(path=API_PATH)
    return str(url.copy_with(fragment=None)).rstrip("/")


def _start_sandbox(db: Path) -> SandboxServer:
    from bulkref.sandbox import SandboxOptions, SandboxServer

    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        return SandboxServer(SandboxOptions(host="127.0.0.1", port=0, db=db)).start()
    except (OSError, RuntimeError, sqlite3.Error) as exc:
        raise DataDirError(
            f"Could not start the local sandbox with its state in {db} ({exc}): check that "
            f"the folder is writable, or set {ENV_HOME} to another one."
        ) from exc


@dataclass(frozen=True)
class TargetInfo:
    """What a page or a heading says about the target, before anything is sent.

    ``kind`` is ``sandbox`` or ``service``; ``account`` the signed-in user (or
    how the token is given), None when there are no credentials yet. Never a token."""

    kind: str
    name: str
    url: str | None
    account: str | None
    state: str | None = None  # the sandbox's state file

    @property
    def is_sandbox(self) -> bool:
        return self.kind == "sandbox"


def describe_target(api_url: str | None, sandbox: bool, env: Mapping[str, str] = os.environ) -> TargetInfo:
    """The target the flags name, for people: which service and which account.

    Reads files only (the sign-in record), no network; ``BadTarget`` as ``resolve``."""
    where = resolve(api_url, sandbox, env)
    if where.sandbox_db is not None:
        return TargetInfo("sandbox", "Local sandbox", None, "any (sandbox)", str(where.sandbox_db))
    url = where.url
    name = "Partner Center" if url == PARTNER_CENTER_URL else "Referrals API"
    if env.get(ENV_ACCESS_TOKEN, "").strip():
        return TargetInfo("service", name, url, f"the token in {ENV_ACCESS_TOKEN}")
    from bulkref.api.signin import whoami  # MSAL: loaded for a real service only

    try:
        signed_in = whoami(env, warn=lambda message: None)
    except BulkrefError:
        return TargetInfo("service", name, url, None)
    c = signed_in.credentials
    account = f"app {c.client_id}" if c.app_only else (signed_in.username or "signed in")
    return TargetInfo("service", name, url, account)
