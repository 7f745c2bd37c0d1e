"""Signing in to Partner Center with MSAL: ``bulkref login``, ``logout``, ``whoami``
and the token source the API client calls before each request.

::

    creds = login_credentials(os.environ, username="ann@contoso.example")
    signed_in = login(creds, Secrets(password=...))      # once; SignInRefused when refused
    source = stored_token_source(os.environ)              # later, in any process: None if never signed in
    ReferralsClient(url, source)                          # source() -> bearer token, refreshed near expiry
    whoami(os.environ); logout(os.environ)

Grants (shared/docs/referrals-api.md, Authentication). The Referrals API takes
user (delegated) tokens for ``https://api.partner.microsoft.com``:

- device code (``login --device-code``, the default for a person): MSAL's
  message names a URL and a code to enter there; works with MFA.
- password (``--username U`` or ``BULKREF_USERNAME``; the password from
  ``BULKREF_PASSWORD`` or a hidden prompt): the token request Partner Center
  documents, with the app's secret too when ``BULKREF_CLIENT_SECRET`` is set
  (its "App + User" sign-in). No MFA.
- client credentials (``BULKREF_CLIENT_SECRET`` and no user name): app-only
  tokens, which the Referrals API may refuse (it supports user access only).

User tokens are asked for ``https://api.partner.microsoft.com/user_impersonation``
(the scope Entra ID echoes back, so MSAL finds the cached token again); app
tokens for ``.../.default`` (the only form client credentials accept).

Where things are kept (the data directory, ``bulkref.files.data_dir``):

- ``token_cache.bin``: MSAL's token cache (access, refresh and ID tokens, the
  account), through msal-extensions' ``PersistedTokenCache``, which locks the
  file across processes and reloads it when another process refreshed. On
  Windows and macOS it is encrypted (DPAPI, Keychain); elsewhere it is a plain
  file made 0600 (libsecret needs PyGObject and a running keyring, which the
  servers bulk imports run on seldom have, and a failing or hanging keyring is
  worse than a private file). A looser file is tightened with a warning; one
  owned by someone else is refused. Without msal-extensions, a plain
  ``SerializableTokenCache`` is written to the same private file after each
  change (``has_state_changed``).
- ``auth.json`` (0600, no secrets): authority, client id, grant, user name,
  tenant and MSAL's account id: what later commands need to find the sign-in.

Secrets (password, client secret) come from the environment or a prompt only;
they are never stored (the cache holds tokens, which is what it is for),
printed, logged or put in an error message: a message built from the sign-in
service's answer has them blanked out should the service echo one.

Settings: ``BULKREF_AUTHORITY`` (an https URL with the tenant as its path, e.g.
a local sandbox's ``https://127.0.0.1:8765/common``), else
``https://login.microsoftonline.com/`` + ``BULKREF_TENANT_ID`` (default
``organizations``); ``BULKREF_CLIENT_ID`` (required: the app registered for
Partner Center); ``BULKREF_USERNAME``. Flags of ``login`` beat the
environment; for later commands the environment beats ``auth.json``.

Trust. MSAL signs in over https only (it refuses an http authority), and uses
requests: bulkref gives it ``SSL_CERT_FILE`` when set (the variable httpx, the
API client, honours too, so one export trusts a sandbox's CA for both), else
requests' own ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``, else certifi.

Ports. MSAL keeps only the host name of an authority when it builds the
user-realm discovery URL of a password sign-in, so an authority on a port other
than 443 (a local sandbox) would be asked on 443
(AzureAD/microsoft-authentication-library-for-python#259, where the maintainers
point to a custom http client). bulkref's http client puts the authority's
port back on URLs to the authority's host that have none.

Refresh. The token source remembers the last access token and asks MSAL
(``acquire_token_silent``) again once it is within a tenth of its lifetime (at
most 5 minutes, MSAL's own margin) of expiry; MSAL then uses the refresh token.
A refused refresh, or no account in the cache, is ``NotSignedIn`` (exit 2).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import msal
import requests

from bulkref.api.settings import (  # noqa: F401  (re-exported: what sign-in reads, by name)
    APP_SCOPE,
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_TENANT,
    ENV_AUTHORITY,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_PASSWORD,
    ENV_TENANT_ID,
    ENV_USERNAME,
    RESOURCE,
    USER_SCOPE,
)
from bulkref.errors import AuthError, BadSettings, BulkrefError, NotSignedIn, SignInRefused  # noqa: F401  (re-exported: raised here)
from bulkref.files import atomic_write, data_dir

CACHE_FILE = "token_cache.bin"
CONFIG_FILE = "auth.json"
HTTP_TIMEOUT = 30.0  # seconds per sign-in request; MSAL's own session would wait forever

Warn = Callable[[str], None]


def _stderr_warning(message: str) -> None:
    print(f"bulkref: warning: {message}", file=sys.stderr)


# -- errors ----------------------------------------------------------------------------------


# -- settings ------------------------------------------------------------------------------


class Grant(StrEnum):
    DEVICE_CODE = "device_code"
    PASSWORD = "password"
    CLIENT_CREDENTIALS = "client_credentials"
    AUTHORIZATION_CODE = "authorization_code"  # a person in a browser (bulkref serve)


GRANT_NAMES = {
    Grant.AUTHORIZATION_CODE: "browser sign-in (authorization code with PKCE)",
    Grant.DEVICE_CODE: "device code",
    Grant.PASSWORD: "user name and password",
    Grant.CLIENT_CREDENTIALS: "client credentials (app-only)",
}


@dataclass(frozen=True)
class Credentials:
    """Who signs in, where and how. No secrets: those travel in ``Secrets``."""

    authority: str
    client_id: str
    grant: Grant
    username: str | None = None
    confidential: bool = False  # the app signs in with its client secret too

    @property
    def tenant(self) -> str:
        return urlsplit(self.authority).path.strip("/").split("/")[0]

    @property
    def app_only(self) -> bool:
        return self.grant is Grant.CLIENT_CREDENTIALS

    def who(self) -> str:
        return f"the app {self.client_id}" if self.app_only else (self.username or "the signed-in user")


@dataclass(frozen=True)
class Secrets:
    """The password and client secret of one sign-in: kept out of repr, never stored."""

    password: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from bulkref.redact import remember

        for secret in self.values():  # scrubbed from any text shown or written from now on
            remember(secret)

    def values(self) -> list[str]:
        return [s for s in (self.password, self.client_secret) if s]


def login_credentials(
    env: Mapping[str, str],
    *,
    authority: str | None = None,
    tenant: str | None = None,
    client_id: str | None = None,
    username: str | None = None,
    device_code: bool = False,
) -> Credentials:
    """What ``bulkref login`` signs in with: its flags, else the environment, else defaults."""
    if device_code and username:
        raise BadSettings("--device-code and --username are two ways to sign in: give one of them.")
    client_id = (client_id or _env(env, ENV_CLIENT_ID) or "").strip()
    if not client_id:
        raise BadSettings(
            f"No client id: set {ENV_CLIENT_ID} or pass --client-id (the application id of "
            "the app registered for Partner Center in your tenant)."
        )
    url = authority_url(authority or _env(env, ENV_AUTHORITY), tenant or _env(env, ENV_TENANT_ID))
    username = None if device_code else (username or _env(env, ENV_USERNAME))
    has_secret = bool(_env(env, ENV_CLIENT_SECRET))
    if device_code or (not username and not has_secret):
        return Credentials(url, client_id, Grant.DEVICE_CODE)
    if username:
        return Credentials(url, client_id, Grant.PASSWORD, username.strip(), confidential=has_secret)
    app = Credentials(url, client_id, Grant.CLIENT_CREDENTIALS, confidential=True)
    if app.tenant.lower() in ("common", "organizations"):
        raise BadSettings(
            f"An app signs in to its own tenant, and {url} names none: set {ENV_TENANT_ID} "
            "or pass --tenant (or sign in as a user with --username or --device-code)."
        )
    return app


def authority_url(authority: str | None, tenant: str | None) -> str:
    """``https://host[:port]/tenant`` from an authority URL and/or a tenant; ``BadSettings`` if unusable."""
    tenant = (tenant or "").strip().strip("/") or None
    if not authority:
        return f"{DEFAULT_AUTHORITY_HOST}/{tenant or DEFAULT_TENANT}"
    parts = urlsplit(authority.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise BadSettings(
            f"The authority {authority} is not an https URL: MSAL signs in over https only "
            "(to sign in against a local sandbox, start it with --tls)."
        )
    path = parts.path.strip("/")
    if path and tenant and path.split("/")[0].lower() != tenant.lower():
        raise BadSettings(
            f"The authority {authority} names tenant {path.split('/')[0]} and the settings "
            f"name {tenant}: give the tenant once (in the URL or as the tenant id)."
        )
    return urlunsplit(("https", parts.netloc, "/" + (path or tenant or DEFAULT_TENANT), "", ""))


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


# -- files: the private-file rules ----------------------------------------------------------


def _data_dir(env: Mapping[str, str], create: bool = True) -> Path:
    folder = data_dir(env)
    if create:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def ensure_private(path: Path, warn: Warn = _stderr_warning) -> None:
    """Make ``path`` a regular file only its owner can read: created 0600 when missing,
    tightened (with a warning) when looser, refused when someone else owns it."""
    if os.name != "posix":  # NTFS has no mode bits; the user profile folder is private already
        path.touch(exist_ok=True)
        return
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:  # another bulkref made it meanwhile: check that one
            return ensure_private(path, warn)
        os.fchmod(fd, 0o600)  # the umask can only have removed bits, but say it exactly
        os.close(fd)
        return
    if not stat.S_ISREG(info.st_mode):
        raise AuthError(f"{path} is not a regular file (a link or a folder?): remove it, then sign in again.")
    if info.st_uid != os.getuid():
        raise AuthError(
            f"{path} belongs to another user, so it cannot be kept private: remove it or "
            "set BULKREF_HOME to a folder of your own."
        )
    if info.st_mode & 0o077:
        os.chmod(path, 0o600)
        warn(
            f"{path} could be read by other users (mode {stat.S_IMODE(info.st_mode):04o}); it is 0600 now. "
            "If someone may have read it, run `bulkref logout` and sign in again."
        )


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, the new file 0600 from its creation."""

    def write(f: IO[Any]) -> None:
        f.write(text)

    atomic_write(path, "w", write, what="sign-in file", private=True)


# -- the token cache ---------------------------------------------------------------------------


def open_cache(path: Path, warn: Warn = _stderr_warning) -> msal.SerializableTokenCache:
    """MSAL's token cache kept in ``path`` (see the module's docstring)."""
    import msal_extensions  # a required dependency; loaded only when a cache is opened

    persistence = _persistence(msal_extensions, path, warn)
    if not persistence.is_encrypted:
        ensure_private(path, warn)
    return msal_extensions.PersistedTokenCache(persistence)


def _persistence(extensions: Any, path: Path, warn: Warn) -> Any:
    if sys.platform in ("win32", "darwin"):
        try:
            persistence = extensions.build_encrypted_persistence(str(path))
            with contextlib.suppress(extensions.persistence.PersistenceNotFound):
                persistence.load()  # a trial: a locked Keychain or a broken DPAPI shows here
            return persistence
        except Exception as exc:  # any failure of the platform's store: fall back, say so
            warn(
                f"the system's encrypted store cannot hold the token cache ({type(exc).__name__}); "
                f"it is kept in the private file {path} instead."
            )
    return extensions.FilePersistence(str(path))


def _wipe(
    cache: msal.SerializableTokenCache, keep: Callable[[dict[str, Any]], bool] = lambda entry: False
) -> None:
    """Remove every token and account that ``keep`` does not want (all by default)."""
    kinds = msal.TokenCache.CredentialType
    for kind in (kinds.ACCESS_TOKEN, kinds.REFRESH_TOKEN, kinds.ID_TOKEN, kinds.ACCOUNT):
        for entry in list(cache.search(kind)):
            if not keep(entry):
                cache.modify(kind, entry)


# -- the sign-in's record (auth.json) --------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """``auth.json``: the sign-in later commands use. Nothing in it is a secret."""

    credentials: Credentials
    tenant_id: str | None = None
    home_account_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        c = self.credentials
        return {
            "version": 1,
            "authority": c.authority,
            "client_id": c.client_id,
            "grant": c.grant.value,
            "username": c.username,
            "confidential": c.confidential,
            "tenant_id": self.tenant_id,
            "home_account_id": self.home_account_id,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Record:
        credentials = Credentials(
            str(doc["authority"]),
            str(doc["client_id"]),
            Grant(doc["grant"]),
            doc.get("username"),
            bool(doc.get("confidential")),
        )
        return cls(credentials, doc.get("tenant_id"), doc.get("home_account_id"))


def load_record(env: Mapping[str, str]) -> Record | None:
    """The last sign-in, None when there is none."""
    path = _data_dir(env, create=False) / CONFIG_FILE
    try:
        return Record.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuthError(
            f"{path} cannot be read ({exc}): run `bulkref logout`, then `bulkref login`."
        ) from None


def _with_env(record: Record, env: Mapping[str, str]) -> Credentials:
    """The recorded credentials with the environment's BULKREF_* settings over them."""
    c = record.credentials
    authority = _env(env, ENV_AUTHORITY)
    tenant = _env(env, ENV_TENANT_ID)
    url = (
        authority_url(authority, tenant)
        if authority
        else (authority_url(c.authority.rsplit("/", 1)[0], tenant) if tenant else c.authority)
    )
    username = _env(env, ENV_USERNAME) if not c.app_only else None
    return Credentials(
        url, _env(env, ENV_CLIENT_ID) or c.client_id, c.grant, username or c.username, c.confidential
    )


