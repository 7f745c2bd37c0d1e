"""The sandbox as an identity provider: enough of Microsoft Entra ID's v2.0
endpoints for MSAL to sign in, so that ``bulkref login`` can be tested end to
end without the internet.

Routes (the tenant segment is the sandbox's tenant id, ``common``,
``organizations`` or the domain of a user; anything else is ``invalid_tenant``)::

    GET  /{tenant}/v2.0/.well-known/openid-configuration   OIDC discovery (MSAL's "tenant discovery")
    GET  /{tenant}/oauth2/v2.0/authorize    a browser sign-in (authorization code with PKCE): a page
    POST /{tenant}/oauth2/v2.0/authorize    asking for a test person's name and password, then a
                                            redirect to the client's redirect_uri with a code
    POST /{tenant}/oauth2/v2.0/token        grant_type password | client_credentials | refresh_token
                                            | authorization_code
                                            | urn:ietf:params:oauth:grant-type:device_code
    POST /{tenant}/oauth2/v2.0/devicecode   starts a device code sign-in
    GET  /common/userrealm/{username}       MSAL's user-realm discovery before a password grant: Managed
    GET  /_sandbox/identity                 admin: directory, grants issued and refused (counters)
    POST /_sandbox/device                   admin: {"user_code", "username", "approve"} approves or declines
    POST /_sandbox/identity/revoke          admin: forget every refresh token (as "revoke sessions" does)

Instance discovery (``/common/discovery/instance``) is not served: bulkref turns
it off for any authority that is not Microsoft's (``instance_discovery=False``),
and MSAL would ask login.microsoftonline.com for it anyway.

Tokens. Access tokens and ID tokens are JWTs signed with HS256 and a key drawn
when the sandbox starts: only this sandbox process can check them, and a
restart makes every token it issued "foreign". Access tokens carry ``aud``
(the resource of the requested scope, ``https://api.partner.microsoft.com``),
``tid``, ``oid``, ``upn`` and ``name`` (users) or ``appid`` and ``idtyp: app``
(client credentials), ``iat``, ``nbf`` and ``exp``. User grants also return
an ID token and ``client_info`` (base64url JSON ``{"uid", "utid"}``), which is
what MSAL needs to file an account in its cache, and an opaque refresh token
(kept in memory; refreshing does not revoke the old one, as with Entra ID, so
that two bulkref processes refreshing at once both succeed). The response's
``scope`` echoes the resource scopes asked for, so that MSAL finds the access
token again under the scopes it asked with.

Authorization code (a web app's sign-in, RFC 6749 4.1 with PKCE, RFC 7636),
as Entra ID's v2.0 endpoint documents it: ``response_type=code``,
``client_id``, ``redirect_uri``, ``scope``, ``state``, ``nonce``,
``code_challenge`` and ``code_challenge_method``, ``login_hint``; the answer
is a redirect to ``redirect_uri`` with ``code`` and ``state`` (or ``error``,
``error_description`` and ``state``: ``access_denied`` when the person
cancels). Where Entra ID leaves a choice the sandbox takes the stricter one:
PKCE is required and only ``S256`` is taken; a redirect URI must be on a
loopback host (``localhost``, 127.0.0.0/8, ``[::1]``, any port: what Entra ID
allows a public client without registering each port), and one that is not,
or an unknown client, is an error page, never a redirect (an open redirect
would hand codes to anyone). A code lasts 10 minutes and is redeemed once
(again: ``invalid_grant``, AADSTS54005), with the same client, the same
``redirect_uri`` and the verifier whose S256 hash is the challenge
(AADSTS50148). The ID token carries the request's ``nonce``. The page is
plain HTML with every value escaped, no script, and refuses to be framed.

Errors follow Entra ID: 400 ``invalid_grant`` for a wrong password or an
expired, revoked or unknown refresh token, 401 ``invalid_client`` for a wrong
client secret, 400 ``unauthorized_client`` for an unknown client id, with an
``error_description`` that starts with an AADSTS code, and ``error_codes``.
A client secret is required for client credentials only; sent with a user
grant, it must be right. Client credentials need a tenant in the URL (not
``common`` or ``organizations``), as with Entra ID.

The API side: ``verify`` returns the tenant of a token this sandbox issued
for the Partner Center resource and that has not expired, or None. The
gateway uses it when ``SandboxOptions.require_issued_tokens`` is set. Faults,
the rate limit and the request counters of ``/_sandbox/stats`` do not apply to
these routes; the sign-in requests are counted here instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import ipaddress
import json
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkref.sandbox.options import SandboxOptions

PARTNER_CENTER_RESOURCE = "https://api.partner.microsoft.com"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
AUTH_CODE_LIFETIME = 600  # seconds: Entra ID's codes last about ten minutes
DEVICE_CODE_LIFETIME = 900  # seconds, as Entra ID
# Entra ID says 5; one second keeps a test that waits for an approval short.
DEVICE_CODE_INTERVAL = 1
ADMIN_ROOT = "/_sandbox/"

_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
_GRANT_NAMES = {
    "password": "password",
    "client_credentials": "client_credentials",
    "refresh_token": "refresh_token",
    "authorization_code": "authorization_code",
    DEVICE_CODE_GRANT: "device_code",
}
_USER_CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels: no words, no 0/O or 1/I mix-ups
# The namespace of the users' and apps' object ids: stable across runs for the same name.
_OID_NAMESPACE = uuid.UUID("0b5e7a9c-4f3d-4c2a-9a61-7d2e8f1c3b40")

_IDENTITY_PATH = re.compile(
    r"^/[^/]+/(?:v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/(?:token|devicecode|authorize))$"
    r"|^/common/userrealm/[^/]+$"
)


def is_identity_path(path: str) -> bool:
    """Whether the gateway hands ``path`` to the identity provider (no bearer token, no faults)."""
    return bool(_IDENTITY_PATH.match(path))


class OAuthError(Exception):
    """An OAuth error answer, in Entra ID's shape."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


