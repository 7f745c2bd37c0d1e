"""Reading what Partner Center holds for a sheet's rows (the planner's remote state).

Every read that asks "which of these referrals exist already?" goes through
``find_existing``: the planner's, the check apply makes before it creates
anything, and the look-up of a create whose answer was lost. So the way that
question is put to the service is decided here, by a strategy:

- ``filtered``: batched OData queries (``externalReferenceId eq 'a' or ...``,
  the same by ``id`` and by ``engagementId``), each as many ids as fit in a
  safe URL (about 45), run concurrently. Fast for a sheet that is small next to
  what Partner Center holds, but Partner Center's listing page documents
  neither ``externalReferenceId``, ``id`` nor ``or``.
- ``scan``: one paged listing of all the partner's referrals into a local
  index (``bulkref.plan.index``), narrowed by nothing the documentation does
  not show. Costs what the bare listing costs, whatever the service filters.

The strategy is a ``Lookup``, made once per command from ``--lookup`` and
handed to every read that asks (``find_existing(client, lookup, ...)``).
``auto`` (the default) probes once per run: a filter on a random External
Reference ID and id joined by ``or``. A 400 (refused), or an answer holding
any referral (the filter ignored), means ``scan``; else ``filtered`` when its
queries would be no more than the scan's pages. A filter refused later (400
``invalidRequest`` on the first look-up) switches to ``scan`` by itself, and
the run is told once (``on_note``).

Referral ids are read by id where a listing may not show them yet (a listing
may lag its writes; GET by id is consistent): the ids asked for under
``filtered``, and under ``scan`` those the scan did not hold.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bulkref.errors import InvalidRequest, NotFound
from bulkref.plan.index import ById, Groups, ReferralIndex
from bulkref.plan.planner import Remote, moment
from bulkref.validation.schema import Validated

if TYPE_CHECKING:
    from bulkref.api.client import ReferralsClient

Referral = dict[str, Any]

#: ``--lookup`` choices; the first is the default.
MODES = ("auto", "filtered", "scan")
#: About how many ids one batched look-up carries (bulkref.api.client.filter_batches).
IDS_PER_QUERY = 45
#: How far before a lost create was first sent a recent scan reads back: the
#: service's clock and this machine's may differ by this much.
CLOCK_MARGIN = dt.timedelta(minutes=5)
#: GETs by id in flight at once (the client's own slots bound them too).
_BY_ID_AT_ONCE = 16


@dataclass
class Existing:
    """What Partner Center holds for the ids asked about: every id asked for is a
    key of its mapping (``[]`` / absent when none)."""

    by_external_id: Mapping[str, list[Referral]] = field(default_factory=dict)
    by_id: Mapping[str, Referral] = field(default_factory=dict)
    by_engagement: Mapping[str, list[Referral]] = field(default_factory=dict)
    index: ReferralIndex | None = None

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
            self.index = None


@dataclass
class Probe:
    """What one look at the service showed: whether listing works, how many referrals
    it shows, its page size, and whether the look-up filters work."""

    visible: int | None = None  # @odata.count, or the referrals of a single page
    page_size: int | None = None  # referrals on a first page that has a next one
    filters: dict[str, str] = field(default_factory=dict)  # filter -> accepted|refused|ignored

    @property
    def filtered_works(self) -> bool:
        return bool(self.filters) and all(v == "accepted" for v in self.filters.values())

    def choose(self, keys: int) -> str:
        """The strategy for a look-up of ``keys`` ids (External Reference IDs, ids, engagements)."""
        if not self.filtered_works:
            return "scan"
        if self.visible is None:
            return "filtered"
        queries = math.ceil(keys / IDS_PER_QUERY)
        pages = max(1, math.ceil(self.visible / max(1, self.page_size or 100)))
        return "filtered" if queries <= pages else "scan"  # a tie reads less when filtered

    def largest_filtered(self) -> int | None:
        """The most ids a look-up may have and still be filtered (None: any number)."""
        if not self.filtered_works:
            return 0
        if self.visible is None:
            return None
        pages = max(1, math.ceil(self.visible / max(1, self.page_size or 100)))
        return pages * IDS_PER_QUERY


#: The probes, by what bulkref's look-ups use. Random values: a service that ignores
#: a filter shows itself by answering with referrals.
def probe_filters() -> dict[str, str]:
    a, b = (str(uuid.uuid4()) for _ in range(2))
    return {
        "externalReferenceId": f"externalReferenceId eq '{a}'",
        "id": f"id eq '{a}'",
        "engagementId": f"engagementId eq '{a}'",
        "or": f"engagementId eq '{a}' or engagementId eq '{b}'",
    }


async def probe(client: ReferralsClient, *, filters: Iterable[str] | None = None) -> Probe:
    """Look once at the service: a first page with ``$count``, then each filter."""
    found = Probe()
    first = await client.request("GET", client.base_url + "?%24count=true")
    body = first.body if isinstance(first.body, dict) else {}
    listed = body.get("value")
    value: list[Any] = listed if isinstance(listed, list) else []
    count = body.get("@odata.count")
    if isinstance(count, int):
        found.visible = count
    elif not body.get("@odata.nextLink"):
        found.visible = len(value)
    if body.get("@odata.nextLink") and value:
        found.page_size = len(value)
    elif found.visible is not None and found.visible == len(value):
        found.page_size = None  # everything fit on one page: the size is not told
    tests = probe_filters()
    for name in filters if filters is not None else tests:
        found.filters[name] = await _try_filter(client, tests[name])
    return found


async def _try_filter(client: ReferralsClient, text: str) -> str:
    try:
        hits = [r async for r in client.list(filter=text, top=1)]
    except InvalidRequest:
        return "refused"
    return "ignored" if hits else "accepted"


class Lookup:
    """The strategy of one client's look-ups (see the module's docstring)."""

    def __init__(self, mode: str = "auto", on_note: Callable[[str], None] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"--lookup must be one of {', '.join(MODES)}, not '{mode}'")
        self.mode = mode
        self.on_note = on_note
        self.strategy: str | None = None if mode == "auto" else mode
        self.probe: Probe | None = None
        self._noted = False

    async def choose(self, client: ReferralsClient, keys: int) -> str:
        if self.mode != "auto":
            return self.strategy or self.mode
        if self.probe is None:
            self.probe = await probe(client, filters=("externalReferenceId", "id", "or"))
            if not self.probe.filtered_works:
                self.refused("the look-up by External Reference ID or id")
        self.strategy = self.probe.choose(keys)
        return self.strategy

    def refused(self, what: str) -> None:
        """The service refused (or ignored) a look-up filter: scan from now on, said once."""
        self.mode = self.strategy = "scan"
        if not self._noted and self.on_note is not None:
            self._noted = True
            self.on_note(
                f"Note: Partner Center does not filter {what}; "
                "reading its referrals by one paged listing instead."
            )


def as_lookup(lookup: Lookup | str | None, on_note: Callable[[str], None] | None = None) -> Lookup:
    """``lookup`` itself, or a new one of that mode (None: ``auto``)."""
    return lookup if isinstance(lookup, Lookup) else Lookup(lookup or "auto", on_note)


async def find_existing(
    client: ReferralsClient,
    lookup: Lookup,
    *,
    external_ids: Iterable[str] = (),
    ids: Iterable[str] = (),
    engagement_ids: Iterable[str] = (),
    since: dt.datetime | None = None,
    scanned: ReferralIndex | None = None,
    margin: dt.timedelta = CLOCK_MARGIN,
) -> Existing:
    """The referrals Partner Center holds with these External Reference IDs, ids and
    engagements: the one way bulkref asks which referrals exist already.

    ``since``: only referrals created from then on can match (a create whose answer
    was lost): a scan reads the newest referrals only, back to ``margin`` before then (how
    far the service's clock may be behind this machine's).
    Under ``scan`` the answer may hold an index to ``close()``; ``scanned`` is one read
    already (``scan_ahead``), which the answer then owns."""
    ext, rid, eng = (sorted({v for v in values if v}) for values in (external_ids, ids, engagement_ids))
    if scanned is not None:
        return await _scanned(client, ext, rid, eng, None, scanned)
    if not (ext or rid or eng):
        return Existing()
    if await lookup.choose(client, len(ext) + len(rid) + len(eng)) == "filtered":
        try:
            return await _filtered(client, ext, rid, eng)
        except InvalidRequest:
            lookup.refused("the look-up by External Reference ID, id or engagement")
    return await _scanned(client, ext, rid, eng, since, margin=margin)


async def _filtered(client: ReferralsClient, ext: list[str], rid: list[str], eng: list[str]) -> Existing:
    async def nothing() -> dict[str, Any]:
        return {}

    by_ext, by_id, by_engagement = await asyncio.gather(
        client.by_external_ids(ext) if ext else nothing(),
        read_by_id(client, rid) if rid else nothing(),
        client.by_engagement_ids(eng) if eng else nothing(),
    )
    return Existing(by_external_id=by_ext, by_id=by_id, by_engagement=by_engagement)


async def read_by_id(client: ReferralsClient, ids: Iterable[str]) -> dict[str, Referral]:
    """GET each referral by id (consistent, unlike a listing); absent when there is none."""
    slots = asyncio.Semaphore(_BY_ID_AT_ONCE)

    async def one(referral_id: str) -> tuple[str, Referral | None]:
        async with slots:
            try:
                return referral_id, await client.get(referral_id)
            except NotFound:
                return referral_id, None

    read = await asyncio.gather(*(one(r) for r in dict.fromkeys(ids)))
    return {r: doc for r, doc in read if doc is not None}


async def scan_all(client: ReferralsClient) -> ReferralIndex:
    """Every referral the listing shows, in a local index (the caller closes it)."""
    from bulkref.api.readahead import read_ahead

    index = ReferralIndex()
    try:
        # The next page is asked for while this one is indexed (and the sheet read).
        async for referral in read_ahead(client.list()):
            index.add(referral)
        return index.finish()
    except BaseException:
        index.close()
        raise


async def scan_ahead(client: ReferralsClient, lookup: Lookup) -> asyncio.Task[ReferralIndex] | None:
    """The scan, started now, when look-ups will scan whatever the sheet holds (``--lookup
    scan``, or a service that does not filter): it runs while the sheet is read."""
    if lookup.mode == "filtered":
        return None
    if lookup.mode == "auto":
        if lookup.probe is None:
            await lookup.choose(client, 1)
        if lookup.probe is not None and lookup.probe.filtered_works:
            return None
    return asyncio.create_task(scan_all(client))


async def _scanned(
    client: ReferralsClient,
    ext: list[str],
    rid: list[str],
    eng: list[str],
    since: dt.datetime | None,
    scanned: ReferralIndex | None = None,
    margin: dt.timedelta = CLOCK_MARGIN,
) -> Existing:
    index = scanned or ReferralIndex()
    try:
        if scanned is not None:
            pass  # read already, while the sheet was
        elif since is None:
            async for referral in client.list():
                index.add(referral)
        else:
            # Newest first ($orderby createdDateTime is documented): stop once past ``since``.
            cutoff = since - margin
            try:
                async for referral in client.list(orderby="createdDateTime desc"):
                    created = moment(referral.get("createdDateTime"))
                    if created is not None and created < cutoff:
                        break
                    index.add(referral)
            except InvalidRequest:
                # A service that refuses the order too: every referral, as a plain scan.
                index.close()
                index = ReferralIndex()
                async for referral in client.list():
                    index.add(referral)
        index.finish()
        # Ids the listing does not show (yet): read by id, which is consistent.
        present = index.has("id", rid) if rid else set()
        missing = [r for r in rid if r not in present]
        extra = await read_by_id(client, missing) if missing else {}
        extra_ext: dict[str, list[Referral]] = {}
        extra_eng: dict[str, list[Referral]] = {}
        ext_of = {e.lower(): e for e in ext}  # as asked, whatever the case the service keeps
        eng_of = {e.lower(): e for e in eng}
        for doc in extra.values():
            mine = ext_of.get(str(doc.get("externalReferenceId") or "").lower())
            if mine is not None:
                extra_ext.setdefault(mine, []).append(doc)
            joined = eng_of.get(str(doc.get("engagementId") or "").lower())
            if joined is not None:
                extra_eng.setdefault(joined, []).append(doc)
        return Existing(
            by_external_id=Groups(index, "ext", ext, extra_ext),
            by_id=ById(index, present, extra),
            by_engagement=Groups(index, "engagement", eng, extra_eng),
            index=index,
        )
    except BaseException:
        index.close()
        raise


async def fetch(
    client: ReferralsClient, lookup: Lookup, validated: Validated, scanned: ReferralIndex | None = None
) -> Remote:
    """The planner's remote state for the sheet's valid rows. Under ``scan``, the
    returned ``Remote`` reads from an index: call its ``release`` when planned.
    ``scanned``: the scan ``scan_ahead`` made while the sheet was read."""
    values = validated.values
    valid = values.loc[[r for r in values.index if r not in validated.invalid_rows]]
    ext, rid = _distinct(valid, "external_id"), _distinct(valid, "referral_id")
    first = await find_existing(client, lookup, external_ids=ext, ids=rid, scanned=scanned)
    if first.index is not None:
        # A scan answers the engagements too: every referral it saw is in the index.
        return Remote(
            by_external_id=first.by_external_id,
            by_id=first.by_id,
            by_engagement=Groups(first.index, "engagement", None, {}),
            release=first.close,
            strategy="scan",
            index=first.index,
        )
    found: list[Referral] = [d for docs in first.by_external_id.values() for d in docs]
    found += list(first.by_id.values())
    more = await find_existing(
        client, lookup, engagement_ids=[e for d in found if (e := d.get("engagementId"))]
    )

    def release() -> None:
        first.close()
        more.close()

    return Remote(
        by_external_id=first.by_external_id,
        by_id=first.by_id,
        by_engagement=more.by_engagement,
        release=release,
        strategy=lookup.strategy or "filtered",
    )


def _distinct(frame: Any, key: str) -> list[str]:
    if key not in frame.columns:
        return []
    return sorted({str(v) for v in frame[key] if v is not None})