# -- MSAL ---------------------------------------------------------------------------------------


class AuthorityHttp(requests.Session):
    """MSAL's HTTP client: requests, with the CA bundle to trust, a time-out, and the
    authority's port kept (see the module's docstring, Ports)."""

    def __init__(self, authority: str, verify: str | bool) -> None:
        super().__init__()
        self._authority = urlsplit(authority)
        self.verify = verify
        # A handful of sign-in requests per run: no pooled connection is worth leaving open
        # (a local sandbox would wait for it when it stops).
        self.headers["Connection"] = "close"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        # Given per request: requests lets REQUESTS_CA_BUNDLE override the session's verify otherwise.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, self.with_port(str(url)), *args, **kwargs)

    def with_port(self, url: str) -> str:
        parts = urlsplit(url)
        home = self._authority
        if (
            home.port is not None
            and parts.scheme == "https"
            and parts.port is None
            and parts.hostname == home.hostname
        ):
            return urlunsplit(parts._replace(netloc=home.netloc))
        return url


def trusted_cas(env: Mapping[str, str]) -> str | bool:
    """What requests should verify the sign-in service's certificate with."""
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = _env(env, name)
        if value:
            return value
    return True


def _application(
    credentials: Credentials,
    cache: msal.SerializableTokenCache,
    client_secret: str | None,
    env: Mapping[str, str],
) -> msal.ClientApplication:
    options: dict[str, Any] = {
        "authority": credentials.authority,
        "token_cache": cache,
        "http_client": AuthorityHttp(credentials.authority, trusted_cas(env)),
    }
    host = urlsplit(credentials.authority).hostname or ""
    if host not in getattr(msal.authority, "WELL_KNOWN_AUTHORITY_HOSTS", {"login.microsoftonline.com"}):
        # Not Microsoft's: no instance discovery (it would ask login.microsoftonline.com about
        # this host), the OpenID configuration straight from the authority itself.
        options.update(validate_authority=False, instance_discovery=False)
    with _reaching(credentials.authority):
        try:
            if credentials.confidential and credentials.grant is not Grant.DEVICE_CODE:
                if not client_secret:
                    raise NotSignedIn(
                        f"The sign-in of {credentials.who()} uses the app's client secret, "
                        f"and {ENV_CLIENT_SECRET} is not set: set it, or run `bulkref login` "
                        "again."
                    )
                return msal.ConfidentialClientApplication(
                    credentials.client_id, client_credential=client_secret, **options
                )
            return msal.PublicClientApplication(credentials.client_id, **options)
        except ValueError as exc:  # MSAL's words for an authority whose discovery failed
            raise AuthError(
                f"The sign-in service at {credentials.authority} gave no usable OpenID "
                "configuration: check the tenant and the authority (--authority or "
                f"{ENV_AUTHORITY})."
            ) from exc


