"""People signing in to Partner Center through their browser: ``bulkref serve``'s sign-in.

::

    people = BrowserSignIn.from_settings(folder, os.environ)   # None: no client id configured
    url, flow = people.start("http://127.0.0.1:8780/signin/done")   # send the browser to url
    person = people.finish(flow, request.query_params)           # on the redirect back
    caller = people.caller(person)                                # make_plan(..., caller=caller)
    people.sign_out(person.key)

The flow is OAuth 2.0's authorization code grant with PKCE (RFC 7636), as MSAL
runs it (``initiate_auth_code_flow`` / ``acquire_token_by_auth_code_flow``):
MSAL draws the state, the nonce and the code verifier, and checks the state and
the ID token's nonce on the way back. The flow (which holds the verifier) is
the caller's to keep in memory until the browser returns; it is never written.

Each person's tokens are kept in a token cache of their own,
``<folder>/<key>.bin``, opened as the CLI's is (``signin.open_cache``: encrypted
with DPAPI or the Keychain on Windows and macOS, elsewhere a file only its owner
can read), so one person's refresh token is never used for another's calls.
``key`` is derived from MSAL's home account id (object id and tenant), which
stays the same when a person's name changes; it is also what tells two people
apart for a four-eyes approval.

Settings, as ``bulkref login``'s: ``BULKREF_CLIENT_ID`` (required),
``BULKREF_AUTHORITY`` or ``BULKREF_TENANT_ID``, and ``BULKREF_CLIENT_SECRET``
for an app registered as a confidential (web) client. The app registration
needs the redirect URI the server signs in with (``http://localhost:PORT/signin/done``
or the https address it is served at).

Messages never tell a browser user to open a terminal: an expired sign-in says
to sign in again on the page.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msal

from bulkref.api import signin
from bulkref.api.target import Caller
from bulkref.errors import BadSettings, NotSignedIn, SignInRefused


@dataclass(frozen=True)
class Person:
    """A person signed in through a browser. ``key`` tells people apart (and names
    their token cache); ``username`` is how they sign in; ``name`` how they are called."""

    key: str
    username: str
    name: str
    tenant: str | None
    home_account_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "username": self.username,
            "name": self.name,
            "tenant": self.tenant,
            "homeAccountId": self.home_account_id,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Person:
        return cls(
            str(doc["key"]),
            str(doc["username"]),
            str(doc.get("name") or doc["username"]),
            doc.get("tenant"),
            str(doc["homeAccountId"]),
        )


def person_key(home_account_id: str) -> str:
    return hashlib.sha256(home_account_id.encode()).hexdigest()[:32]


class BrowserSignIn:
    """Signs people in with the authorization code flow and keeps each one's tokens."""

    def __init__(
        self,
        folder: Path,
        *,
        authority: str,
        client_id: str,
        client_secret: str | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self.folder = folder
        self.credentials = signin.Credentials(
            authority, client_id, signin.Grant.AUTHORIZATION_CODE, confidential=bool(client_secret)
        )
        self._secret = client_secret
        self._env = dict(env)
        self._sources: dict[str, signin.MsalTokenSource] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        folder: Path,
        env: Mapping[str, str] = os.environ,
        *,
        authority: str | None = None,
        tenant: str | None = None,
        client_id: str | None = None,
    ) -> BrowserSignIn | None:
        """From ``serve``'s flags, else the environment; None when no client id is set
        (people cannot sign in then). ``BadSettings`` for an unusable authority."""
        client_id = (client_id or env.get(signin.ENV_CLIENT_ID, "")).strip()
        if not client_id:
            return None
        url = signin.authority_url(
            authority or env.get(signin.ENV_AUTHORITY, "").strip() or None,
            tenant or env.get(signin.ENV_TENANT_ID, "").strip() or None,
        )
        secret = env.get(signin.ENV_CLIENT_SECRET, "").strip() or None
        if secret:
            signin.Secrets(client_secret=secret)  # scrubbed from anything shown from now on
        return cls(folder, authority=url, client_id=client_id, client_secret=secret, env=env)

    @property
    def authority(self) -> str:
        return self.credentials.authority

    def _cache_path(self, key: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.folder / f"{key}.bin"

    def _application(self, cache: msal.SerializableTokenCache) -> msal.ClientApplication:
        return signin._application(self.credentials, cache, self._secret, self._env)

    def start(self, redirect_uri: str, login_hint: str | None = None) -> tuple[str, dict[str, Any]]:
        """(the URL to send the browser to, the flow to keep until it comes back)."""
        app = self._application(msal.SerializableTokenCache())
        with warnings.catch_warnings():
            # MSAL suggests form_post; the answer comes back as a query instead, since a
            # cross-site POST would arrive without the session's SameSite cookie. The code
            # in it is single-use and bound to the flow's PKCE verifier.
            warnings.simplefilter("ignore", UserWarning)
            flow = app.initiate_auth_code_flow(
                [signin.USER_SCOPE], redirect_uri=redirect_uri, login_hint=login_hint or None
            )
        if "auth_uri" not in flow:
            raise SignInRefused(f"The sign-in service at {self.authority} refused to start a sign-in.")
        return str(flow["auth_uri"]), flow

    def finish(self, flow: dict[str, Any], answer: Mapping[str, str]) -> Person:
        """The person the browser's answer (the redirect's query) signs in; ``SignInRefused``
        when the service or the person said no, or the answer is not for this flow."""
        if answer.get("error"):
            reason = str(answer.get("error_description") or answer["error"]).splitlines()[0]
            raise SignInRefused(f"The sign-in was not completed ({reason.strip().rstrip('.')}).")
        cache = msal.SerializableTokenCache()
        app = self._application(cache)
        try:
            with signin._reaching(self.authority):
                result = app.acquire_token_by_auth_code_flow(flow, dict(answer))
        except ValueError as exc:  # MSAL's words for a state that does not match
            raise SignInRefused("The sign-in answer does not belong to this sign-in: sign in again.") from exc
        except RuntimeError as exc:  # MSAL's words for an ID token whose nonce does not match
            raise SignInRefused("The sign-in answer failed its check: sign in again.") from exc
        if "access_token" not in result:
            raise SignInRefused(
                f"The sign-in at {self.authority} was refused ({signin._refusal(result, signin.Secrets())})."
            )
        claims = result.get("id_token_claims") or {}
        username = str(claims.get("preferred_username") or claims.get("upn") or "")
        accounts = app.get_accounts(username=username) if username else app.get_accounts()
        if not accounts:
            raise SignInRefused(f"The sign-in at {self.authority} named no account.")
        home = str(accounts[0]["home_account_id"])
        person = Person(
            person_key(home), username, str(claims.get("name") or username), claims.get("tid"), home
        )
        # The person's own cache (made private, or encrypted, by open_cache before anything is
        # written to it), replaced whole: their earlier tokens go.
        own = signin.open_cache(self._cache_path(person.key), lambda message: None)
        _replace(own, cache.serialize())
        with self._lock:
            self._sources.pop(person.key, None)
        return person

    def caller(self, person: Person) -> Caller:
        """Whom a plan, an apply or an export is made as: ``person``, with their tokens."""
        with self._lock:
            source = self._sources.get(person.key)
            if source is None:
                credentials = signin.Credentials(
                    self.authority,
                    self.credentials.client_id,
                    signin.Grant.AUTHORIZATION_CODE,
                    person.username,
                    self.credentials.confidential,
                )
                source = signin.MsalTokenSource(
                    credentials,
                    client_secret=self._secret,
                    env=self._env,
                    warn=lambda message: None,
                    home_account_id=person.home_account_id,
                    cache_path=self._cache_path(person.key),
                )
                self._sources[person.key] = source
        return Caller(_browser_worded(source, person), person.username, person.tenant)

    def signed_in(self, person: Person) -> bool:
        """Whether ``person``'s cache still holds a refresh token (files only, no network)."""
        path = self.folder / f"{person.key}.bin"
        if not path.is_file():
            return False
        cache = signin.open_cache(path, lambda message: None)
        return any(
            e.get("home_account_id") == person.home_account_id
            for e in cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)
        )

    def sign_out(self, key: str) -> None:
        """Forget a person's tokens (emptied through the cache first: the Keychain may hold it)."""
        with self._lock:
            self._sources.pop(key, None)
        path = self.folder / f"{key}.bin"
        if path.exists():
            signin._wipe(signin.open_cache(path, lambda message: None))
            path.unlink(missing_ok=True)


def _replace(cache: Any, serialized: str) -> None:
    """Write ``serialized`` as the whole of a PersistedTokenCache, under its lock (it
    writes on its own only when MSAL changes an entry)."""
    from msal_extensions import CrossPlatLock

    with CrossPlatLock(cache._lock_location):
        cache._persistence.save(serialized)


def _browser_worded(source: Callable[[], str], person: Person) -> Callable[[], str]:
    def token() -> str:
        try:
            return source()
        except NotSignedIn as exc:
            raise NotSignedIn(
                f"The sign-in of {person.username} to Partner Center has expired or was revoked: "
                "sign out, then sign in again."
            ) from exc

    return token


__all__ = ["BadSettings", "BrowserSignIn", "Person", "person_key"]
