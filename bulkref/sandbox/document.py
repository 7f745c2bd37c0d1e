"""A referral document: server-set fields, timestamps, eTags, key order and links."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import threading
import time
import uuid
from functools import lru_cache
from typing import Any

Doc = dict[str, Any]

#: Fields only the service sets. A client may send some of them back (a PUT of
#: what it read), see ``rules``.
READ_ONLY = (
    "id",
    "engagementId",
    "organizationId",
    "organizationName",
    "createdDateTime",
    "updatedDateTime",
    "expirationDateTime",
    "acceptedDateTime",
    "eTag",
    "direction",
    "links",
)

#: The order of the documented example response; the other fields follow in
#: the order the client sent them.
LEADING_KEYS = (
    "id",
    "engagementId",
    "organizationId",
    "organizationName",
    "name",
    "externalReferenceId",
    "createdDateTime",
    "updatedDateTime",
    "expirationDateTime",
    "acceptedDateTime",
    "status",
    "substatus",
    "statusReason",
    "qualification",
    "type",
    "direction",
    "eTag",
)

#: Present in every answer, null when unknown, as in the documented example.
NULL_DEFAULTS = (
    "name",
    "externalReferenceId",
    "expirationDateTime",
    "acceptedDateTime",
    "statusReason",
    "qualification",
)

_TICKS = 10_000_000  # the service writes 7 fractional digits: 100 ns ticks
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?$")


class Clock:
    """UTC timestamps in the service's format, strictly increasing.

    Strictly, because every write must change updatedDateTime and because
    ordering by a time must not depend on two writes landing in the same tick.
    """

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def now(self) -> str:
        with self._lock:
            ticks = max(time.time_ns() // 100, self._last + 1)
            self._last = ticks
        return format_ticks(ticks)

    def observe(self, stamp: str | None) -> None:
        """Never hand out a time before one already stored (a --db from a faster clock)."""
        ticks = to_ticks(stamp)
        with self._lock:
            self._last = max(self._last, ticks)


def format_ticks(ticks: int) -> str:
    seconds, fraction = divmod(ticks, _TICKS)
    return f"{second_text(seconds)}.{fraction:07d}Z"


@lru_cache(maxsize=64)  # consecutive writes mostly fall in the same second
def second_text(seconds: int) -> str:
    return f"{_EPOCH + dt.timedelta(seconds=seconds):%Y-%m-%dT%H:%M:%S}"


def to_ticks(stamp: object) -> int:
    return _to_ticks(stamp) if isinstance(stamp, str) else 0


@lru_cache(maxsize=8192)  # a listing re-reads the same few times; a create, the same time twice
def _to_ticks(stamp: str) -> int:
    """100 ns ticks since 1970 of an ISO 8601 time; 0 when missing or unreadable
    (such referrals sort first, they do not break a listing)."""
    match = _ISO.match(stamp.strip())
    if not match:
        return 0
    day, clock, fraction, zone = match.groups()
    try:
        moment = dt.datetime.fromisoformat(f"{day}T{clock or '00:00:00'}{_zone(zone)}")
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    whole = (moment - _EPOCH) // dt.timedelta(seconds=1)
    return whole * _TICKS + int((fraction or "0")[:7].ljust(7, "0"))


def _zone(zone: str | None) -> str:
    if not zone or zone == "Z":
        return "+00:00"
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"


def is_timestamp(value: object) -> bool:
    return isinstance(value, str) and bool(_ISO.match(value.strip())) and to_ticks(value) != 0


# Ids need to be unique, not unguessable: a generator seeded once from the OS is
# an order of magnitude cheaper than uuid4()'s urandom call per id, and a create
# takes four (id, engagementId, eTag, request-id).
_ids = random.Random(int.from_bytes(os.urandom(16), "big"))
_ids_lock = threading.Lock()


def new_id() -> str:
    """A random (version 4) GUID."""
    with _ids_lock:
        bits = _ids.getrandbits(128)
    return str(uuid.UUID(int=bits, version=4))


def new_etag() -> str:
    # The service's eTags are quoted strings ("\"00006d10-...\""); keep the quotes
    # in the value so a client can send it back in If-Match unchanged.
    return f'"{new_id()}"'


def etag_matches(if_match: str, etag: str) -> bool:
    """Whether an If-Match header value matches the stored eTag.

    The service's eTag is a strong entity tag: the create example answers
    ``"eTag": "\\"00006d10-0000-0000-0000-5c70aa630000\\""``, the opaque tag
    between the double quotes that RFC 9110 (8.8.3) puts around every entity
    tag. If-Match is evaluated with the strong comparison (RFC 9110 13.1.1,
    8.8.3.2): equal only when neither tag is weak and the opaque tags are the
    same character for character. So:

    - ``"tag"`` matches; ``*`` matches any; a list matches when one member does;
    - ``tag`` without the quotes names the same opaque tag and matches: the
      quotes are syntax, not part of the tag, and a value that lost them (a
      spreadsheet cell, the body's value taken as text) means that tag. RFC
      9110 gives an If-Match that is not an entity tag no meaning, and a false
      412 would send a client into a conflict that is not there;
    - ``W/"tag"`` is weak and never matches (412): the strong comparison the
      RFC requires for If-Match, and the service never hands out a weak tag;
    - case counts: an entity tag is opaque, not a GUID to compare as one.
    """
    wanted = _entity_tags(if_match)
    if wanted is None:
        return False
    stored = _opaque(etag)
    return any(tag == "*" or (not weak and tag == stored) for weak, tag in wanted)


# One member of an If-Match list: W/"opaque", "opaque", or a bare value (the quotes lost).
_MEMBER = re.compile(r'\s*(?:(?P<weak>W/)?"(?P<quoted>[^"]*)"|(?P<weakbare>W/)?(?P<bare>[^",\s]*))\s*(?:,|$)')


def _entity_tags(header: str) -> list[tuple[bool, str]] | None:
    """(weak, opaque tag) for each member of an If-Match value; None when it cannot be read."""
    tags: list[tuple[bool, str]] = []
    position = 0
    while position < len(header):
        member = _MEMBER.match(header, position)
        if member is None or member.end() == position:
            return None
        position = member.end()
        if member["quoted"] is not None:
            tags.append((member["weak"] is not None, member["quoted"]))
        elif member["bare"]:
            tags.append((member["weakbare"] is not None, member["bare"]))
    return tags


def _opaque(etag: str) -> str:
    tag = etag.strip()
    return tag[1:-1] if len(tag) >= 2 and tag[0] == tag[-1] == '"' else tag


def ordered(doc: Doc) -> Doc:
    out = {key: doc[key] for key in LEADING_KEYS if key in doc}
    out.update((key, value) for key, value in doc.items() if key not in out and key != "links")
    return out


def dumps(value: Any) -> str:
    """The JSON the sandbox writes, stored and answered alike."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def links(doc: Doc, collection_url: str) -> Doc:
    """Links point at the sandbox that answers, so they stay right when a --db
    is served on another port: they are added to answers, never stored."""
    return {
        "relatedReferrals": {
            "uri": f"{collection_url}?$filter=engagementId eq '{doc.get('engagementId')}'",
            "method": "GET",
        },
        "self": {"uri": f"{collection_url}/{doc.get('id')}", "method": "GET"},
    }


def with_links(doc: Doc, collection_url: str) -> Doc:
    """The document as answered."""
    out = dict(doc)
    out["links"] = links(doc, collection_url)
    return out


def linked_text(text: str, doc: Doc, collection_url: str) -> str:
    """``with_links`` as JSON, from the stored JSON text of ``doc``: answering
    does not serialise the document again (it is most of a create's or a
    listing's cost)."""
    body = text.rstrip()
    if not body.endswith("}") or body == "{}":
        return dumps(with_links(doc, collection_url))
    return f'{body[:-1]},"links":{dumps(links(doc, collection_url))}}}'