@dataclass
class _RefreshToken:
    username: str | None
    client_id: str
    expires: float


@dataclass
class _DeviceCode:
    user_code: str
    client_id: str
    scopes: list[str]
    expires: float
    username: str | None = None  # set when approved
    declined: bool = False


@dataclass
class _AuthCode:
    username: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    challenge: str
    nonce: str | None
    expires: float


@dataclass(frozen=True)
class AuthorizationRequest:
    """A browser's sign-in request, checked: where to send the code, and what it is for."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    challenge: str
    login_hint: str


class BadAuthorizationRequest(Exception):
    """A request whose redirect_uri cannot be trusted: answered with a page, never a redirect."""


@dataclass(frozen=True)
class _Scopes:
    """The scopes of a token request: the resource's, and whether openid / offline_access came too."""

    resource: str
    names: list[str]  # the resource scopes as asked, e.g. https://api.partner.microsoft.com/.default
    openid: bool
    offline: bool


class Identity:
    """The directory (users, clients) and what was issued; one per sandbox."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.tenant_id = options.tenant_id
        self._key = secrets.token_bytes(32)
        self._users = {name.lower(): (name, password) for name, password in options.users.items()}
        self._clients: Mapping[str, str] = dict(options.clients)
        self._tenants = {self.tenant_id.lower(), "common", "organizations"} | {
            name.partition("@")[2].lower() for name in options.users
        }
        self.reset()

    def reset(self) -> None:
        """Forget refresh tokens, device codes and counters; access tokens stay valid until they expire."""
        self._refresh: dict[str, _RefreshToken] = {}
        self._devices: dict[str, _DeviceCode] = {}
        self._codes: dict[str, _AuthCode] = {}
        self.grants: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    # -- the API's check ---------------------------------------------------------------
    def verify(self, token: str) -> str | None:
        """The tenant of an unexpired Partner Center token this sandbox issued, else None."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=PARTNER_CENTER_RESOURCE,
                options={"require": ["exp", "iat", "tid"]},
            )
        except jwt.PyJWTError:
            return None
        tenant = claims.get("tid")
        return tenant if isinstance(tenant, str) and tenant else None

    # -- discovery -----------------------------------------------------------------------
    def openid_configuration(self, root: str, tenant: str) -> dict[str, Any]:
        self._check_tenant(tenant)
        base = f"{root}/{tenant}"
        return {
            "issuer": self._issuer(root),
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": sorted(_GRANT_NAMES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "scopes_supported": sorted(_OIDC_SCOPES),
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "tenant_region_scope": None,
            "cloud_instance_name": "sandbox",
        }

    def user_realm(self, username: str) -> dict[str, Any]:
        known = username.lower() in self._users
        return {
            "ver": "1.0",
            "account_type": "Managed" if known else "Unknown",
            "domain_name": username.partition("@")[2],
            "cloud_instance_name": "sandbox",
        }

    # -- the token endpoint ------------------------------------------------------------------
    def token(self, root: str, tenant: str, form: Mapping[str, str]) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        grant = _GRANT_NAMES.get(grant_type)
        try:
            self._check_tenant(tenant)
            if grant is None:
                raise OAuthError(
                    400,
                    "unsupported_grant_type",
                    70003,
                    f"The app requested an unsupported grant type '{grant_type}'.",
                )
            answer = self._grant(grant, root, form, tenant)
        except OAuthError as exc:
            if exc.error != "authorization_pending":
                self.refused[f"{grant or grant_type}/{exc.error}"] += 1
            raise
        self.grants[grant] += 1
        return answer

    def _grant(self, grant: str, root: str, form: Mapping[str, str], tenant: str) -> dict[str, Any]:
        client_id = self._client(form, secret_required=grant == "client_credentials")
        if grant == "client_credentials":
            if tenant.lower() in ("common", "organizations"):  # an app has no home tenant to fall back on
                raise OAuthError(
                    400,
                    "invalid_request",
                    50059,
                    "No tenant-identifying information found "
                    "in either the request or implied by any provided credentials.",
                )
            scopes = _parse_scopes(form.get("scope", ""))
            if scopes.names != [f"{scopes.resource}/.default"]:
                raise OAuthError(
                    400,
                    "invalid_scope",
                    1002012,
                    "The provided value for scope is not valid. Client credential flows must "
                    "have a scope value with /.default suffixed to the resource identifier.",
                )
            return self._app_tokens(root, client_id, scopes)
        if grant == "password":
            username = self._password_user(form.get("username", ""), form.get("password", ""))
            return self._user_tokens(root, username, client_id, _parse_scopes(form.get("scope", "")))
        if grant == "refresh_token":
            username = self._refresh_user(form.get("refresh_token", ""), client_id)
            return self._user_tokens(root, username, client_id, _parse_scopes(form.get("scope", "")))
        if grant == "authorization_code":
            code = self._redeemed_code(form, client_id)
            scopes = _parse_scopes(" ".join(code.scopes))
            return self._user_tokens(root, code.username, client_id, scopes, nonce=code.nonce)
        device = self._approved_device(form.get("device_code", ""), client_id)
        scopes = _parse_scopes(" ".join(device.scopes))
        return self._user_tokens(root, device.username or "", client_id, scopes)

    def _client(self, form: Mapping[str, str], *, secret_required: bool) -> str:
        client_id = form.get("client_id", "")
        if client_id not in self._clients:
            raise OAuthError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'.",
            )
        secret = form.get("client_secret")
        if secret is None:
            if secret_required:
                raise OAuthError(
                    401,
                    "invalid_client",
                    7000218,
                    "The request body must contain the "
                    "following parameter: 'client_assertion' or 'client_secret'.",
                )
        elif not hmac.compare_digest(secret.encode(), self._clients[client_id].encode()):
            raise OAuthError(
                401, "invalid_client", 7000215, f"Invalid client secret provided for app '{client_id}'."
            )
        return client_id

    def _password_user(self, username: str, password: str) -> str:
        known = self._users.get(username.lower())
        if known is None or not hmac.compare_digest(password.encode(), known[1].encode()):
            raise OAuthError(
                400,
                "invalid_grant",
                50126,
                "Error validating credentials due to invalid username or password.",
            )
        return known[0]

    def _refresh_user(self, token: str, client_id: str) -> str:
        held = self._refresh.get(token)
        if held is None or held.client_id != client_id:
            raise OAuthError(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. The refresh token is malformed, unknown or was revoked.",
            )
        if held.expires <= time.time():
            del self._refresh[token]
            raise OAuthError(400, "invalid_grant", 700082, "The refresh token has expired due to inactivity.")
        return held.username or ""

    # -- authorization code (a browser's sign-in) --------------------------------------------------
    def authorization_request(self, tenant: str, params: Mapping[str, str]) -> AuthorizationRequest:
        """``params`` checked; ``BadAuthorizationRequest`` when no redirect may be made,
        ``OAuthError`` for what goes back to the client as ``error=`` on its redirect URI."""
        client_id = params.get("client_id", "")
        if client_id not in self._clients:
            raise BadAuthorizationRequest(
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
                f"directory '{self.tenant_id}'."
            )
        redirect_uri = params.get("redirect_uri", "")
        if not _loopback_redirect(redirect_uri):
            raise BadAuthorizationRequest(
                f"AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does not "
                "match the redirect URIs configured for the application: this sandbox takes http or "
                "https URIs on a loopback host (localhost, 127.0.0.1, [::1]) only."
            )
        request = AuthorizationRequest(
            client_id,
            redirect_uri,
            params.get("scope", ""),
            params.get("state"),
            params.get("nonce"),
            params.get("code_challenge", ""),
            params.get("login_hint", ""),
        )
        self._check_tenant(tenant)
        if params.get("response_type") != "code":
            raise OAuthError(
                400,
                "unsupported_response_type",
                700054,
                "response_type must be 'code': this sandbox signs in with the authorization code flow only.",
            )
        if params.get("response_mode", "query") != "query":
            raise OAuthError(400, "invalid_request", 900144, "response_mode must be 'query'.")
        if not request.challenge or params.get("code_challenge_method") != "S256":
            raise OAuthError(
                400,
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required: send code_challenge with "
                "code_challenge_method=S256.",
            )
        _parse_scopes(request.scope)
        return request

    def sign_in(self, request: AuthorizationRequest, username: str, password: str) -> str:
        """The redirect URL with a new code for ``username``; ``OAuthError`` for a wrong password."""
        name = self._password_user(username, password)
        code = secrets.token_urlsafe(32)
        self._codes[code] = _AuthCode(
            name,
            request.client_id,
            request.redirect_uri,
            request.scope.split(),
            request.challenge,
            request.nonce,
            time.time() + AUTH_CODE_LIFETIME,
        )
        return _with_query(request.redirect_uri, {"code": code, "state": request.state})

    def _redeemed_code(self, form: Mapping[str, str], client_id: str) -> _AuthCode:
        code = self._codes.pop(form.get("code", ""), None)  # a code is redeemed once, right or wrong
        if code is None:
            raise OAuthError(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, or is not one this service issued.",
            )
        if code.expires <= time.time():
            raise OAuthError(400, "invalid_grant", 70008, "The provided authorization code has expired.")
        if code.client_id != client_id:
            raise OAuthError(
                400, "invalid_grant", 70000, "The authorization code was issued to another application."
            )
        if form.get("redirect_uri", "") != code.redirect_uri:
            raise OAuthError(
                400,
                "invalid_grant",
                50011,
                "The redirect URI does not match the one the authorization code was issued for.",
            )
        verifier = form.get("code_verifier", "")
        challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
        if not verifier or not hmac.compare_digest(challenge, code.challenge):
            raise OAuthError(
                400,
                "invalid_grant",
                50148,
                "The code_verifier does not match the code_challenge supplied in the authorization "
                "request for PKCE.",
            )
        return code

    # -- device code ------------------------------------------------------------------------------
    def start_device_code(self, root: str, tenant: str, form: Mapping[str, str]) -> dict[str, Any]:
        self._check_tenant(tenant)
        client_id = self._client(form, secret_required=False)
        scopes = form.get("scope", "").split()
        _parse_scopes(" ".join(scopes))  # refuse a request without a resource now, not at the first poll
        device_code = secrets.token_urlsafe(32)
        user_code = "".join(secrets.choice(_USER_CODE_LETTERS) for _ in range(9))
        device = _DeviceCode(user_code, client_id, scopes, time.time() + DEVICE_CODE_LIFETIME)
        if self.options.device_code_user is not None:
            device.username = self._users[self.options.device_code_user.lower()][0]
        self._devices[device_code] = device
        page = f"{root}{ADMIN_ROOT}device"
        return {
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": page,
            "expires_in": DEVICE_CODE_LIFETIME,
            "interval": DEVICE_CODE_INTERVAL,
            "message": f"To sign in, use a web browser to open the page {page} and enter the code "
            f"{user_code} to authenticate.",
        }

    def decide_device_code(self, user_code: str, username: str | None, approve: bool) -> str:
        """Approve (as ``username``) or decline the device code ``user_code``; its new status."""
        device = next((d for d in self._devices.values() if d.user_code == user_code.strip().upper()), None)
        if device is None:
            raise KeyError(user_code)
        if approve:
            known = self._users.get((username or "").lower())
            if known is None:
                raise ValueError(f"{username!r} is not a user of this sandbox")
            device.username = known[0]
        else:
            device.declined = True
        return "approved" if approve else "declined"

    def _approved_device(self, device_code: str, client_id: str) -> _DeviceCode:
        device = self._devices.get(device_code)
        if device is None or device.client_id != client_id:
            raise OAuthError(
                400, "invalid_grant", 70000, "The provided value for 'device_code' is not valid."
            )
        if device.expires <= time.time():
            del self._devices[device_code]
            raise OAuthError(400, "expired_token", 70019, "Verification code expired.")
        if device.declined:
            del self._devices[device_code]
            raise OAuthError(400, "authorization_declined", 70000, "The user declined the sign-in.")
        if device.username is None:
            raise OAuthError(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        del self._devices[device_code]  # a device code signs in once
        return device

    def people(self) -> list[str]:
        """The people who may sign in, by name."""
        return sorted(name for name, _ in self._users.values())

    def revoke(self) -> int:
        """Forget every refresh token; how many there were."""
        count = len(self._refresh)
        self._refresh.clear()
        return count

    def describe(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "users": sorted(name for name, _ in self._users.values()),
            "clients": sorted(self._clients),
            "tokenLifetime": self.options.token_lifetime,
            "refreshTokenLifetime": self.options.refresh_token_lifetime,
            "requireIssuedTokens": self.options.require_issued_tokens,
            "deviceCodeUser": self.options.device_code_user,
            "grants": dict(self.grants),
            "refused": dict(self.refused),
            "refreshTokens": len(self._refresh),
            "pendingDeviceCodes": sorted(
                d.user_code for d in self._devices.values() if d.username is None and not d.declined
            ),
        }

    # -- issuing ---------------------------------------------------------------------------------
    def _user_tokens(
        self, root: str, username: str, client_id: str, scopes: _Scopes, nonce: str | None = None
    ) -> dict[str, Any]:
        now = time.time()
        issued, expires = int(now), _expiry(now, self.options.token_lifetime)
        oid = str(uuid.uuid5(_OID_NAMESPACE, username.lower()))
        name = username.partition("@")[0].replace(".", " ").title()
        access = self._sign(
            {
                "aud": scopes.resource,
                "iss": self._issuer(root),
                "iat": issued,
                "nbf": issued,
                "exp": expires,
                "tid": self.tenant_id,
                "oid": oid,
                "sub": oid,
                "upn": username,
                "unique_name": username,
                "name": name,
                "appid": client_id,
                "scp": " ".join(s.rsplit("/", 1)[-1] for s in scopes.names),
                "idtyp": "user",
                "ver": "1.0",
                "uti": secrets.token_urlsafe(12),
            }
        )
        answer = self._answer(access, scopes, expires, now)
        if scopes.openid:
            id_claims = {
                "aud": client_id,
                "iss": self._issuer(root),
                "iat": issued,
                "nbf": issued,
                "exp": expires,
                "tid": self.tenant_id,
                "oid": oid,
                "sub": oid,
                "preferred_username": username,
                "name": name,
                "ver": "2.0",
                "uti": secrets.token_urlsafe(12),
            }
            if nonce is not None:
                id_claims["nonce"] = nonce
            answer["id_token"] = self._sign(id_claims)
            answer["client_info"] = _b64url(json.dumps({"uid": oid, "utid": self.tenant_id}).encode())
        if scopes.offline:
            refresh = secrets.token_urlsafe(48)
            self._refresh[refresh] = _RefreshToken(
                username, client_id, now + self.options.refresh_token_lifetime
            )
            answer["refresh_token"] = refresh
        return answer

    def operator_token(self, root: str) -> str:
        """An access token for whoever runs this sandbox in-process (tests, the
        benchmark): what the admin routes take under require_issued_tokens. Issued
        without a grant, so the grant counters stay what clients did."""
        client_id = next(iter(self._clients), "sandbox-operator")
        scopes = _Scopes(PARTNER_CENTER_RESOURCE, [f"{PARTNER_CENTER_RESOURCE}/.default"], False, False)
        return str(self._app_tokens(root, client_id, scopes)["access_token"])

    def _app_tokens(self, root: str, client_id: str, scopes: _Scopes) -> dict[str, Any]:
        now = time.time()
        issued, expires = int(now), _expiry(now, self.options.token_lifetime)
        oid = str(uuid.uuid5(_OID_NAMESPACE, "app:" + client_id))
        access = self._sign(
            {
                "aud": scopes.resource,
                "iss": self._issuer(root),
                "iat": issued,
                "nbf": issued,
                "exp": expires,
                "tid": self.tenant_id,
                "oid": oid,
                "sub": oid,
                "appid": client_id,
                "roles": [],
                "idtyp": "app",
                "ver": "1.0",
                "uti": secrets.token_urlsafe(12),
            }
        )
        return self._answer(access, scopes, expires, now)

    @staticmethod
    def _answer(access: str, scopes: _Scopes, expires: int, now: float) -> dict[str, Any]:
        # expires_in rounded down, so that a client's "valid until now + expires_in" never
        # outlives the token's exp claim.
        lifetime = int(expires - now)
        return {
            "token_type": "Bearer",
            "scope": " ".join(scopes.names),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access,
        }

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="HS256", headers={"kid": "sandbox"})

    def _issuer(self, root: str) -> str:
        return f"{root}/{self.tenant_id}/v2.0"

    def _check_tenant(self, tenant: str) -> None:
        if tenant.lower() not in self._tenants:
            raise OAuthError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant "
                "ID and are signing into the correct cloud.",
            )


