"""``bulkref export`` and ``bulkref get``: Partner Center's referrals as a sheet in
the template's shape, to edit and apply back as updates; one referral to read.

::

    from bulkref.export.referrals import compose_filter, export_referrals

    result = export_referrals("deals.xlsx", sandbox=True,
                              filter=compose_filter(status="Active", direction="Outgoing"))
    result.rows, result.referrals, result.folded

One row per deal. Every referral of the partner's own becomes a row
(``payload.row_of``), and so does one without an External Reference ID (an
incoming lead, one made in Partner Center's UI): its Referral ID finds it
again. The connected referrals of a deal are folded into its row:

- the Microsoft referral of a co-sell (``organizationId`` msft, in the
  engagement of an exported partner referral): it is what makes the deal
  Co-sell and carries Help Needed and Invite Notes;
- the other party's referral of a deal shared with another partner (step 2 of
  that chain: the same engagement, no External Reference ID of its own). The
  deal's row is the engagement's referral with an External Reference ID (the
  oldest, should there be several without), and planning that row back finds the
  connected referral again by the engagement.

A referral with an External Reference ID of its own is always a row. A
Microsoft referral with no partner referral beside it in the export is a row
of its own, and so is a connected referral whose deal's referral the query left out.

Two passes, so that memory stays flat however many referrals there are. How
many numbered columns each group needs (a deal with five customer contacts)
and which deals are co-sells are known only after the last page, and the
header row comes first. Pass 1 reads every page (``ReferralsClient.list``
follows ``@odata.nextLink`` with the client's retries and throttling) into a
spool: a temporary SQLite file, one referral a row, each referral once even
if a page repeats one. Pass 2 writes the file from the spool: a workbook
skeleton made by ``template.build_workbook`` (Instructions, the styled header,
drop-downs, input messages, Lists) with the data rows streamed into the
Referrals sheet's XML (``bulkref.sheets.xlsxstream``), or the template's CSV. The file
is written beside its final name and renamed into place: an interrupted
export leaves no half file.

A filtered (or ``top``-limited) export may hold a partner referral without
the Microsoft referral of its co-sell. The engagements of what was exported
are then read too, in batched queries, so that a co-sell row says Co-sell:
planned back, it would otherwise look like an attempt to withdraw the
co-sell.

A referral whose data fits no deal type the way the validator asks (an
incoming invitation is Shared and carries Help Needed without being a
partner's co-sell) gets a blank Deal Type, which on a row with a Referral ID
means "leave as it is": the row validates, and plans as ``unchanged`` until
someone edits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import marshal
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import filelock
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bulkref.api.client import InvalidRequest, NotFound, ServerError, odata_string, with_query
from bulkref.api.readahead import read_ahead
from bulkref.errors import BadOption, ReferralNotFound, UnwritableOutput
from bulkref.plan.payload import deal_defaults, deal_type_of, is_microsoft, row_of
from bulkref.sheets import template
from bulkref.sheets import xlsxstream as sheetxml
from bulkref.spec.columns import SPEC, Column, Kind
from bulkref.spec.deals import SERVICES_KEYS, broken_rules
from bulkref.spec.jsonpaths import get_path, getter

if TYPE_CHECKING:
    from bulkref.api.client import ReferralsClient, RetryPolicy
    from bulkref.api.target import Caller

FORMATS = (".xlsx", ".csv")

#: Called as ``on_progress(phase, done, total)``: phase ``"read"`` counts the
#: referrals read (total: ``@odata.count``, None when the service gives none),
#: phase ``"write"`` the rows written (total known).
ProgressCallback = Callable[[str, int, int | None], None]

# Referrals spooled in one statement, and rows written between two progress reports:
# a page of the listing's usual size. Per referral, either cost as much as the SQL.
_SPOOL_BATCH = 100

# Rows of sheet XML handed to the deflating thread at a time (about 1.5 MB).
CHUNK_ROWS = 500

# Engagements looked up per batch of a filtered export's co-sell check: each
# batch is about ten URLs of ~45 ids (client.filter_batches), read concurrently.
_ENGAGEMENT_BATCH = 500


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int  # data rows written
    referrals: int  # distinct referrals the query returned
    folded: int  # connected referrals (Microsoft's of co-sells, the other party's) in their deal's row
    total: int | None  # what the service said the query matches (@odata.count), when it said
    filter: str | None  # the $filter sent
    seconds: float
    folded_connected: int = 0  # of ``folded``: the other party's referrals of shared deals

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "rows": self.rows,
            "referrals": self.referrals,
            "folded": self.folded,
            "foldedConnected": self.folded_connected,
            "filter": self.filter,
        }


# --- the query ------------------------------------------------------------------------------------


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


# --- the export -----------------------------------------------------------------------------------


def default_path(today: dt.date | None = None, csv: bool = False) -> Path:
    """``referrals-export-<date>.xlsx`` (``.csv``) in the current folder."""
    return Path(f"referrals-export-{(today or dt.date.today()).isoformat()}.{'csv' if csv else 'xlsx'}")


#: The layouts an export is written in: the template's, or Partner Center's co-sell CSV.
LAYOUTS = ("template", "partner-center")


def check_output(out: Path, force: bool = False, layout: str = "template") -> Path:
    """Refuse, before anything is read, an output that cannot or should not be written.

    People re-export often and edit the last export meanwhile: replacing it
    would lose their edits, so an existing file needs ``force``.
    """
    if layout not in LAYOUTS:
        raise BadOption(f"The export's layout is template or partner-center, not {layout!r}.")
    if layout != "template" and out.suffix.lower() != ".csv":
        raise UnwritableOutput(
            f"Partner Center's layout is a CSV file, as its bulk upload takes: {out.name} is not "
            "(e.g. -o referrals.csv)."
        )
    if out.suffix.lower() not in FORMATS:
        raise UnwritableOutput(
            f"The export is written as .xlsx or .csv, by the name's suffix: {out.name} has "
            "neither (e.g. -o referrals.xlsx)."
        )
    if out.is_dir():
        raise UnwritableOutput(f"{out} is a folder: give a file name, e.g. -o {out / default_path().name}.")
    if out.exists() and not force:
        raise UnwritableOutput(
            f"{out} already exists: choose another name with -o, or add --force to replace it."
        )
    if not out.parent.is_dir():
        raise UnwritableOutput(f"Cannot write {out}: the folder {out.parent} does not exist.")
    return out


def export_referrals(
    out: Path | str | None = None,
    *,
    api_url: str | None = None,
    sandbox: bool = False,
    filter: str | None = None,
    orderby: str | None = None,
    top: int | None = None,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
    retry: RetryPolicy | None = None,
    layout: str = "template",
    caller: Caller | None = None,
) -> ExportResult:
    """Export every referral the query matches to ``out`` (.xlsx or .csv; default
    ``default_path()``), from ``--sandbox`` or ``--api-url`` as ``target.resolve``
    reads them, as ``caller`` when given. Refuses an existing ``out`` unless ``force``.
    ``layout``: the template's shape, or ``partner-center`` (Partner Center's co-sell CSV)."""
    from bulkref.api import target

    chosen = Path(out) if out is not None else default_path(csv=layout != "template")
    path = check_output(chosen, force, layout)
    with target.resolve(api_url, sandbox, caller=caller) as where:

        async def run() -> ExportResult:
            async with where.client(**({"retry": retry} if retry is not None else {})) as client:
                return await export_from(
                    client,
                    path,
                    filter=filter,
                    orderby=orderby,
                    top=top,
                    force=force,
                    on_progress=on_progress,
                    layout=layout,
                )

        return asyncio.run(run())


async def export_from(
    client: ReferralsClient,
    out: Path | str,
    *,
    filter: str | None = None,
    orderby: str | None = None,
    top: int | None = None,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
    layout: str = "template",
) -> ExportResult:
    """``export_referrals`` with a client of your own. The file is written at the end
    on the caller's event loop (CPU work, no awaits)."""
    started = time.monotonic()
    path = check_output(Path(out), force, layout)
    report = on_progress or (lambda phase, done, total: None)
    with spool_folder() as folder, Spool(folder) as spool:
        total = await _count(client, filter)
        if total is not None and top is not None:
            total = min(total, top)
        report("read", 0, total)
        # Read ahead: the service makes the next page while this one is spooled.
        batch: list[dict[str, Any]] = []
        async for doc in read_ahead(client.list(filter=filter, orderby=orderby, top=top)):
            batch.append(doc)
            if len(batch) == _SPOOL_BATCH:
                spool.add_many(batch)
                batch.clear()
                report("read", spool.exported, total)
        spool.add_many(batch)
        report("read", spool.exported, total)
        if filter or top is not None:
            # Only part of Partner Center was read: find the co-sells among it.
            await _add_microsoft_referrals(client, spool)
        spool.finish()
        rows = spool.row_count()
        connected = spool.folded_connected()
        report("write", 0, rows)
        if layout == "template":
            from bulkref.export import parallel  # it builds on this module

            written = parallel.write_spool(path, spool, folder, rows, report)
        else:
            written = _write_layout(path, spool, rows, report)
    assert written == rows, (written, rows)
    return ExportResult(
        path,
        rows,
        spool.exported,
        spool.exported - rows,
        total,
        filter,
        time.monotonic() - started,
        folded_connected=connected,
    )


