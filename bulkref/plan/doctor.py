"""``bulkref doctor``: a read-only preflight against the target.

It says what plan and apply will meet there, before they meet it: the token
(audience, expiry, account: its payload decoded without verifying it, the
token itself never shown), whether listing works and how many referrals are
visible, which of the filters bulkref uses the service accepts (each probed
with random values: a filter refused answers 400, one ignored answers with
referrals), the page size, and the look-up strategy (bulkref.plan.remote).

Exit codes: 0 everything works; 1 it works, with warnings (a role that may see
only part of the referrals, a token whose role cannot be told, filters refused
so that look-ups scan); 2 it cannot work (no credentials, listing refused).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bulkref.errors import ApiError, BulkrefError
from bulkref.plan.remote import IDS_PER_QUERY, Probe, probe, probe_filters

#: Partner Center's resource, as a token's audience names it (URL or application id).
PARTNER_CENTER_AUDIENCES = frozenset(
    {"https://api.partner.microsoft.com", "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd"}
)
#: The filter probes bulkref's look-ups use, in the order they are reported.
FILTERS = tuple(probe_filters())
#: Role names (as a token may carry them) that see only referrals whose team includes them.
PARTIAL_ROLES = ("referrals user", "referralsuser")
FULL_ROLES = ("referrals admin", "referralsadmin", "admin agent", "adminagent")


@dataclass
class Doctor:
    """What ``bulkref doctor`` found; ``as_json`` is its ``--format json`` output."""

    target: dict[str, Any]
    token: dict[str, Any] = field(default_factory=dict)
    listing: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, str] = field(default_factory=dict)
    orderby: str | None = None
    strategy: dict[str, Any] = field(default_factory=dict)
    #: What earlier applies against this target measured of the listing's lag, and the
    #: creates they left in doubt (bulkref.plan.doubts): {} when no run recorded any.
    consistency: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 2 if self.problems else 1 if self.warnings else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "token": self.token,
            "listing": self.listing,
            "filters": self.filters,
            "orderby": self.orderby,
            "strategy": self.strategy,
            "consistency": self.consistency,
            "warnings": self.warnings,
            "problems": self.problems,
            "exitCode": self.exit_code,
        }

    def text(self) -> str:
        lines = [f"Target: {self.target.get('text')}"]
        t = self.token
        if t.get("kind") == "sandbox":
            lines.append("Token: the sandbox's own")
        elif t:
            who = t.get("account") or "an account the token does not name"
            lines.append(
                f"Token: {t.get('kind')}, for {who}"
                + (f", audience {t['audience']}" if t.get("audience") else "")
                + (f", expires {t['expires']}" if t.get("expires") else "")
            )
        if self.listing.get("works"):
            seen = self.listing.get("visible")
            size = self.listing.get("pageSize")
            lines.append(
                f"Listing: works, {seen if seen is not None else 'an unknown number of'} referrals visible"
                + (f", pages of {size}" if size else "")
            )
        elif self.listing:
            lines.append(f"Listing: does not work ({self.listing.get('error')})")
        for name, verdict in self.filters.items():
            lines.append(f"Filter {name}: {verdict}")
        if self.orderby is not None:
            lines.append(f"$orderby createdDateTime desc: {self.orderby}")
        if self.strategy:
            lines.append(f"Look-ups: {self.strategy.get('text')}")
        if self.consistency:
            lines.append(f"Consistency: {self.consistency.get('text')}")
        lines += [f"Warning: {w}" for w in self.warnings]
        lines += [f"Problem: {p}" for p in self.problems]
        return "\n".join(lines)


def token_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, decoded without verifying it (the service verifies it);
    None when the token is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None


def describe_token(
    token: str, *, sandbox: bool, now: dt.datetime | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(what the token says, warnings). Never the token, nor any part of its signature."""
    if sandbox:
        return {"kind": "sandbox", "account": None, "audience": None, "expires": None, "roles": None}, []
    claims = token_claims(token)
    if claims is None:
        return (
            {"kind": "opaque", "account": None, "audience": None, "expires": None, "roles": None},
            [
                "The token is not a JWT, so its account and role cannot be told: a Referrals User "
                "sees only referrals whose team includes them, and their look-ups miss the rest."
            ],
        )
    now = now or dt.datetime.now(dt.UTC)
    warnings: list[str] = []
    audience = claims.get("aud")
    exp = claims.get("exp")
    expires = dt.datetime.fromtimestamp(exp, dt.UTC) if isinstance(exp, int | float) else None
    account = next(
        (
            claims[k]
            for k in ("upn", "preferred_username", "unique_name", "email")
            if isinstance(claims.get(k), str)
        ),
        None,
    )
    roles = (
        [str(r) for r in claims.get("roles", []) if isinstance(r, str)]
        if isinstance(claims.get("roles"), list)
        else []
    )
    info = {
        "kind": "jwt",
        "account": account,
        "audience": audience if isinstance(audience, str) else None,
        "expires": expires.isoformat(timespec="seconds").replace("+00:00", "Z") if expires else None,
        "expiresIn": int((expires - now).total_seconds()) if expires else None,
        "tenant": claims.get("tid") if isinstance(claims.get("tid"), str) else None,
        "roles": roles,
    }
    if isinstance(audience, str) and audience.rstrip("/") not in PARTNER_CENTER_AUDIENCES:
        warnings.append(
            f"The token is for {audience}, not Partner Center (https://api.partner.microsoft.com): "
            "sign in again with `bulkref login`."
        )
    if expires is not None and expires <= now:
        warnings.append("The token has expired: sign in again with `bulkref login`.")
    elif expires is not None and (expires - now) < dt.timedelta(minutes=10):
        warnings.append(
            "The token expires within 10 minutes: a long apply refreshes it, a bare token does not."
        )
    lowered = [r.lower() for r in roles]
    if any(r in PARTIAL_ROLES for r in lowered) and not any(r in FULL_ROLES for r in lowered):
        warnings.append(
            "The signed-in user is a Referrals User: they see only referrals whose team includes them, "
            "so look-ups miss the rest and may plan as new what exists. Use a Referrals Admin."
        )
    elif not any(r in FULL_ROLES for r in lowered):
        warnings.append(
            "The token does not say the user's Partner Center role: a Referrals User sees only referrals "
            "whose team includes them, so look-ups would miss the rest. Check the role is Referrals Admin."
        )
    return info, warnings