def _expiry(now: float, lifetime: int) -> int:
    # Whole seconds (JWT), and never less than the lifetime from now.
    return int(now) + lifetime + 1


def _parse_scopes(text: str) -> _Scopes:
    asked = text.split()
    names = [s for s in asked if s not in _OIDC_SCOPES]
    # One resource per token, named by URI ("https://api.partner.microsoft.com/.default").
    resources = {s.rsplit("/", 1)[0] if "/" in s else "" for s in names}
    if len(resources) != 1 or "" in resources:
        raise OAuthError(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid ({text!r}): name "
            f"one resource, e.g. {PARTNER_CENTER_RESOURCE}/.default.",
        )
    return _Scopes(resources.pop(), names, "openid" in asked, "offline_access" in asked)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _loopback_redirect(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.fragment or parts.username or parts.password:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _with_query(uri: str, params: Mapping[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if urlsplit(uri).query else '?'}{query}"


# -- routes -----------------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


def _json(payload: Any, status: int = 200) -> Response:
    # no-store: what Entra ID sends with tokens, and right for any answer that holds one.
    return Response(
        json.dumps(payload),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _oauth_error(request: Request, exc: OAuthError) -> Response:
    trace = str(uuid.uuid4())
    correlation = request.headers.get("client-request-id") or str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    description = (
        f"AADSTS{exc.code}: {exc.description}\r\nTrace ID: {trace}\r\n"
        f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
    )
    return _json(
        {
            "error": exc.error,
            "error_description": description,
            "error_codes": [exc.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
        },
        exc.status,
    )


def _root(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body (parsed here: Starlette's form parser needs python-multipart)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            400, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded."
        )
    raw = await request.body()
    try:
        return dict(parse_qsl(raw.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        raise OAuthError(400, "invalid_request", 900144, "The request body is not UTF-8.") from None


async def _admin_json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    return body if isinstance(body, dict) else {}


_FORM_FIELDS = (
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_type",
    "response_mode",
)


def _sign_in_page(
    identity: Identity, params: Mapping[str, str], request: AuthorizationRequest, error: str | None = None
) -> Response:
    """The sandbox's sign-in page: a test person's name and password, nothing else."""
    e = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(params[k])}">' for k in _FORM_FIELDS if k in params
    )
    people = "".join(f'<option value="{e(name)}">' for name in identity.people())
    listed = ", ".join(e(name) for name in identity.people())
    alert = f'<p role="alert" id="signin-error">{e(error)}</p>' if error else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in: bulkref sandbox</title></head>
<body><main>
<h1>Sign in to the bulkref sandbox</h1>
<p>Application <strong>{e(request.client_id)}</strong> asks you to sign in.
Test people of this sandbox: {listed}.</p>
{alert}
<form method="post" id="signin-form">{hidden}
<p><label for="username">Name</label>
<input id="username" name="username" type="email" autocomplete="username" list="people" required
 value="{e(request.login_hint)}"><datalist id="people">{people}</datalist></p>
<p><label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit" id="signin" name="action" value="signin">Sign in</button>
<button type="submit" id="cancel" name="action" value="cancel" formnovalidate>Cancel</button></p>
</form></main></body></html>"""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(request.redirect_uri))
    return Response(
        body,
        status_code=400 if error else 200,
        media_type="text/html",
        headers={
            "Cache-Control": "no-store",
            # The form posts here, and the answer redirects to the client: nothing else.
            "Content-Security-Policy": (
                f"default-src 'none'; form-action 'self' {origin}; frame-ancestors 'none'"
            ),
            "X-Frame-Options": "DENY",
        },
    )


def _error_page(message: str) -> Response:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in error</title></head>'
        f"<body><main><h1>Sign-in error</h1><p>{html.escape(message)}</p></main></body></html>"
    )
    return Response(
        body,
        status_code=400,
        media_type="text/html",
        headers={"Content-Security-Policy": "default-src 'none'", "X-Frame-Options": "DENY"},
    )


def _redirect(url: str) -> Response:
    return Response(status_code=302, headers={"Location": url, "Cache-Control": "no-store"})


def identity_routes(identity: Identity) -> list[Route]:
    """The identity provider's routes and its admin routes under /_sandbox/."""

    def oauth(handler: Callable[[Request], Awaitable[dict[str, Any]]]) -> Handler:
        async def answer(request: Request) -> Response:
            try:
                return _json(await handler(request))
            except OAuthError as exc:
                return _oauth_error(request, exc)

        return answer

    async def discovery(request: Request) -> dict[str, Any]:
        return identity.openid_configuration(_root(request), request.path_params["tenant"])

    async def token(request: Request) -> dict[str, Any]:
        return identity.token(_root(request), request.path_params["tenant"], await _form(request))

    async def devicecode(request: Request) -> dict[str, Any]:
        return identity.start_device_code(_root(request), request.path_params["tenant"], await _form(request))

    async def userrealm(request: Request) -> dict[str, Any]:
        return identity.user_realm(request.path_params["username"])

    async def describe(request: Request) -> Response:
        return _json(identity.describe())

    async def device(request: Request) -> Response:
        body = await _admin_json(request)
        try:
            status = identity.decide_device_code(
                str(body.get("user_code", "")), body.get("username"), body.get("approve", True) is not False
            )
        except KeyError:
            return _json({"error": "No pending device code has this user_code."}, 404)
        except ValueError as exc:
            return _json({"error": f"{exc}."}, 400)
        return _json({"userCode": body.get("user_code"), "status": status})

    async def revoke(request: Request) -> Response:
        return _json({"revoked": identity.revoke()})

    async def authorize(request: Request) -> Response:
        if request.method == "POST":
            try:
                params = await _form(request)
            except OAuthError as exc:
                return _error_page(exc.description)
            origin = request.headers.get("origin")
            if origin is not None and origin.lower() != _root(request).lower():
                return _error_page("This sign-in form was sent from another site.")
        else:
            params = dict(request.query_params)
        tenant = request.path_params["tenant"]
        try:
            checked = identity.authorization_request(tenant, params)
        except BadAuthorizationRequest as exc:
            return _error_page(str(exc))
        except OAuthError as exc:
            uri = params.get("redirect_uri", "")
            state = params.get("state")
            return _redirect(
                _with_query(uri, {"error": exc.error, "error_description": exc.description, "state": state})
            )
        if request.method == "GET":
            return _sign_in_page(identity, params, checked)
        if params.get("action") == "cancel":
            return _redirect(
                _with_query(
                    checked.redirect_uri,
                    {
                        "error": "access_denied",
                        "error_description": "AADSTS65004: The user declined to sign in.",
                        "state": checked.state,
                    },
                )
            )
        try:
            code_url = identity.sign_in(checked, params.get("username", ""), params.get("password", ""))
        except OAuthError:
            identity.refused["authorization_code/invalid_grant"] += 1
            wrong = replace(checked, login_hint=params.get("username", ""))
            mismatch = "That name and password do not match a test person."
            return _sign_in_page(identity, params, wrong, mismatch)
        return _redirect(code_url)

    return [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", oauth(discovery), methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", oauth(token), methods=["POST"]),
        Route("/{tenant}/oauth2/v2.0/devicecode", oauth(devicecode), methods=["POST"]),
        Route("/{tenant}/oauth2/v2.0/authorize", authorize, methods=["GET", "POST"]),
        Route("/common/userrealm/{username}", oauth(userrealm), methods=["GET"]),
        Route(ADMIN_ROOT + "identity", describe, methods=["GET"]),
        Route(ADMIN_ROOT + "identity/revoke", revoke, methods=["POST"]),
        Route(ADMIN_ROOT + "device", device, methods=["POST"]),
    ]