async def _count(client: ReferralsClient, filter: str | None) -> int | None:
    """``@odata.count`` of the query, for the progress line; None when the service
    gives none. One referral rides along (``$top=1``): a service may refuse ``$top=0``."""
    try:
        reply = await client.request(
            "GET",
            with_query(client.base_url, {"$filter": filter, "$count": "true", "$top": 1, "$select": "id"}),
        )
    except InvalidRequest as e:
        if "filter" in (e.target or "").lower():
            raise  # the query itself is wrong: say so now, before the reading starts
        return None  # a service without $count or $select: the count only feeds the progress line
    except ServerError:
        return None
    count = reply.body.get("@odata.count") if isinstance(reply.body, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


async def _add_microsoft_referrals(client: ReferralsClient, spool: Spool) -> None:
    engagements = spool.engagements()
    for start in range(0, len(engagements), _ENGAGEMENT_BATCH):
        found = await client.by_engagement_ids(engagements[start : start + _ENGAGEMENT_BATCH])
        for docs in found.values():
            spool.add_many([doc for doc in docs if is_microsoft(doc)], exported=False)


def _reported(
    rows: Iterable[dict[str, Any]], total: int, report: ProgressCallback
) -> Iterator[dict[str, Any]]:
    done = 0
    for done, row in enumerate(rows, start=1):
        yield row
        if not done % _SPOOL_BATCH:
            report("write", done, total)
    if done % _SPOOL_BATCH:
        report("write", done, total)


# --- pass 1: the spool ----------------------------------------------------------------------------

SPOOL_PREFIX = "bulkref-export-"
SPOOL_LOCK = "in-use.lock"
# A folder younger than this may belong to an export that has not taken its lock yet.
_SWEEP_AGE = 60.0


@contextlib.contextmanager
def spool_folder() -> Iterator[Path]:
    """A private temporary folder for the spool (full referral records), locked while in use.

    It is removed when the export ends, however it ends short of a kill; the folders
    a killed export left (their lock free: the operating system released it) are
    removed by the next export, on any platform."""
    sweep_spools()
    with tempfile.TemporaryDirectory(prefix=SPOOL_PREFIX) as name:
        folder = Path(name)
        lock = filelock.FileLock(folder / SPOOL_LOCK)
        lock.acquire(timeout=0)
        try:
            yield folder
        finally:
            lock.release()


def sweep_spools(root: Path | None = None) -> int:
    """Remove the spool folders of exports that are no longer running; how many were removed."""
    removed = 0
    now = time.time()
    for folder in Path(root or tempfile.gettempdir()).glob(f"{SPOOL_PREFIX}*"):
        try:
            if not folder.is_dir() or now - folder.stat().st_mtime < _SWEEP_AGE:
                continue
            lock = filelock.FileLock(folder / SPOOL_LOCK)
            lock.acquire(timeout=0)
        except (OSError, filelock.Timeout):
            continue  # in use, or not ours to remove
        lock.release()
        shutil.rmtree(folder, ignore_errors=True)
        removed += not folder.exists()
    return removed


class Spool:
    """The referrals read, in a temporary SQLite file, in the order the API gave them.

    Each referral is kept whole but for its ``links`` (URLs of itself and of its
    engagement, a sixth of the bytes): what is done per referral while the
    pages are read is kept to the least, since the reading keeps a core busy
    and the service another; the writing can be shared by two processes
    (``bulkref.export.parallel``).

    ``exported`` counts the distinct referrals of the query; Microsoft referrals
    read only to see which deals are co-sells are kept with ``exported=False``.
    ``counts`` is how many numbered columns each group needs: at least the
    template's, more where a referral has more contacts, team members,
    solutions or targets.
    """

    def __init__(self, folder: Path) -> None:
        self.db = sqlite3.connect(folder / "spool.sqlite")
        # A scratch file: no journal, no fsync; a crash loses nothing worth keeping.
        self.db.executescript("""
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            -- The id index takes every referral at a random place: a bigger page cache than
            -- SQLite's 2 MB default keeps it from being read back from the file.
            PRAGMA cache_size = -32000;
            CREATE TABLE referral (
                seq INTEGER PRIMARY KEY,
                id TEXT UNIQUE,
                engagement TEXT,
                microsoft INTEGER NOT NULL,
                exported INTEGER NOT NULL,
                external INTEGER NOT NULL,    -- it has an External Reference ID
                created TEXT,
                doc BLOB NOT NULL
            );
        """)
        self.exported = 0
        self.counts: dict[str, int] = {g.key: g.in_template for g in SPEC.groups}
        self._microsoft_engagements: set[str] = set()

    @classmethod
    def reopen(cls, file: Path, counts: Mapping[str, int]) -> Spool:
        """The finished spool ``file``, to read rows from in another process."""
        spool = cls.__new__(cls)
        spool.db = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
        spool.exported = 0
        spool.counts = dict(counts)
        spool._microsoft_engagements = set()
        return spool

    @property
    def file(self) -> Path:
        (_, _, name) = self.db.execute("PRAGMA database_list").fetchone()
        return Path(name)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def add(self, doc: Mapping[str, Any], exported: bool = True) -> bool:
        """Keep ``doc``; False when a referral with its id is there already (a page
        that repeats one must not give it two rows)."""
        return self.add_many([doc], exported) == 1

    def add_many(self, docs: Sequence[Mapping[str, Any]], exported: bool = True) -> int:
        """``add`` for a page of referrals at once (one statement for the page); how many were new."""
        ids = [doc.get("id") for doc in docs]
        known: set[Any] = set()
        for start in range(0, len(ids), _SQL_PARAMS):
            some = ids[start : start + _SQL_PARAMS]
            marks = ",".join("?" * len(some))
            found = self.db.execute(f"SELECT id FROM referral WHERE id IN ({marks})", some)
            known.update(id for (id,) in found)
        records = []
        for doc, id in zip(docs, ids, strict=True):
            if id is not None:
                if id in known:
                    continue
                known.add(id)  # the same referral twice in one page
            microsoft = is_microsoft(doc)
            engagement = doc.get("engagementId") or None
            if exported:
                for key, items_of in _GROUP_ITEMS:
                    items = items_of(doc)
                    if isinstance(items, list) and len(items) > self.counts[key]:
                        self.counts[key] = len(items)
            if microsoft and engagement:
                self._microsoft_engagements.add(engagement)
            records.append(
                (
                    id,
                    engagement,
                    microsoft,
                    exported,
                    bool(str(doc.get("externalReferenceId") or "").strip()),
                    str(doc.get("createdDateTime") or ""),
                    _packed_without_links(doc),
                )
            )
        self.db.executemany(
            "INSERT INTO referral (id, engagement, microsoft, exported, external, created, doc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            records,
        )
        if exported:
            self.exported += len(records)
        return len(records)

    def engagements(self) -> list[str]:
        """The engagements of the exported partner referrals not yet known to be co-sells."""
        found = self.db.execute(
            "SELECT DISTINCT engagement FROM referral "
            "WHERE exported = 1 AND microsoft = 0 AND engagement IS NOT NULL"
        )
        return sorted(e for (e,) in found if e not in self._microsoft_engagements)

    def finish(self) -> None:
        """End of reading: index what pass 2 looks up."""
        self.db.execute("CREATE INDEX by_engagement ON referral (engagement, microsoft, exported)")
        self.db.commit()

    # A Microsoft referral is folded into its deal's row when a partner referral
    # of its engagement is exported; else it is a row of its own. A partner referral
    # without an External Reference ID (the other party's of a shared deal) is folded
    # into the engagement's deal row: one with an External Reference ID, else an older one.
    _ROWS = """
        FROM referral r WHERE r.exported = 1 AND NOT (r.engagement IS NOT NULL AND (
            (r.microsoft = 1
             AND EXISTS (SELECT 1 FROM referral p WHERE p.engagement = r.engagement
                         AND p.microsoft = 0 AND p.exported = 1))
            OR (r.microsoft = 0 AND r.external = 0
             AND EXISTS (SELECT 1 FROM referral p WHERE p.engagement = r.engagement
                         AND p.microsoft = 0 AND p.exported = 1 AND p.seq != r.seq
                         AND (p.external = 1 OR p.created < r.created
                              OR (p.created = r.created AND p.seq < r.seq))))))
    """

    def row_count(self) -> int:
        (n,) = self.db.execute("SELECT COUNT(*)" + self._ROWS).fetchone()
        return int(n)

    def folded_connected(self) -> int:
        """How many partner referrals (the other party's of shared deals) are folded into a row."""
        (partner,) = self.db.execute(
            "SELECT COUNT(*) FROM referral WHERE exported = 1 AND microsoft = 0"
        ).fetchone()
        (rows,) = self.db.execute("SELECT COUNT(*)" + self._ROWS + " AND r.microsoft = 0").fetchone()
        return int(partner) - int(rows)

    def row_seq(self, n: int) -> int | None:
        """Where the row ``n`` (from 0) is in the spool, for ``rows(since=...)``; None past the last."""
        found = self.db.execute("SELECT r.seq" + self._ROWS + " ORDER BY r.seq LIMIT 1 OFFSET ?", (n,))
        first = found.fetchone()
        return None if first is None else int(first[0])

    def rows(self, since: int | None = None, until: int | None = None) -> Iterator[dict[str, Any]]:
        """The export's rows, keyed by column key (blank columns left out), in the
        order the API listed them: what ``payload.row_of`` and ``fit_deal_type``
        make of each referral and its engagement's Microsoft referrals. ``since``
        and ``until`` (from ``row_seq``) give the rows from one on, or before one."""
        where = ""
        bounds: list[int] = []
        if since is not None:
            where, bounds = where + " AND r.seq >= ?", [*bounds, since]
        if until is not None:
            where, bounds = where + " AND r.seq < ?", [*bounds, until]
        # With each row, the oldest other Microsoft referral of its engagement (oldest
        # first, as Partner Center lists an engagement's referrals, and so the planner
        # reads them: with two Microsoft referrals, the same one speaks).
        cursor = self.db.execute(
            "SELECT r.doc, (SELECT m.doc FROM referral m WHERE m.engagement = r.engagement "
            "AND m.microsoft = 1 AND m.id IS NOT r.id ORDER BY m.created, m.seq LIMIT 1)"
            + self._ROWS
            + where
            + " ORDER BY r.seq",
            bounds,
        )
        counts, targets = self.counts, _target_keys(self.counts)
        for packed, microsoft in cursor:
            engagement = () if microsoft is None else (_unpacked(microsoft),)
            yield fit_deal_type(row_of(_unpacked(packed), engagement, counts), targets)


# SQLite's default limit on a statement's parameters is 999 in older builds.
_SQL_PARAMS = 900

# The spool holds each referral marshalled, not as JSON: five times cheaper to
# write, a little cheaper to read, and only this process reads it back.
_packed = marshal.dumps
_unpacked = marshal.loads


def _write_layout(path: Path, spool: Spool, rows: int, report: ProgressCallback) -> int:
    """The spooled deals in Partner Center's co-sell layout (bulkref.export.partner_center)."""
    from bulkref.export.partner_center import write_layout_csv

    written = 0

    def csv_file(f: IO[str]) -> None:
        nonlocal written
        written = write_layout_csv(f, _reported(spool.rows(), rows, report), spool.counts)

    sheetxml.atomic_write(path, "w", csv_file, what="export")
    return written


def _packed_without_links(doc: Mapping[str, Any]) -> bytes:
    if not isinstance(doc, dict):  # marshal packs a dict only (a JSON object always is one)
        doc = dict(doc)
    if "links" not in doc:
        return _packed(doc)
    links = doc.pop("links")  # cheaper than a copy without them; put back at once
    try:
        return _packed(doc)
    finally:
        doc["links"] = links


_GROUP_ITEMS = tuple((g.key, getter(g.path)) for g in SPEC.groups)

# What the deal-type rules read of a row, besides the Target IDs.
_FACT_KEYS = ("deal_type", "referral_type", "share_with_microsoft", "help_needed", *SERVICES_KEYS)


def _target_keys(counts: Mapping[str, int]) -> tuple[str, ...]:
    return tuple(f"target.{n}.id" for n in range(1, counts.get("target", 0) + 1))


def fit_deal_type(row: dict[str, Any], target_keys: Sequence[str] | None = None) -> dict[str, Any]:
    """``row`` with Deal Type blank where Partner Center's data does not fit it:

    - where the validator's deal-type rules would refuse the row
      (``bulkref.spec.deals``, the same rules the validator runs), e.g. an incoming
      invitation, Shared and carrying Help Needed;
    - where the referral leaves blank what the deal type implies
      (``payload.deal_defaults``: an incoming lead has no consent to share with
      Microsoft sellers), which a plan would otherwise fill in as a change.

    Every one of those rules needs a Deal Type, and a blank one on a row with a
    Referral ID leaves the deal as it is, so the row stays valid and unchanged.
    ``target_keys`` (the row's ``target.N.id`` columns, when the caller knows
    them) lets the rules see only the dozen cells they read, not all eighty."""
    deal = row.get("deal_type")
    if deal is None:
        return row
    if any(row.get(key) != value for key, value in deal_defaults(row).items()):
        row["deal_type"] = None
        return row
    facts = row if target_keys is None else {key: row.get(key) for key in (*_FACT_KEYS, *target_keys)}
    if broken_rules(facts):
        row["deal_type"] = None
    return row


# --- pass 2: the file -----------------------------------------------------------------------------


def write_export(out: Path, rows: Iterable[Mapping[str, Any]], counts: dict[str, int], row_count: int) -> int:
    """Write ``rows`` (``row_count`` of them, keyed by column key) to ``out`` in the
    template's shape, .xlsx or .csv by its suffix, atomically; returns the rows written."""
    written = 0

    def csv_file(f: IO[str]) -> None:
        nonlocal written
        written = template.write_csv_rows(f, rows, counts)

    def xlsx_file(f: IO[bytes]) -> None:
        nonlocal written
        skeleton = xlsx_skeleton(counts, row_count)
        cells = skeleton.cells()
        skeleton.write(f, sheetxml.chunks(cells.rows_xml(rows, 2), CHUNK_ROWS))
        written = cells.rows_written

    if out.suffix.lower() == ".csv":
        sheetxml.atomic_write(out, "w", csv_file, what="export")
    else:
        sheetxml.atomic_write(out, "wb", xlsx_file, what="export")
    return written


@dataclass
class XlsxSkeleton:
    """The export's workbook without its data rows, and the cell styles of its columns."""

    data: bytes
    sheet_part: str  # the Referrals sheet's part in the zip
    dimension: str  # A1:<last column><last row>
    columns: list[Column]
    styles: list[tuple[int, int]]  # per column: its cell style and quote-prefixed style (xf indexes)

    def cells(self) -> _CellWriters:
        return _CellWriters(self.columns, self.styles)

    def write(self, f: IO[bytes], chunks: Iterable[bytes]) -> None:
        """The workbook to ``f`` with ``chunks`` (``<row>`` XML) as the sheet's data rows."""
        sheetxml.insert_rows(io.BytesIO(self.data), self.sheet_part, chunks, f, dimension=self.dimension)


def xlsx_skeleton(counts: dict[str, int], row_count: int) -> XlsxSkeleton:
    columns = SPEC.columns(counts)
    # The drop-downs and input messages reach every exported row (and the
    # template's usual 5,000 rows below a small export, for rows people add).
    wb = template.build_workbook((), counts, data_rows=max(template.DATA_ROWS, row_count))
    ws = wb[template.SHEET_REFERRALS]
    last = f"{get_column_letter(len(columns))}{row_count + 1}"
    ws.auto_filter.ref = f"A1:{last}"
    styles = cell_styles(ws, columns)  # registers the styles: before the skeleton is saved
    data = io.BytesIO()  # tens of kilobytes: every data row is still to come
    wb.save(data)
    return XlsxSkeleton(data.getvalue(), ws.path.lstrip("/"), f"A1:{last}", columns, styles)


def cell_styles(ws: Worksheet, columns: list[Column]) -> list[tuple[int, int]]:
    """Each column's cell style and quote-prefixed style (xf indexes), registered in
    ``ws``'s workbook through openpyxl, as ``_CellWriters`` takes them."""
    styles = []
    for c in columns:
        fmt = template.number_format(c)
        styles.append((_style_id(ws, fmt), _style_id(ws, fmt, quote_prefix=True)))
    return styles


# The classes of the values whose cells ``_CellWriters`` keeps by value.
_KEPT_BY_VALUE = frozenset({bool, dt.date, tuple})


class _CellWriters:
    """Each column's cells as sheet XML, typed and styled as the template formats
    that column: dates as Excel dates (``yyyy-mm-dd``), times as date-times,
    amounts as numbers, Yes/No and lists as text, all other text as inline
    strings in the column's format (``@`` for ids and postal codes, so that
    Excel keeps leading zeros when someone edits them), quote-prefixed when
    it starts like a formula."""

    def __init__(self, columns: list[Column], styles: list[tuple[int, int]]) -> None:
        self.rows_written = 0
        # Per column: its key, the start of its cells' XML up to the row number
        # (``<c r="B``), the text cells made so far (what follows the row number,
        # by text) and how to make another, its writer for any other value, its
        # letter, and the cells it keeps by value (None for a column that keeps none).
        self.columns: list[
            tuple[
                str,
                str,
                dict[str, str] | None,
                Callable[[str], str],
                Callable[[str, Any], str],
                str,
                dict[tuple[type, Any], str] | None,
            ]
        ] = []
        letters = sheetxml.column_letters(len(columns))
        for c, letter, (style, quoted) in zip(columns, letters, styles, strict=True):
            cells = sheetxml.TextCells(style, quoted)
            # Every writer but the timestamp's writes a str value as text: such a cell is
            # made straight away (the commonest case of the 100,000 rows x 80 columns
            # of a large export), without going through the column's writer.
            texts = None if c.kind is Kind.TIMESTAMP else cells.ref_tails
            write = self._writer(c, cells)
            # Yes/No, dates and lists repeat too (a few hundred closing dates in 100,000
            # deals): their cells, made by the column's writer, are kept by value.
            made: dict[tuple[type, Any], str] | None = (
                {} if c.kind in (Kind.BOOL, Kind.DATE, Kind.LIST) else None
            )
            self.columns.append((c.key, f'<c r="{letter}', texts, cells.ref_tail, write, letter, made))

    def row(self, n: int, row: Mapping[str, Any]) -> list[str]:
        """The cells of ``row`` as sheet row ``n``, blank ones left out."""
        out = []
        number = str(n)
        get = row.get
        for key, start, texts, make, write, letter, made in self.columns:
            value = get(key)
            if value is None or value == "":
                continue
            if texts is not None and value.__class__ is str:
                tail = texts.get(value)
                if tail is None:
                    tail = make(value)
                out.append(start + number + tail)
            elif made is not None and value.__class__ in _KEPT_BY_VALUE:
                try:
                    tail = made.get((value.__class__, value))  # by class too: True is 1, 1 is 1.0
                except TypeError:  # a list holding something unhashable: not kept
                    tail = write("", value)[len('<c r="') :]
                if tail is None:
                    tail = self._kept(made, write, value)
                out.append(start + number + tail)
            else:
                out.append(write(letter + number, value))
        return out

    @staticmethod
    def _kept(made: dict[tuple[type, Any], str], write: Callable[[str, Any], str], value: Any) -> str:
        """What follows the row number in ``value``'s cell, kept for the next (up to 1,024 kept)."""
        tail = write("", value)[len('<c r="') :]
        if len(made) < 1024:
            made[(value.__class__, value)] = tail
        return tail

    def rows_xml(self, rows: Iterable[Mapping[str, Any]], first: int) -> Iterator[str]:
        """Each of ``rows`` as a ``<row>`` element, the first numbered ``first``."""
        cells = self.row
        for n, row in enumerate(rows, start=first):
            yield f'<row r="{n}">{"".join(cells(n, row))}</row>'
            self.rows_written += 1

    @staticmethod
    def _writer(c: Column, cells: sheetxml.TextCells) -> Callable[[str, Any], str]:
        style = cells.style

        def text(ref: str, value: Any) -> str:
            return cells(ref, value if isinstance(value, str) else str(value))

        if c.kind is Kind.DATE:

            def date(ref: str, value: Any) -> str:
                if isinstance(value, dt.date):
                    return sheetxml.number_cell(ref, sheetxml.excel_serial(value), style)
                return text(ref, value)

            return date
        if c.kind is Kind.TIMESTAMP:

            def timestamp(ref: str, value: Any) -> str:
                moment = _instant(value) if isinstance(value, str) else value
                if isinstance(moment, dt.datetime):
                    return sheetxml.number_cell(ref, sheetxml.excel_serial(moment), style)
                return text(ref, value)

            return timestamp
        if c.kind is Kind.DECIMAL:

            def number(ref: str, value: Any) -> str:
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return sheetxml.number_cell(ref, value, style)
                return text(ref, value)

            return number
        if c.kind is Kind.BOOL:

            def yes_no(ref: str, value: Any) -> str:
                if isinstance(value, bool):
                    value = template.YES_NO[0] if value else template.YES_NO[1]
                return text(ref, value)

            return yes_no
        if c.kind is Kind.LIST:

            def listed(ref: str, value: Any) -> str:
                if isinstance(value, tuple | list):
                    value = template.LIST_SEPARATOR.join(map(str, value))
                return text(ref, value)

            return listed
        return text


def _style_id(ws: Worksheet, number_format: str | None, quote_prefix: bool = False) -> int:
    """The workbook's cell style (xf) index for a format, registered through openpyxl."""
    if number_format is None and not quote_prefix:
        return 0
    proto = WriteOnlyCell(ws)
    if number_format is not None:
        proto.number_format = number_format
    if quote_prefix:
        proto.quotePrefix = True
    return int(proto.style_id)


def _instant(text: str) -> dt.datetime | None:
    """A service time (``2026-11-21T09:11:20.1234567Z``) as a naive UTC datetime."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


# --- the progress display -------------------------------------------------------------------------


# --- one referral ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferralView:
    """One referral as read, and the referrals of its engagement (itself included)."""

    doc: dict[str, Any]
    engagement: list[dict[str, Any]]


def get_referral(
    referral_id: str, *, api_url: str | None = None, sandbox: bool = False, retry: RetryPolicy | None = None
) -> ReferralView:
    """The referral ``referral_id`` and its engagement's referrals; ``ReferralNotFound`` (exit 1)
    when Partner Center has none with that id."""
    from bulkref.api import target

    with target.resolve(api_url, sandbox) as where:

        async def run() -> ReferralView:
            async with where.client(**({"retry": retry} if retry is not None else {})) as client:
                return await read_referral(client, referral_id, where.describe())

        return asyncio.run(run())


async def read_referral(client: ReferralsClient, referral_id: str, source: str | None = None) -> ReferralView:
    try:
        doc = await client.get(referral_id)
    except NotFound:
        raise ReferralNotFound(
            f"No referral has the id {referral_id} in {source or client.base_url}: check "
            "the id (bulkref export lists every referral with its id)."
        ) from None
    engagement_id = doc.get("engagementId")
    engagement: list[dict[str, Any]] = [doc]
    if engagement_id:
        found = (await client.by_engagement_ids([engagement_id])).get(engagement_id, [])
        engagement = found if any(d.get("id") == doc.get("id") for d in found) else [doc, *found]
    return ReferralView(doc, engagement)


def referral_text(view: ReferralView) -> str:
    """A readable summary of one referral, for ``bulkref get --format text``."""
    doc = view.doc

    def at(path: str) -> Any:
        return get_path(doc, path)

    def joined(*parts: Any, sep: str = ", ") -> str:
        return sep.join(str(p) for p in parts if p not in (None, ""))

    others = [d for d in view.engagement if d.get("id") != doc.get("id")]
    microsoft = next((d for d in others if is_microsoft(d)), None)
    deal = "Microsoft's referral" if is_microsoft(doc) else deal_type_of(doc, view.engagement)
    if microsoft is not None and not is_microsoft(doc):
        help_needed = get_path(microsoft, "inviteContext/assistanceRequestCode")
        deal += f" (help needed: {help_needed})" if help_needed else ""
    value = at("details/dealValue")
    amount = f"{value:,.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else value
    closing = (at("details/closingDateTime") or "")[:10]

    def person(p: Mapping[str, Any]) -> str:
        return joined(
            joined(p.get("firstName"), p.get("lastName"), sep=" "), p.get("email"), p.get("phoneNumber")
        )

    contacts = [person(p) for p in (at("customerProfile/team") or []) if isinstance(p, dict)]
    team = [person(p) for p in (doc.get("team") or []) if isinstance(p, dict)]
    lines = [
        ("Referral ID", doc.get("id")),
        ("Engagement ID", doc.get("engagementId")),
        ("External ID", doc.get("externalReferenceId")),
        (
            "Organization",
            joined(
                doc.get("organizationName"),
                doc.get("organizationId") and f"({doc.get('organizationId')})",
                sep=" ",
            ),
        ),
        ("Direction", doc.get("direction")),
        (
            "Status",
            joined(doc.get("status"), doc.get("substatus"), sep=" / ")
            + (f" ({doc['statusReason']})" if doc.get("statusReason") else ""),
        ),
        ("Deal type", deal),
        ("Type", joined(doc.get("type"), doc.get("qualification"))),
        (
            "Customer",
            joined(
                at("customerProfile/name"),
                at("customerProfile/address/city"),
                at("customerProfile/address/country"),
            ),
        ),
        ("Contacts", "; ".join(contacts)),
        (
            "Deal value",
            joined(joined(amount, at("details/currency"), sep=" "), closing and f"closing {closing}"),
        ),
        ("Team", "; ".join(team)),
        ("Invite notes", at("inviteContext/notes")),
        ("Notes", at("details/notes")),
        ("Created", doc.get("createdDateTime")),
        ("Updated", doc.get("updatedDateTime")),
        ("ETag", doc.get("eTag")),
    ]
    width = max(len(label) for label, _ in lines)
    out = [str(doc.get("name") or "(no name)")]
    out += [f"  {label:<{width}}  {value}" for label, value in lines if value not in (None, "")]
    if others:
        out.append(f"  {'Engagement':<{width}}  {len(view.engagement)} referrals:")
        for d in others:
            who = "Microsoft" if is_microsoft(d) else (d.get("organizationName") or d.get("organizationId"))
            out.append(
                f"    {d.get('id')}  {who}  {joined(d.get('status'), d.get('substatus'), sep=' / ')}"
                f"  {d.get('direction') or ''}".rstrip()
            )
    return "\n".join(out)


def referral_json(view: ReferralView) -> str:
    """The referral as Partner Center returned it, pretty-printed."""
    return json.dumps(view.doc, ensure_ascii=False, indent=2)


__all__ = [
    "ExportResult",
    "ReferralNotFound",
    "ReferralView",
    "Spool",
    "check_output",
    "compose_filter",
    "default_path",
    "export_from",
    "export_referrals",
    "fit_deal_type",
    "get_referral",
    "odata_datetime",
    "read_referral",
    "referral_json",
    "referral_text",
    "write_export",
]