@contextlib.contextmanager
def _reaching(authority: str) -> Iterator[None]:
    """requests' failures as one sentence (never its text: it can hold a URL with a query)."""
    try:
        yield
    except requests.exceptions.SSLError as exc:
        raise AuthError(
            f"Could not reach the sign-in service at {authority}: its certificate is not trusted "
            "(for a local sandbox started with --tls, set SSL_CERT_FILE to the certificate "
            "authority file it printed)."
        ) from exc
    except requests.RequestException as exc:
        raise AuthError(
            f"Could not reach the sign-in service at {authority} ({type(exc).__name__}): check "
            f"the network and the authority (--authority or {ENV_AUTHORITY})."
        ) from exc


def _refusal(result: Mapping[str, Any], secrets: Secrets) -> str:
    """The service's reason: its error code and the first line of its description, secrets blanked."""
    code = str(result.get("error") or "error")
    description = str(result.get("error_description") or "").strip().splitlines()
    reason = f"{code}: {description[0].strip().rstrip('.')}" if description else code
    for secret in secrets.values():
        reason = reason.replace(secret, "***")
    return reason


def _scopes(credentials: Credentials) -> list[str]:
    return [APP_SCOPE if credentials.app_only else USER_SCOPE]


# -- login, logout, whoami -------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    """A sign-in as ``whoami`` shows it."""

    credentials: Credentials
    username: str | None
    tenant_id: str | None
    expires_on: float | None  # the cached access token's expiry, epoch seconds

    def lines(self) -> list[str]:
        c = self.credentials
        who = f"app {c.client_id} (app-only)" if c.app_only else (self.username or "?")
        if self.expires_on is None:
            token = "none cached; the next command asks for one"
        else:
            when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.expires_on))
            token = (
                f"valid until {when}"
                if self.expires_on > time.time()
                else f"expired at {when}; the next command refreshes it"
            )
        return [
            f"Signed in as {who}",
            f"  tenant:    {self.tenant_id or c.tenant}",
            f"  authority: {c.authority}",
            f"  client id: {c.client_id}",
            f"  sign-in:   {GRANT_NAMES[c.grant]}",
            f"  token:     {token}",
        ]

    def as_json(self) -> dict[str, Any]:
        c = self.credentials
        return {
            "username": self.username,
            "appOnly": c.app_only,
            "tenant": self.tenant_id or c.tenant,
            "authority": c.authority,
            "clientId": c.client_id,
            "grant": c.grant.value,
            "tokenExpires": self.expires_on,
        }


