"""Which service a command reads from and writes to, named for the person who says yes.

A rehearsal against the sandbox and a run against production must not look
alike at the moment of confirming. ``destination(target)`` names the target:

- ``sandbox``: the embedded sandbox (``--sandbox``), with the file its state is in;
- ``sandbox-url``: a service on this machine (a loopback URL), i.e. ``bulkref sandbox``;
- ``partner-center``: the real Partner Center;
- ``api-url``: another https URL given with ``--api-url`` / ``BULKREF_API_URL``.

For every target but the embedded sandbox the account and tenant come from
the ``bulkref login`` record (``bulkref.api.signin``), or the credentials are
said to be ``BULKREF_ACCESS_TOKEN``'s. A token is never read here, let alone shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from bulkref.api.target import ENV_ACCESS_TOKEN, PARTNER_CENTER_URL
from bulkref.errors import BulkrefError

if TYPE_CHECKING:
    from bulkref.api.target import Target

KINDS = ("sandbox", "sandbox-url", "partner-center", "api-url")


@dataclass(frozen=True)
class Destination:
    kind: str  # one of KINDS
    url: str | None  # the referrals collection (None: the embedded sandbox before it starts)
    account: str | None = None  # the signed-in user (or app), from the sign-in record
    tenant: str | None = None
    state: str | None = None  # the embedded sandbox's state file
    credentials: str | None = None  # "bulkref login", "BULKREF_ACCESS_TOKEN" or None (none found)

    @property
    def is_sandbox(self) -> bool:
        return self.kind in ("sandbox", "sandbox-url")

    def text(self) -> str:
        """One phrase: ``the local sandbox (state in ...)``, ``Partner Center (URL) as ann, tenant T``."""
        if self.kind == "sandbox":
            return f"the local sandbox (state in {self.state})"
        where = {
            "sandbox-url": f"the sandbox at {self.url}",
            "partner-center": f"Partner Center ({self.url})",
        }.get(self.kind, f"the API at {self.url}")
        if self.account:
            where += f" as {self.account}" + (f", tenant {self.tenant}" if self.tenant else "")
        elif self.credentials == ENV_ACCESS_TOKEN:
            where += f" with the token in {ENV_ACCESS_TOKEN}"
        return where

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "url": self.url,
            "account": self.account,
            "tenant": self.tenant,
            "state": self.state,
            "credentials": self.credentials,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Destination:
        return cls(
            kind=str(d.get("kind") or "api-url"),
            url=d.get("url"),
            account=d.get("account"),
            tenant=d.get("tenant"),
            state=d.get("state"),
            credentials=d.get("credentials"),
        )


def destination(target: Target, env: Mapping[str, str] | None = None) -> Destination:
    """``target`` named: kind, URL, and who signs in there (never the token)."""
    env = os.environ if env is None else env
    if target.sandbox_db is not None:
        try:
            url: str | None = target.url
        except RuntimeError:  # not started yet: its port is not known
            url = None
        return Destination("sandbox", url, state=str(target.sandbox_db), credentials=None)
    url = target.url
    kind = "partner-center" if url == PARTNER_CENTER_URL else ("sandbox-url" if _loopback(url) else "api-url")
    caller = target.caller
    if caller is not None:
        return Destination(kind, url, caller.account, caller.tenant, credentials=caller.credentials)
    if env.get(ENV_ACCESS_TOKEN, "").strip():
        return Destination(kind, url, credentials=ENV_ACCESS_TOKEN)
    account, tenant = _signed_in(env)
    return Destination(
        kind, url, account=account, tenant=tenant, credentials="bulkref login" if account else None
    )


def _loopback(url: str) -> bool:
    host = httpx.URL(url).host
    return host in ("localhost", "::1") or host.startswith("127.")


def _signed_in(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(account, tenant) of the ``bulkref login`` record; (None, None) without one."""
    from bulkref.api import signin  # MSAL is loaded only where a real sign-in may be used

    try:
        record = signin.load_record(env)
    except BulkrefError:  # an unreadable record: the call itself will say so, in its own words
        return None, None
    if record is None:
        return None, None
    # As the token source does (signin.stored_token_source): the environment's user name
    # and tenant, when set, over the recorded ones.
    c = record.credentials
    user = env.get(signin.ENV_USERNAME, "").strip() or c.username
    account = f"the app {env.get(signin.ENV_CLIENT_ID, '').strip() or c.client_id}" if c.app_only else user
    return account, env.get(signin.ENV_TENANT_ID, "").strip() or record.tenant_id or c.tenant
