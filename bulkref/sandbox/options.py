"""How a sandbox is configured: one value shared by the CLI, the test fixture and the benchmark."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The partner organisation the sandbox acts as. A fixed GUID, so that ids in
# test expectations and in a --db file stay meaningful across runs.
SANDBOX_ORGANIZATION_ID = "5f8b4e36-0d2a-4c71-9e3b-1a6c2d7f9e40"
SANDBOX_ORGANIZATION_NAME = "Sandbox Partner"

# The identity provider's directory (see ``identity``): one tenant, two people,
# one app registration. Not secrets: they exist only inside a sandbox, and tests
# and the documentation (docs/team.md) use them. Two people, so that a four-eyes
# approval (one prepares, the other approves) can be rehearsed offline.
SANDBOX_TENANT_ID = "8d1c3f5e-2b7a-4e90-a6d4-3c9e1f0b7a52"
SANDBOX_USER = "ann@contoso.example"
SANDBOX_PASSWORD = "sandbox-password"
SANDBOX_SECOND_USER = "ben@contoso.example"
SANDBOX_SECOND_PASSWORD = "sandbox-password-2"
SANDBOX_CLIENT_ID = "bulkref-sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

#: The strictness switches and their choices; the first is the default.
FILTERS = ("any", "documented")
CREATE_STATUS = ("documented", "as-sent")
THROTTLE_SHAPE = ("sandbox", "documented")
NEXT_LINK = ("sandbox", "documented")
CLOSED = ("frozen", "open")
SOLUTION_AREAS = ("fy24", "any")
PROFILES = ("default", "documented")
#: What ``profile="documented"`` sets: every switch to what the documentation
#: shows or, where it is silent, to the reading less convenient for a client.
DOCUMENTED_PROFILE = {
    "filters": "documented",
    "create_status": "documented",
    "throttle_shape": "documented",
    "next_link": "documented",
    # Nothing in the API pages freezes a Closed referral (the transition table
    # even allows Closed -> Closed); refusing every change is the harder case.
    "closed": "frozen",
    # The FY26 solution areas and plays are not published: any value passes.
    "solution_areas": "any",
}
#: What each profile makes of ``replay_request_ids=None``. Nothing documents
#: that the Referrals service replays an MS-RequestId, so the documented
#: profile does not; the default profile keeps its rehearsal of a service that does.
REPLAY_BY_PROFILE = {"default": True, "documented": False}


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

    As strict as the documentation (each one a ``bulkref sandbox`` flag):
    ``filters`` ``any`` (every OData filter the sandbox implements) or
    ``documented`` (only the properties, ``and`` and ``eq`` the listing page
    shows); ``list_lag`` seconds before a write shows in listings (GET by id
    sees it at once); ``create_status`` ``documented`` (the partner's own new
    referral comes back Active/Accepted, as the create example answers) or
    ``as-sent``; ``throttle_shape`` and ``next_link`` ``sandbox`` or
    ``documented`` (the throttling page's 429 body; the listing example's
    ``http://.../v1.0/referrals?$skiptoken=`` link); ``replay_request_ids``: a
    write (POST, PUT, PATCH) repeating an ``MS-RequestId`` within 15 minutes
    with the same body gets the first answer, with another body a 400
    ``requestIdReused`` (None: the profile decides, on for ``default``, off
    for ``documented``; True or False wins over the profile); ``closed``
    ``frozen`` (every PUT and PATCH of a Closed referral is refused) or
    ``open`` (it may change, its status only to Closed with a closed
    substatus, as the transition table says); ``solution_areas`` ``fy24``
    (Services co-sell solutionArea/solutionPlay from the FY24 table) or
    ``any`` (any text: the FY26 list is not published).
    ``profile="documented"`` sets filters, create_status, throttle_shape and
    next_link to ``documented``, closed to ``frozen`` and solution_areas to
    ``any`` (list_lag stays its own).

    ``allow_remote`` must be set to listen on anything but loopback.
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
    users: Mapping[str, str] = field(
        default_factory=lambda: {SANDBOX_USER: SANDBOX_PASSWORD, SANDBOX_SECOND_USER: SANDBOX_SECOND_PASSWORD}
    )
    clients: Mapping[str, str] = field(default_factory=lambda: {SANDBOX_CLIENT_ID: SANDBOX_CLIENT_SECRET})
    device_code_user: str | None = SANDBOX_USER
    filters: str = "any"
    list_lag: float = 0.0
    create_status: str = "documented"
    throttle_shape: str = "sandbox"
    next_link: str = "sandbox"
    replay_request_ids: bool | None = None
    closed: str = "frozen"
    solution_areas: str = "fy24"
    profile: str = "default"
    allow_remote: bool = False

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile {self.profile!r} is not one of: {', '.join(PROFILES)}")
        if self.profile == "documented":
            for name, value in DOCUMENTED_PROFILE.items():
                object.__setattr__(self, name, value)
        if self.replay_request_ids is None:
            object.__setattr__(self, "replay_request_ids", REPLAY_BY_PROFILE[self.profile])
        for name, choices in (
            ("filters", FILTERS),
            ("create_status", CREATE_STATUS),
            ("throttle_shape", THROTTLE_SHAPE),
            ("next_link", NEXT_LINK),
            ("closed", CLOSED),
            ("solution_areas", SOLUTION_AREAS),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} {getattr(self, name)!r} is not one of: {', '.join(choices)}")
        if self.list_lag < 0:
            raise ValueError("list lag must be 0 or more seconds")
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"{self.host} is not a loopback address: set allow_remote to let other machines "
                "read and write the sandbox's referrals"
            )
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
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1); never a name that
    merely starts like one (``127.0.0.1.example``)."""
    name = host.strip().lower().removeprefix("[").removesuffix("]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
