"""What may be in Partner Center without bulkref knowing it: creates in doubt, and how long
its listing takes to show a new referral. One small SQLite file per target, in the data
directory, beside the apply lock.

A create whose answer was lost (a time-out, a dropped connection, a 5xx after the request
went out) may have been stored. Partner Center promises no replay of a repeated request
id and no time within which a new referral shows in a listing, so such a create is *in
doubt* until a listing shows it (it was stored) or a listing read long enough after the
call does not (it was not). A run may end before either: the doubt is kept here, not
only in the run's journal, so that the next plan or apply of the same target (a fresh
``--state``, a copied plan, another sheet holding the same row, the web app's Resume)
looks it up first instead of creating it again.

A doubt is keyed by what identifies the referral the create would make: the partner's
External Reference ID (step 1), or the engagement and whose referral it is (step 2 of a
co-sell or shared chain). The lags measured by runs (from their own confirmed creates)
are kept too: the next run starts from them, and ``bulkref doctor`` reports them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bulkref.errors import JournalError

SCHEMA = """
CREATE TABLE IF NOT EXISTS doubt (
    key TEXT PRIMARY KEY,     -- ext:<External Reference ID> | eng:<engagement>:<msft|partner>
    source TEXT, row INTEGER, step TEXT,
    sent_at REAL NOT NULL,    -- when the create was first sent (epoch seconds)
    failed_at REAL NOT NULL,  -- when its last answer was lost: the store may have happened up to then
    request_ids TEXT NOT NULL -- JSON list of the MS-RequestId values sent with it
);
CREATE TABLE IF NOT EXISTS lag (
    at REAL NOT NULL,         -- when measured (epoch seconds)
    seconds REAL NOT NULL,    -- how long a confirmed create took to show in the listing (at most)
    seen INTEGER NOT NULL     -- 1: it showed; 0: not yet, after ``seconds`` (a lower bound)
);
"""

#: How long a measured lag informs later runs: a slow day should not slow every run after it.
LAG_MEMORY = 7 * 24 * 3600.0
#: Measurements kept per target (the newest).
LAGS_KEPT = 200


def doubt_key(external_id: str | None = None, engagement: str | None = None, microsoft: bool = False) -> str:
    """The key of a create: by External Reference ID, else by engagement and whose it is.
    Lower case: Partner Center's ids are GUIDs, and nothing says it keeps their case."""
    if external_id:
        return f"ext:{external_id.strip().lower()}"
    if engagement:
        return f"eng:{engagement.strip().lower()}:{'msft' if microsoft else 'partner'}"
    raise ValueError("a create in doubt needs an External Reference ID or an engagement")


@dataclass(frozen=True)
class Doubt:
    key: str
    source: str | None
    row: int | None
    step: str | None
    sent_at: float
    failed_at: float
    request_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lag:
    at: float
    seconds: float
    seen: bool


def ledger_path(label: str, data_dir: Path) -> Path:
    key = hashlib.sha256(label.encode()).hexdigest()[:16]
    return data_dir / "doubts" / f"target-{key}.sqlite"