async def examine(client: Any, *, target: Mapping[str, Any], sandbox: bool, token: str | None) -> Doctor:
    """Probe ``client``'s service (reads only) and say what plan and apply will use."""
    found = Doctor(target=dict(target))
    if token is not None:
        found.token, warnings = describe_token(token, sandbox=sandbox)
        found.warnings += warnings
    try:
        seen: Probe = await probe(client, filters=FILTERS)
    except ApiError as e:
        found.listing = {
            "works": False,
            "error": str(e),
            "status": e.status,
            "visible": None,
            "pageSize": None,
        }
        found.problems.append(f"Listing referrals does not work: {e}")
        return found
    found.listing = {
        "works": True,
        "error": None,
        "status": 200,
        "visible": seen.visible,
        "pageSize": seen.page_size,
    }
    found.filters = dict(seen.filters)
    found.orderby = await _try_orderby(client)
    look_ups = Probe(
        visible=seen.visible,
        page_size=seen.page_size,
        filters={k: v for k, v in seen.filters.items() if k in ("externalReferenceId", "id", "or")},
    )
    largest = look_ups.largest_filtered()
    if not look_ups.filtered_works:
        text = "scan: one paged listing of every referral, for any sheet (the look-up filters do not work)"
        found.warnings.append(
            "Partner Center does not filter by External Reference ID, id or 'or': plan and apply read "
            "every referral by one paged listing (as fast as listing them; slower for a small sheet)."
        )
        auto = "scan"
    elif largest is None:
        text = "filtered look-ups (the number of referrals is not told)"
        auto = "filtered"
    else:
        text = f"filtered look-ups for sheets of up to {largest // 2:,} rows, else one paged listing (scan)"
        auto = "filtered"
    if found.orderby != "accepted":
        found.warnings.append(
            "$orderby createdDateTime desc is not accepted: a create whose answer was lost is looked for "
            "by a listing of every referral."
        )
    found.strategy = {
        "auto": auto,
        "filteredUpTo": None if largest is None else largest // 2,
        "text": text,
        "idsPerQuery": IDS_PER_QUERY,
    }
    return found


async def _try_orderby(client: Any) -> str:
    try:
        async for _ in client.list(orderby="createdDateTime desc", top=1):
            break
    except ApiError as e:
        return "refused" if e.status == 400 else "failed"
    return "accepted"


def run_doctor(api_url: str | None = None, sandbox: bool = False) -> Doctor:
    """``bulkref doctor`` as a call: read-only, against ``--api-url`` or ``--sandbox``."""
    from bulkref.api import target
    from bulkref.api.destination import destination
    from bulkref.files import data_dir

    with target.resolve(api_url, sandbox) as where:
        named = destination(where)
        head = {**named.as_json(), "text": named.text()}
        from bulkref.plan.make import api_label

        measured = consistency_of(api_label(where), data_dir())
        try:
            token = where.token()
        except BulkrefError as e:
            return Doctor(target=head, consistency=measured, problems=[str(e)])

        async def go() -> Doctor:
            async with where.client() as client:
                return await examine(client, target=head, sandbox=where.is_sandbox, token=token)

        found = asyncio.run(go())
        found.consistency = measured
        if measured.get("inDoubt"):
            found.warnings.append(
                f"{measured['inDoubt']} creates are in doubt since an earlier apply (their answer was "
                "lost): the next plan shows them, and apply looks each up before sending it."
            )
        return found


def consistency_of(label: str, data_dir: Any) -> dict[str, Any]:
    """What runs against ``label`` measured of how long a new referral takes to show in a
    listing (the last week), and the window the next run starts from; {} when none did."""
    from bulkref.plan.doubts import Window, ledger_of

    ledger = ledger_of(label, data_dir)
    lags, doubts = ledger.lags(), ledger.doubts()
    if not lags and not doubts:
        return {}
    seen = [lag.seconds for lag in lags if lag.seen]
    unseen = [lag.seconds for lag in lags if not lag.seen]
    window = Window(remembered=lags).seconds()
    largest = max(seen) if seen else None
    text = (
        f"new referrals showed in the listing within {largest:.1f} s ({len(seen)} measured by earlier runs)"
        if largest is not None
        else "no run has seen a new referral in the listing yet"
    )
    if unseen:
        text += f"; {len(unseen)} not shown after up to {max(unseen):.0f} s"
    text += (
        f"; the next apply waits {window:.0f} s before it tells a lost create absent"
        if window != float("inf")
        else "; until a lag is measured, no lost create is told absent"
    )
    if doubts:
        text += f"; {len(doubts)} creates in doubt"
    return {
        "measuredLag": None if largest is None else round(largest, 1),
        "samples": len(seen),
        "unseen": len(unseen),
        "window": round(window, 1) if window != float("inf") else None,
        "inDoubt": len(doubts),
        "text": text,
    }
