"""Who is calling: the bearer token and the tenant it stands for.

One small seam on purpose: by default any bearer token is accepted; with
``require_issued_tokens`` the gateway passes ``verify`` (the identity
provider's check, ``bulkref.sandbox.identity``) and only unexpired tokens
this sandbox issued get through.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """The authenticated caller. ``tenant`` keys the rate limit; it is never the token itself."""

    tenant: str


def authenticate(
    authorization: str | None, verify: Callable[[str], str | None] | None = None
) -> Caller | None:
    """The caller of a request with this ``Authorization`` header, or None (answer 401).

    ``verify`` maps a token to its tenant, or to None when it is not acceptable;
    without it any bearer token is.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if verify is not None:
        tenant = verify(token)
        return Caller(tenant=tenant) if tenant else None
    return Caller(tenant=_tenant(token))


def _tenant(token: str) -> str:
    # A JWT from Entra ID names its tenant in the tid claim; the signature is not
    # checked (the sandbox trusts any token for now). Anything else is an opaque
    # token: its hash keeps tenants apart without keeping the token around.
    claims = _jwt_claims(token)
    tid = claims.get("tid") if claims else None
    if isinstance(tid, str) and tid:
        return tid
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:16]


def _jwt_claims(token: str) -> dict[str, object] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None
