"""How a sandbox is configured: one value shared by the CLI, the test fixture and the benchmark."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The partner organisation the sandbox acts as. A fixed GUID, so that ids in
# test expectations and in a --db file stay meaningful across runs.
SANDBOX_ORGANIZATION_ID = "5f8b4e36-0d2a-4c71-9e3b-1a6c2d7f9e40"
SANDBOX_ORGANIZATION_NAME = "Sandbox Partner"

# The identity provider's directory (see ``identity``): one tenant, one user, one
# app registration. Not secrets: they exist only inside a sandbox, and tests and
# the documentation use them.
SANDBOX_TENANT_ID = "8d1c3f5e-2b7a-4e90-a6d4-3c9e1f0b7a52"
SANDBOX_USER = "ann@contoso.example"
SANDBOX_PASSWORD = "sandbox-password"
SANDBOX_CLIENT_ID = "bulkref-sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class SandboxOptions:
    """Settings of one sandbox; the field names follow ``bulkref sandbox``'s flags.

    ``port=0`` binds a free port (the server reports the one it got).
    ``seed=None`` draws faults from an unseeded generator; give a number for
    reproducible runs. ``faults`` is the ``--faults`` text (see
    ``bulkref.sandbox.faults``). ``rate_limit`` is requests per second per
    tenant, None for no limit.

    Identity provider (``bulkref.sandbox.identity``): ``users`` (name ->
    password) and ``clients`` (client id -> secret) may sign in; access tokens
    last ``token_lifetime`` seconds and refresh tokens ``refresh_token_lifetime``;
    ``device_code_user`` approves every device code at once (None: codes wait
    for ``POST /_sandbox/device``). ``require_issued_tokens`` makes the API
    accept only unexpired tokens this sandbox issued (default: any bearer
    token). ``tls`` serves https with a throwaway certificate authority, which
    MSAL needs: it signs in over https only.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    db: Path | None = None
    seed: int | None = None
    faults: str = ""
    rate_limit: float | None = None
    page_size: int = 100
    organization_id: str = SANDBOX_ORGANIZATION_ID
    organization_name: str = SANDBOX_ORGANIZATION_NAME
    tls: bool = False
    require_issued_tokens: bool = False
    token_lifetime: int = 3600
    refresh_token_lifetime: int = 90 * 24 * 3600
    tenant_id: str = SANDBOX_TENANT_ID
    users: Mapping[str, str] = field(default_factory=lambda: {SANDBOX_USER: SANDBOX_PASSWORD})
    clients: Mapping[str, str] = field(default_factory=lambda: {SANDBOX_CLIENT_ID: SANDBOX_CLIENT_SECRET})
    device_code_user: str | None = SANDBOX_USER

    def __post_init__(self) -> None:
        if self.token_lifetime < 1 or self.refresh_token_lifetime < 1:
            raise ValueError("token lifetimes must be at least one second")
        if self.device_code_user is not None and self.device_code_user.lower() not in {
            name.lower() for name in self.users
        }:
            raise ValueError(
                f"device_code_user {self.device_code_user} is not one of the users: name one "
                "of them, or None to approve device codes through POST /_sandbox/device"
            )
        if self.page_size < 1:
            raise ValueError("page size must be at least 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate limit must be a positive number of requests per second")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")
