"""The query of ``bulkref export``: its convenience flags as one OData ``$filter``.

::

    compose_filter(status="Active", direction="Outgoing", since="2026-01-01")
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bulkref.api.client import odata_string

__all__ = ["compose_filter", "odata_datetime"]


def compose_filter(
    *,
    status: str | Sequence[str] | None = None,
    substatus: str | Sequence[str] | None = None,
    direction: str | None = None,
    type: str | None = None,
    since: dt.date | dt.datetime | str | None = None,
    team_email: str | None = None,
    engagement: str | None = None,
    filter: str | None = None,
) -> str | None:
    """One OData ``$filter`` for the export's convenience flags, joined with ``and``;
    None when nothing narrows the listing.

    Several statuses (or substatuses) are alternatives (``or``). ``since`` is a
    date (midnight UTC) or a date-time, compared with ``createdDateTime``.
    ``filter`` is the user's own expression, kept as it is (parenthesised when
    joined to the others). Values are OData string literals, quotes doubled.
    """
    clauses: list[str] = []
    if engagement:
        clauses.append(f"engagementId eq {odata_string(engagement)}")
    for name, values in (("status", status), ("substatus", substatus)):
        chosen = [values] if isinstance(values, str) else list(values or ())
        alternatives = [f"{name} eq {odata_string(v)}" for v in chosen]
        if len(alternatives) > 1:
            clauses.append("(" + " or ".join(alternatives) + ")")
        elif alternatives:
            clauses.append(alternatives[0])
    if direction:
        clauses.append(f"direction eq {odata_string(direction)}")
    if type:
        clauses.append(f"type eq {odata_string(type)}")
    if since is not None:
        clauses.append(f"createdDateTime ge {odata_datetime(since)}")
    if team_email:
        clauses.append(f"team/any(t:t/email eq {odata_string(team_email)})")
    if filter and filter.strip():
        clauses.append(f"({filter.strip()})" if clauses else filter.strip())
    return " and ".join(clauses) or None


def odata_datetime(value: dt.date | dt.datetime | str) -> str:
    """An OData DateTimeOffset literal in UTC (``2026-01-01T00:00:00Z``); a date is
    its midnight UTC, a date-time without a zone is taken as UTC. ValueError when
    ``value`` is text that is not an ISO date or date-time."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"'{value}' is not a date (YYYY-MM-DD) or an ISO date and time") from None
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    fraction = f".{value.microsecond:06d}" if value.microsecond else ""
    return f"{value:%Y-%m-%dT%H:%M:%S}{fraction}Z"