def login(
    credentials: Credentials,
    secrets: Secrets,
    *,
    env: Mapping[str, str] = os.environ,
    show: Callable[[str], None] = print,
    warn: Warn = _stderr_warning,
) -> SignedIn:
    """Sign in and record the sign-in; ``SignInRefused`` when the service says no.

    ``show`` gets the device code message (the URL and the code) to tell the person."""
    folder = _data_dir(env)
    cache = open_cache(folder / CACHE_FILE, warn)
    app = _application(credentials, cache, secrets.client_secret, env)
    result = _sign_in(app, credentials, secrets, show)
    if "access_token" not in result:
        raise SignInRefused(
            f"The sign-in of {credentials.who()} at {credentials.authority} was refused "
            f"({_refusal(result, secrets)})."
        )
    claims = result.get("id_token_claims") or {}
    username = claims.get("preferred_username") or credentials.username
    record = Record(
        Credentials(
            credentials.authority,
            credentials.client_id,
            credentials.grant,
            None if credentials.app_only else username,
            credentials.confidential,
        ),
        claims.get("tid"),
        _home_account_id(app, username),
    )
    # One sign-in at a time: what an earlier one left in the cache goes.
    _wipe(
        cache,
        keep=lambda e: (
            e.get("home_account_id") == record.home_account_id
            and e.get("client_id", credentials.client_id) == credentials.client_id
        ),
    )
    write_private(folder / CONFIG_FILE, json.dumps(record.as_json(), indent=2) + "\n")
    expires_in = result.get("expires_in")
    return SignedIn(
        record.credentials,
        record.credentials.username,
        record.tenant_id,
        time.time() + float(expires_in) if expires_in is not None else None,
    )


