"""Pass 1 of an export: the referrals read, spooled in a temporary SQLite file.

How many numbered columns each group needs (a deal with five customer
contacts) and which deals are co-sells are known only after the last page,
and the header row comes first: so every page is read into a spool, one
referral a row, each referral once even if a page repeats one, and the rows
are made from it afterwards (``Spool.rows``), in a private folder that is
locked while in use and removed however the export ends.
"""

from __future__ import annotations

import contextlib
import marshal
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import filelock

from bulkref.export.rows import fit_deal_type, target_keys
from bulkref.plan.payload import is_microsoft, row_of
from bulkref.spec.columns import SPEC
from bulkref.spec.jsonpaths import getter

__all__ = ["SPOOL_LOCK", "SPOOL_PREFIX", "Spool", "spool_folder", "sweep_spools"]

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
        counts, targets = self.counts, target_keys(self.counts)
        for packed, microsoft in cursor:
            engagement = () if microsoft is None else (_unpacked(microsoft),)
            yield fit_deal_type(row_of(_unpacked(packed), engagement, counts), targets)


# SQLite's default limit on a statement's parameters is 999 in older builds.
_SQL_PARAMS = 900

# The spool holds each referral marshalled, not as JSON: five times cheaper to
# write, a little cheaper to read, and only bulkref reads it back.
_packed = marshal.dumps
_unpacked = marshal.loads


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