class Ledger:
    """The doubts and lags of one target. Each call opens and closes the file: runs of one
    target are serialised by the apply lock, and ``plan`` only reads."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection | None]:
        if not write and not self.path.exists():
            yield None
            return
        try:
            if write:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=5)
            try:
                db.executescript(SCHEMA)
                with db:
                    yield db
            finally:
                db.close()
        except (sqlite3.Error, OSError) as e:
            raise JournalError(
                f"The record of creates in doubt {self.path} could not be "
                f"{'written' if write else 'read'} ({getattr(e, 'strerror', None) or e}): check that "
                "the data directory is writable (or set BULKREF_HOME to another folder)."
            ) from None

    def doubts(self) -> dict[str, Doubt]:
        with self._db() as db:
            if db is None:
                return {}
            rows = db.execute(
                "SELECT key, source, row, step, sent_at, failed_at, request_ids FROM doubt"
            ).fetchall()
        return {
            key: Doubt(key, source, row, step, sent, failed, tuple(json.loads(ids)))
            for key, source, row, step, sent, failed, ids in rows
        }

    def add(self, doubt: Doubt) -> None:
        """Keep ``doubt`` (a later loss of the same create moves its ``failed_at`` on)."""
        with self._db(write=True) as db:
            assert db is not None
            known = db.execute(
                "SELECT sent_at, request_ids FROM doubt WHERE key = ?", (doubt.key,)
            ).fetchone()
            sent = min(doubt.sent_at, known[0]) if known else doubt.sent_at
            ids = list(dict.fromkeys([*(json.loads(known[1]) if known else []), *doubt.request_ids]))
            db.execute(
                "INSERT OR REPLACE INTO doubt VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doubt.key, doubt.source, doubt.row, doubt.step, sent, doubt.failed_at, json.dumps(ids)),
            )

    def settle(self, *keys: str) -> None:
        """These creates are no longer in doubt (found, or shown absent and sent again)."""
        if not keys or not self.path.exists():
            return
        with self._db(write=True) as db:
            assert db is not None
            db.executemany("DELETE FROM doubt WHERE key = ?", [(k,) for k in keys])

    def record_lags(self, lags: list[Lag]) -> None:
        if not lags:
            return
        with self._db(write=True) as db:
            assert db is not None
            db.executemany("INSERT INTO lag VALUES (?, ?, ?)", [(x.at, x.seconds, int(x.seen)) for x in lags])
            db.execute(
                "DELETE FROM lag WHERE rowid NOT IN (SELECT rowid FROM lag ORDER BY at DESC LIMIT ?)",
                (LAGS_KEPT,),
            )

    def lags(self, now: float | None = None) -> list[Lag]:
        """The measurements of the last ``LAG_MEMORY`` seconds, newest first."""
        now = time.time() if now is None else now
        with self._db() as db:
            if db is None:
                return []
            rows = db.execute(
                "SELECT at, seconds, seen FROM lag WHERE at >= ? ORDER BY at DESC", (now - LAG_MEMORY,)
            ).fetchall()
        return [Lag(at, seconds, bool(seen)) for at, seconds, seen in rows]


def ledger_of(label: str, data_dir: Path) -> Ledger:
    return Ledger(ledger_path(label, data_dir))


#: The shortest consistency window ever used (``docs/cli.md``): a create in doubt is sent
#: again only once a listing read at least this long after its answer was lost leaves it out.
WINDOW_FLOOR = 10.0
#: A measured lag is stretched by this factor, plus ``WINDOW_SLACK`` seconds: lags vary, and
#: what was measured is the largest of a few samples, not the largest there is.
WINDOW_MARGIN = 1.5
WINDOW_SLACK = 2.0


class Window:
    """How long Partner Center's listing may take to show a new referral: the consistency
    window, learned.

    Each confirmed create timed until a listing showed it is a sample (``observe``); a
    create not shown yet says the lag is at least its age, and ``seconds`` counts those
    too, so while a listing shows none of the run's creates nothing can be proven absent.
    Lags that earlier runs measured against the target (``remembered``) count as well.
    The window is the largest of them times ``WINDOW_MARGIN`` plus ``WINDOW_SLACK``, never
    under ``WINDOW_FLOOR``; ``override`` (``--consistency-window``) replaces all of it.

    With no lag measured at all (no create of this run or an earlier one shown yet), the
    window is unknown (``math.inf``): a floor is a guess, and a listing that lags longer
    than the guess would make a stored create look absent. Nothing is then told absent;
    a create in doubt is settled by being found, or by a person (``--resend-in-doubt``)."""

    def __init__(self, override: float | None = None, remembered: list[Lag] | None = None) -> None:
        self.override = override
        self.remembered = max((lag.seconds for lag in remembered or ()), default=0.0)
        # A lag of 0 measured is a measurement: the listing showed a create at once.
        self._remembered_any = any(lag.seen for lag in remembered or ())
        self.seen: list[float] = []

    def observe(self, seconds: float) -> None:
        self.seen.append(max(0.0, seconds))

    @property
    def measured(self) -> float | None:
        """The largest lag this run saw, None before any."""
        return max(self.seen) if self.seen else None

    @property
    def known(self) -> bool:
        return self.override is not None or bool(self.seen) or self.remembered > 0 or self._remembered_any

    def seconds(self, unseen_ages: Sequence[float] = ()) -> float:
        if self.override is not None:
            return self.override
        if not self.known:
            return math.inf
        worst = max([self.remembered, *self.seen, *unseen_ages])
        return max(WINDOW_FLOOR, WINDOW_MARGIN * worst + WINDOW_SLACK)