def _sign_in(
    app: msal.ClientApplication, credentials: Credentials, secrets: Secrets, show: Callable[[str], None]
) -> dict[str, Any]:
    scopes = _scopes(credentials)
    with _reaching(credentials.authority):
        if credentials.grant is Grant.CLIENT_CREDENTIALS:
            assert isinstance(app, msal.ConfidentialClientApplication)
            return app.acquire_token_for_client(scopes)
        if credentials.grant is Grant.PASSWORD:
            with warnings.catch_warnings():
                # MSAL deprecates this grant for public clients; it is the one Partner Center documents.
                warnings.simplefilter("ignore", DeprecationWarning)
                return app.acquire_token_by_username_password(
                    credentials.username or "", secrets.password or "", scopes=scopes
                )
        assert isinstance(app, msal.PublicClientApplication)
        flow = app.initiate_device_flow(scopes=scopes)
        if "user_code" not in flow:
            return flow
        show(str(flow["message"]))
        return app.acquire_token_by_device_flow(flow)


def _home_account_id(app: msal.ClientApplication, username: str | None) -> str | None:
    if not username:
        return None
    accounts = app.get_accounts(username=username)
    return str(accounts[0]["home_account_id"]) if accounts else None


def logout(env: Mapping[str, str] = os.environ, warn: Warn = _stderr_warning) -> Record | None:
    """Forget the sign-in: every token in the cache, and auth.json. The sign-in there was, if any."""
    folder = _data_dir(env)
    record = load_record(env)
    cache_path = folder / CACHE_FILE
    # Emptied through the cache first: on macOS the Keychain holds it, not the file.
    _wipe(open_cache(cache_path, warn))
    cache_path.unlink(missing_ok=True)
    (folder / CONFIG_FILE).unlink(missing_ok=True)
    return record


def whoami(env: Mapping[str, str] = os.environ, warn: Warn = _stderr_warning) -> SignedIn:
    """The recorded sign-in and its cached token's expiry; ``NotSignedIn`` when there is none.

    Reads files only: no network, no refresh."""
    record = load_record(env)
    if record is None:
        raise NotSignedIn("Not signed in: run `bulkref login`.")
    credentials = record.credentials
    cache = open_cache(_data_dir(env) / CACHE_FILE, warn)
    mine = [
        e
        for e in cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)
        if e.get("client_id") == credentials.client_id and e.get("home_account_id") == record.home_account_id
    ]
    if not credentials.app_only and not any(
        e.get("home_account_id") == record.home_account_id
        for e in cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)
    ):
        raise NotSignedIn(
            f"The sign-in of {credentials.who()} is no longer in the token cache: run `bulkref login` again."
        )
    expires = max((float(e["expires_on"]) for e in mine if e.get("expires_on")), default=None)
    return SignedIn(credentials, credentials.username, record.tenant_id, expires)


# -- the token source -----------------------------------------------------------------------------


class MsalTokenSource:
    """A ``TokenSource`` (``bulkref.api.client``): called before each request, it returns the
    bearer token, asking MSAL for a fresh one near expiry. Thread-safe."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        client_secret: str | None = None,
        env: Mapping[str, str] = os.environ,
        warn: Warn = _stderr_warning,
        home_account_id: str | None = None,
        cache_path: Path | None = None,
    ) -> None:
        self.credentials = credentials
        self._cache_path = cache_path  # None: the CLI's cache in the data directory
        self._client_secret = client_secret
        self._env = dict(env)
        self._warn = warn
        self._home_account_id = home_account_id
        self._lock = threading.Lock()
        self._token: str | None = None
        self._fresh_until = 0.0
        self._app: msal.ClientApplication | None = None
        self._cache: msal.SerializableTokenCache | None = None

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or time.time() >= self._fresh_until:
                result = self._acquire()
                self._token = str(result["access_token"])
                lifetime = float(result.get("expires_in") or 0)
                self._fresh_until = time.time() + lifetime - min(300.0, lifetime / 10)
            return self._token

    def _acquire(self) -> dict[str, Any]:
        credentials = self.credentials
        if self._app is None:  # built on first use: MSAL fetches the OpenID configuration then
            path = self._cache_path or _data_dir(self._env) / CACHE_FILE
            self._cache = open_cache(path, self._warn)
            self._app = _application(credentials, self._cache, self._client_secret, self._env)
        with _reaching(credentials.authority):
            if credentials.app_only:
                assert isinstance(self._app, msal.ConfidentialClientApplication)
                result = self._app.acquire_token_for_client(_scopes(credentials))
            else:
                result = self._app.acquire_token_silent_with_error(_scopes(credentials), self._account())
        if result and "access_token" in result:
            return result
        if not result:
            raise NotSignedIn(
                f"No token for {credentials.who()} is left in the token cache: run `bulkref login` again."
            )
        secrets = Secrets(client_secret=self._client_secret)
        raise NotSignedIn(
            f"The sign-in of {credentials.who()} at {credentials.authority} has expired or was "
            f"revoked ({_refusal(result, secrets)}): run `bulkref login` again."
        )

    def _account(self) -> dict[str, Any]:
        assert self._app is not None
        accounts = (
            self._app.get_accounts(username=self.credentials.username)
            if self.credentials.username
            else self._app.get_accounts()
        )
        if self._home_account_id:
            accounts = [a for a in accounts if a.get("home_account_id") == self._home_account_id] or accounts
        if not accounts:
            raise NotSignedIn(
                f"{self.credentials.who()} is not signed in at {self.credentials.authority}: "
                "run `bulkref login`."
            )
        return accounts[0]


def token_source(
    authority: str,
    client_id: str,
    *,
    username: str | None = None,
    app_only: bool = False,
    client_secret: str | None = None,
    env: Mapping[str, str] = os.environ,
    warn: Warn = _stderr_warning,
) -> MsalTokenSource:
    """A token source for a sign-in already in the cache (``login`` made it)."""
    grant = Grant.CLIENT_CREDENTIALS if app_only else Grant.PASSWORD if username else Grant.DEVICE_CODE
    credentials = Credentials(
        authority_url(authority, None), client_id, grant, username, confidential=bool(client_secret)
    )
    return MsalTokenSource(credentials, client_secret=client_secret, env=env, warn=warn)


def stored_token_source(
    env: Mapping[str, str] = os.environ, warn: Warn = _stderr_warning
) -> MsalTokenSource | None:
    """The token source of the recorded sign-in (``auth.json``), None when there is none."""
    record = load_record(env)
    if record is None:
        return None
    credentials = _with_env(record, env)
    home = record.home_account_id if credentials.username == record.credentials.username else None
    return MsalTokenSource(
        credentials, client_secret=_env(env, ENV_CLIENT_SECRET), env=env, warn=warn, home_account_id=home
    )
